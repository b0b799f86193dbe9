"""`history` and its CSV export through the real app, on Azurite, as Teams sends them.

The books are written by the real services (tests/support/history_books.py); the card is read
from the fake Bot Connector and the invokes' answers, and the export is downloaded from the
app's own route with the link the card holds. Expected texts come from the catalogues.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from bot.settings import Settings
from credits.export_links import LINK_LIFETIME, ExportLinks
from credits.history import History, Period
from credits.model import EntryKind
from storage.audit import AuditLog
from storage.tables import TableStore
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, L10N, Chat, answered_card, error_at, input_values, open_urls
from tests.support.history_books import HOSTILE_PO, a_year_and_more, month_start

SECRET = "history-export-links-5c1f9a7e3b2d8046"
LANGUAGES = ["en-US", "pt-BR", "es-ES", "zh-CN", "ru-RU", "fr-FR"]
# What a spreadsheet runs as a formula (bot/history_export.py).
FORMULA = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def settings(azurite, table_prefix):
    """Local mode with a known export secret, so that a test can make links of its own."""
    return Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "EXPORT_URL_SECRET": SECRET,
        }
    )


@pytest.fixture
async def store(settings):
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    await store.create_tables()
    yield store
    await store.close()


def today() -> date:
    return datetime.now(UTC).date()


async def open_history(chat: Chat) -> dict[str, Any]:
    t = L10N.translator(chat.locale)
    await chat.say(t("command.history").split("|")[0])
    card = chat.last_card()
    assert card_texts(card)[0] == t("history.title")
    return card


async def show_dates(chat: Chat, card: dict[str, Any], first: str, last: str) -> dict[str, Any]:
    t = L10N.translator(chat.locale)
    return answered_card(
        await chat.press(card, t("history.show_dates"), **{"from": first, "to": last})
    )


async def export_link(chat: Chat, card: dict[str, Any]) -> str:
    """Press Export; the download link of the card the bot posts below."""
    before = len(chat.connector.cards())
    await chat.press(card, L10N.translator(chat.locale)("history.export"))
    posted = chat.connector.cards()[before:]
    assert len(posted) == 1, posted
    urls = open_urls(posted[0])
    assert len(urls) == 1
    return urls[0]


def local(url: str) -> str:
    """The path and query of a link (the test client knows the host)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def download(client, url: str) -> tuple[int, str, bytes]:
    response = await client.get(local(url))
    return response.status, response.headers.get("Content-Type", ""), await response.read()


def rows_of(body: bytes) -> list[dict[str, str]]:
    assert body.startswith("\ufeff".encode())  # the BOM: Excel reads the file as UTF-8
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


# --- the export ties to the ledger --------------------------------------------------------------


async def test_a_period_with_purchase_usage_expiry_and_refund_exports_to_its_balance_change(
    client, connector, store
):
    books, the_month = await a_year_and_more(store, activities.TENANT, today())
    chat = Chat(client, connector)
    card = await show_dates(
        chat, await open_history(chat), the_month.first.isoformat(), the_month.last.isoformat()
    )
    texts = card_texts(card)
    assert EN("history.period_utc", period=EN.month(the_month.first)) in texts
    assert EN("entry.refund") in texts and EN("entry.expiry") in texts

    status, kind, body = await download(client, await export_link(chat, card))

    assert (status, kind) == (200, "text/csv; charset=utf-8")
    rows = rows_of(body)
    header = {EN(f"history.csv.{c}") for c in ("amount", "currency", "kind", "payment_method")}
    assert header <= set(rows[0])
    kinds = [row[EN("history.csv.kind")] for row in rows]
    month_kinds = (EntryKind.PURCHASE, EntryKind.EXPIRY, EntryKind.USAGE, EntryKind.REFUND)
    assert kinds == [EN(f"entry.{k.value}") for k in month_kinds]
    assert {row[EN("history.csv.currency")] for row in rows} == {"USD"}
    # Plain decimals ("-123.45"), summing to what the ledger says the period changed.
    total = sum(Decimal(row[EN("history.csv.amount")]) for row in rows)
    account = (await books.repo.get_account(activities.TENANT)).value
    span = await History(books.repo).locate(account, the_month)
    entries = [e for e in await books.entries() if the_month.start <= e.at < the_month.end]
    assert (
        total
        == Decimal(span.change_minor) / 100
        == Decimal(sum(e.amount_minor for e in entries)) / 100
    )
    assert [Decimal(row[EN("history.csv.balance_after")]) for row in rows][-1] == Decimal(
        span.closing_minor
    ) / 100
    # The purchase says how it was paid (the saved card), and the refund names its order.
    purchase, refund = rows[0], rows[-1]
    assert "4242" in purchase[EN("history.csv.payment_method")]
    assert refund[EN("history.csv.order")] == purchase[EN("history.csv.order")] != ""


async def test_a_po_a_spreadsheet_would_run_is_exported_as_text(client, connector, store):
    books, _ = await a_year_and_more(store, activities.TENANT, today())
    chat = Chat(client, connector)
    first = month_start(today(), 14)
    card = await show_dates(chat, await open_history(chat), first.isoformat(), today().isoformat())

    _, _, body = await download(client, await export_link(chat, card))

    rows = rows_of(body)
    assert len(rows) == len(await books.entries())
    pos = [
        row[EN("history.csv.purchase_order")]
        for row in rows
        if row[EN("history.csv.purchase_order")]
    ]
    assert pos == ["'" + HOSTILE_PO, "PO-1234"]
    # No text cell starts a formula; the bot's own negative amounts stay numbers.
    amount = EN("history.csv.amount")
    for row in rows:
        for column, cell in row.items():
            if column != amount:
                assert not cell.startswith(FORMULA), (column, cell)
    assert any(row[amount].startswith("-") for row in rows)
    # The sum over everything is the balance.
    account = (await books.repo.get_account(activities.TENANT)).value
    assert sum(Decimal(row[amount]) for row in rows) * 100 == account.balance_minor


# --- the link ---------------------------------------------------------------------------------


async def test_the_link_opens_no_other_tenant_nothing_altered_and_not_after_15_minutes(
    client, connector, store, settings
):
    await a_year_and_more(store, activities.TENANT, today())
    await a_year_and_more(store, "another-tenant", today())
    chat = Chat(client, connector, locale="fr-FR")
    url = await export_link(chat, await open_history(chat))
    FR = L10N.translator("fr-FR")
    assert (await download(client, url))[0] == 200

    # The same link on another tenant's books.
    other = url.replace(f"/tenants/{activities.TENANT}/", "/tenants/another-tenant/")
    assert other != url
    status, _, body = await download(client, other)
    assert (status, body.decode()) == (403, FR("history.link.forged"))
    # A longer period, another language, a later expiry: each breaks the signature.
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    for field, value in (
        ("from", "2000-01-01"),
        ("lang", "en-US"),
        ("expires", str(int(query["expires"]) + 3600)),
    ):
        altered = f"{urlsplit(url).path}?{urlencode({**query, field: value})}"
        assert (await client.get(altered)).status == 403, field
    # Garbage is not a link.
    for field, value in (("from", "2026-13-01"), ("expires", "soon"), ("sig", "")):
        broken = f"{urlsplit(url).path}?{urlencode({**query, field: value})}"
        assert (await client.get(broken)).status == 400, field

    # A link the bot made 15 minutes ago (and one made a second less ago, still good).
    links = ExportLinks(SECRET, settings.public_base_url)
    period = Period.this_month(today())
    now = datetime.now(UTC)
    stale = links.address(links.link(activities.TENANT, period, "fr-FR", now - LINK_LIFETIME))
    fresh = links.address(
        links.link(activities.TENANT, period, "fr-FR", now - LINK_LIFETIME + timedelta(minutes=1))
    )
    status, _, body = await download(client, stale)
    assert (status, body.decode()) == (410, FR("history.link.expired"))
    assert (await download(client, fresh))[0] == 200
    # A link signed with another secret (another deployment) is refused as forged.
    foreign = ExportLinks("another-deployment-secret-0f9e8d7c6b5a", settings.public_base_url)
    forged = foreign.address(foreign.link(activities.TENANT, period, "fr-FR", now))
    assert (await download(client, forged))[0] == 403


async def test_export_is_given_only_in_a_personal_chat(client, connector, store):
    await a_year_and_more(store, activities.TENANT, today())

    class ChannelChat(Chat):
        async def _post(self, activity) -> None:
            activity["conversation"] = {
                "id": "19:finance@thread.tacv2",
                "conversationType": "channel",
                "isGroup": True,
            }
            await super()._post(activity)

        async def _invoke(self, activity):
            activity["conversation"] = {
                "id": "19:finance@thread.tacv2",
                "conversationType": "channel",
                "isGroup": True,
            }
            return await super()._invoke(activity)

    chat = ChannelChat(client, connector)
    card = await open_history(chat)
    titles = [a.get("title") for a in _actions(card)]
    assert EN("history.export") not in titles
    # A press of an old card's Export in a channel gets a no, and no link.
    data = {"view": "history", "first": "2026-01-01", "last": "2026-01-31", "list": "ledger",
            "action": "export"}  # fmt: skip
    before = len(connector.cards())
    answer = await chat.execute(data, verb="open")
    assert EN("history.export_personal") in str(answer)
    assert not any(open_urls(c) for c in connector.cards()[before:])


def _actions(card):
    from tests.support.chat import actions_of

    return actions_of(card)


# --- bad dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LANGUAGES)
@pytest.mark.parametrize(
    ("first", "last", "field", "problem"),
    [
        ("2026-13-01", "2026-11-30", "from", "not_a_date"),
        ("2026-02-30", "2026-03-01", "from", "not_a_date"),
        ("2026-11-01", "next tuesday", "to", "not_a_date"),
        ("'; DROP TABLE--", "2026-11-01", "from", "not_a_date"),
        ("2026-11-20", "2026-11-01", "to", "reversed"),
        ("", "2026-11-01", "from", "missing"),
        ("2026-11-01", "", "to", "missing"),
        ("2999-01-01", "2999-01-31", "from", "future"),
    ],
)
async def test_bad_dates_get_a_localised_answer_under_the_field(
    client, connector, locale, first, last, field, problem
):
    t = L10N.translator(locale)
    chat = Chat(client, connector, locale=locale)
    shown = await open_history(chat)

    card = await show_dates(chat, shown, first, last)

    assert error_at(card, field) == t(f"history.error.{problem}")
    other = "to" if field == "from" else "from"
    assert error_at(card, other) is None
    # The period shown stays the one before, and what was typed stays in the inputs.
    assert card_texts(card)[1] == card_texts(shown)[1]
    assert input_values(card)[field] == (first if field == "from" else last)


# --- the changes --------------------------------------------------------------------------------


async def test_the_changes_list_says_who_changed_what(client, connector, store):
    audit = AuditLog(store.table(store.names.audit), clock=lambda: datetime.now(UTC))
    from credits.audit import AuditAction

    await audit.record(
        activities.TENANT,
        activities.USER_AAD,
        AuditAction.AUTO_RECHARGE,
        {"enabled": True, "currency": "USD", "recharge_with_minor": 50_000,
         "trigger_minor": 10_000, "card_brand": "visa", "card_last4": "4242"},
    )  # fmt: skip
    await audit.record("another-tenant", activities.USER_AAD, AuditAction.AUTO_RECHARGE, {})
    chat = Chat(client, connector)
    card = answered_card(await chat.press(await open_history(chat), EN("history.show_changes")))

    texts = card_texts(card)
    assert EN("history.list.changes") in texts
    changes = [text for text in texts if "4242" in text]
    assert len(changes) == 1 and "$500.00" in changes[0] and "$100.00" in changes[0]
    assert EN.ngettext("history.changes_page", 1, page="1", pages="1", total="1") in texts


async def test_alert_settings_saved_in_chat_are_in_the_changes_with_who_saved_them(
    client, connector
):
    from credits.alerts import CHOOSABLE_KINDS
    from tests.support.chat import submit_data

    chat = Chat(client, connector)
    await chat.say(EN("command.alerts").split("|")[0])
    form = chat.last_card()
    kinds = {f"kind_{kind.value}": "true" for kind in CHOOSABLE_KINDS}
    kinds["kind_funds_expiring"] = "false"
    await chat.submit({**submit_data(form, "alert_settings"), **kinds, "thresholds": "500; 100"})

    card = answered_card(await chat.press(await open_history(chat), EN("history.show_changes")))

    lines = [text for text in card_texts(card) if "$500.00" in text]
    assert len(lines) == 1, card_texts(card)
    assert "$100.00" in lines[0] and EN("alert.funds_expiring.title") in lines[0]
    # Who: the admin's name from the directory, not their object id.
    assert "Alex Wilber" in lines[0] and activities.USER_AAD not in lines[0]


async def test_saving_the_same_alert_settings_again_is_not_a_change(client, connector):
    from credits.alerts import CHOOSABLE_KINDS
    from tests.support.chat import submit_data

    chat = Chat(client, connector)
    kinds = {f"kind_{kind.value}": "true" for kind in CHOOSABLE_KINDS}
    for thresholds in ("500", "500", "200"):
        await chat.say(EN("command.alerts").split("|")[0])
        form = chat.last_card()
        await chat.submit(
            {**submit_data(form, "alert_settings"), **kinds, "thresholds": thresholds}
        )

    card = answered_card(await chat.press(await open_history(chat), EN("history.show_changes")))

    texts = card_texts(card)
    assert EN.ngettext("history.changes_page", 2, page="1", pages="1", total="2") in texts
    assert [t for t in texts if "$200.00" in t] and len([t for t in texts if "$500.00" in t]) == 1
