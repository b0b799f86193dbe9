"""A person's first minutes with the bot, through the real Agents Playground in Chromium.

Every expected text comes from the bot's own message catalogues (bot/i18n.py), never from this
file, so rewording a message does not break the test and a missing translation does.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.usage_api import tenant_key
from credits.alerts import DEFAULT_THRESHOLD_PERCENT
from locales import LANGUAGES, Localizer
from scripts.playground import DEFAULT_TENANT_ID
from tests.e2e.chat import REPLY_TIMEOUT, Chat, normalize, plain
from tests.e2e.conftest import ARTIFACTS, USAGE_API_SECRET
from tests.usage.generate import COLUMNS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def localizer() -> Localizer:
    return Localizer.from_directory()


def first_word(translator, msgid: str) -> str:
    """The first synonym of a command (`command.help` is "help|?|commands|...")."""
    return translator.gettext(msgid).split("|")[0]


def test_welcome_help_menu_and_language(chat: Chat, localizer: Localizer) -> None:
    en = localizer.translator("en-US")
    brazilian = next(lang for lang in LANGUAGES if lang.tag == "pt-BR")
    pt = localizer.translator(brazilian.tag)

    # Opening the Playground installs the bot: it answers with the welcome card and its menu.
    welcome = chat.wait_for_card(0, en.gettext("welcome.title"))

    # Typed help: the help text, in English (the Playground always sends locale en-US).
    before = chat.send(first_word(en, "command.help"))
    chat.wait_for_text(before, plain(en.gettext("help.text")))

    # A menu button on the welcome card. Until its flow exists the bot says "coming soon";
    # once it does, it answers with the status card.
    status = en.gettext("menu.status")
    before = chat.press(welcome, status)
    coming_soon = plain(en.gettext("coming_soon", feature=status))
    status_title = en.gettext("status.title")

    def answers_status(index: int, text: str) -> bool:
        if coming_soon in text:
            return True
        message = chat.bot_messages.nth(index)
        return message.get_by_role("heading", name=status_title, exact=True).count() > 0

    chat.wait_for_reply(before, answers_status, f"{coming_soon!r} or the status card", 30)

    # The language chooser offers all six languages.
    before = chat.send(first_word(en, "command.language"))
    chooser = chat.wait_for_card(before, en.gettext("language.title"))
    for language in LANGUAGES:
        assert chooser.get_by_role("button", name=language.native_name, exact=True).count() == 1

    # Choosing Brazilian Portuguese is confirmed in Portuguese, in place of the chooser ...
    before = chat.press(chooser, brazilian.native_name)
    chat.wait_for_text(before - 1, plain(pt.gettext("language.changed")))
    assert chat.count() == before

    # ... and from then on the bot answers in Portuguese, to a Portuguese command.
    before = chat.send(first_word(pt, "command.help"))
    chat.wait_for_text(before, plain(pt.gettext("help.text")))


def test_add_funds_and_assign_a_licence(chat: Chat, localizer: Localizer) -> None:
    """An admin (the Playground's Alex Wilber is a Billing Administrator in the demo directory)
    buys credits with the saved test card, then gives one user the licence."""
    en = localizer.translator("en-US")
    chat.wait_for_card(0, en.gettext("welcome.title"))

    # Add funds with an amount: straight to the confirmation, then the receipt in its place.
    before = chat.send(first_word(en, "command.add_funds") + " 500")
    confirm = chat.wait_for_card(before, en.gettext("confirm.title"))
    chat.press(confirm, en.gettext("confirm.place"))
    chat.wait_in(confirm, en.gettext("receipt.title"))

    # Licences: tick the first eligible user, assign, confirm, read the per-user result, all
    # in the one card.
    before = chat.send(first_word(en, "command.licences"))
    listing = chat.wait_for_card(before, en.gettext("licences.title"), 30)
    listing.get_by_role("checkbox").first.check()
    chat.press(listing, en.gettext("licences.assign"))
    chat.wait_in(listing, en.ngettext("licences.confirm_assign", 1, count=1))
    chat.press(listing, en.gettext("licences.confirm"))
    chat.wait_in(listing, en.gettext("licences.result_title"))
    assert plain(en.gettext("licences.outcome.assigned")) in normalize(listing.inner_text())
    assert chat.count() == before + 1
    # Kept for a person to look at (tests/e2e/artifacts is not committed).
    chat.page.screenshot(path=str(ARTIFACTS / "licences-result.png"), full_page=True)


def test_add_funds_with_a_new_card_on_the_hosted_page(chat: Chat, localizer: Localizer) -> None:
    """An admin adds funds with a new card: the confirmation's button opens the (sandbox's)
    hosted payment page in the browser, where the card is typed, never in Teams; the receipt
    then appears in the chat on its own."""
    en = localizer.translator("en-US")
    chat.wait_for_card(0, en.gettext("welcome.title"))

    before = chat.send(first_word(en, "command.add_funds"))
    form = chat.wait_for_card(before, en.gettext("add_funds.title"), 30)
    form.get_by_label(en.gettext("add_funds.amount_label", currency="USD")).fill("250")
    form.get_by_role("radio", name=en.gettext("add_funds.method_new_card")).check()
    chat.press(form, en.gettext("add_funds.review"))
    chat.wait_in(form, en.gettext("confirm.title"))
    confirm = form
    assert plain(en.gettext("confirm.checkout_note")) in normalize(confirm.inner_text())
    assert confirm.get_by_role("textbox").count() == 0  # nothing to type in Teams

    # The button (an Action.OpenUrl, which the Playground renders with role=link) opens the
    # hosted page in a new tab of the browser.
    pay = confirm.get_by_role("link", name=en.gettext("confirm.pay_on_page"), exact=True)
    with chat.page.context.expect_page(timeout=30_000) as opened:
        pay.click()
    hosted = opened.value
    hosted.wait_for_load_state()
    assert hosted.url.startswith("http://127.0.0.1:") and "/sandbox/pay/" in hosted.url
    hosted.fill("#cardNumber", "4242 4242 4242 4242")
    hosted.fill("#cardExpiry", "12 / 34")
    hosted.fill("#cardCvc", "123")
    hosted.fill("#billingName", "Alex Wilber")
    hosted.screenshot(path=str(ARTIFACTS / "hosted-page.png"), full_page=True)
    hosted.click("#submit")
    hosted.wait_for_url("**/payments/done**")
    assert hosted.locator("#title").inner_text() == en.gettext("return.paid_title")
    hosted.close()

    # Back in Teams: the confirmation now says it was paid, and the receipt is there.
    receipt = chat.wait_for_card(0, en.gettext("receipt.title"), 30)
    assert en.money(Decimal("250"), "USD") in normalize(receipt.inner_text())
    chat.wait_for_card(0, en.gettext("confirm.paid_title"), 30)
    chat.page.screenshot(path=str(ARTIFACTS / "receipt-after-hosted-page.png"), full_page=True)


def test_add_funds_corrected_in_the_same_card(chat: Chat, localizer: Localizer) -> None:
    """Issue 14: a wrong amount used to post a second form (and leave the first clickable).
    With Universal Actions the error shows at its field in the same card, the amount is put
    right there, and the order is placed from it: the chat holds one form, not two."""
    en = localizer.translator("en-US")
    chat.wait_for_card(0, en.gettext("welcome.title"))
    before = chat.send(first_word(en, "command.add_funds"))
    form = chat.wait_for_card(before, en.gettext("add_funds.title"))
    messages = chat.count()
    amount = en.gettext("add_funds.amount_label", currency="USD")

    form.get_by_label(amount).fill("12.345")
    chat.press(form, en.gettext("add_funds.review"))
    error = en.ngettext("error.amount.too_many_decimals", 2, decimals=en.number(2))
    form.get_by_text(error, exact=True).wait_for(timeout=REPLY_TIMEOUT * 1000)
    assert form.get_by_label(amount).input_value() == "12.345"  # the typed value kept
    assert chat.count() == messages
    chat.page.screenshot(path=str(ARTIFACTS / "add-funds-error-in-place.png"), full_page=True)

    form.get_by_label(amount).fill("500")
    chat.press(form, en.gettext("add_funds.review"))
    chat.wait_in(form, en.gettext("confirm.title"))
    chat.press(form, en.gettext("confirm.place"))
    chat.wait_in(form, en.gettext("receipt.title"))

    # One card went form → form with its error → confirmation → receipt; nothing else was
    # posted, no form is left to press, and the receipt has no buttons.
    assert chat.count() == messages
    assert chat.headings(en.gettext("add_funds.title")) == 0
    assert chat.headings(en.gettext("receipt.title")) == 1
    assert form.locator(".ac-pushButton").count() == 0  # the card's own buttons (Adaptive Cards)
    assert en.money(Decimal("500"), "USD") in normalize(form.inner_text())


def pstn_export(charges: list[Decimal], ago: timedelta = timedelta(hours=1)) -> bytes:
    """An admin centre PSTN usage export: one Communications Credits call (USD) per charge,
    started `ago` before now.

    The caller is a made-up user: the Playground's own ids are not GUIDs, which the export's
    AAD ObjectId column must be.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    start = datetime.now(UTC).replace(microsecond=0) - ago
    for charge in charges:
        writer.writerow({
            "UsageId": str(uuid.uuid4()), "Call ID": str(uuid.uuid4()), "Conference ID": "",
            "User Location": "US", "AAD ObjectId": str(uuid.uuid4()),
            "UPN": "wei.zhang@contoso.example", "User Display Name": "Zhang, Wei (张伟)",
            "Caller ID": "+14255550100",
            "Call Type": "user_out", "Number Type": "toll",
            "Domestic/International": "International", "Destination Dialed": "France",
            "Destination Number": "+33123***",
            "Start Time": start.isoformat().replace("+00:00", "Z"),
            "End Time": (start + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "Duration Seconds": "300", "Connection Fee": "0.00", "Charge": f"{charge:.2f}",
            "Currency": "USD", "Capability": "MCOPSTNPP",
        })  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


def push_usage(bot: str, tenant_id: str, body: bytes) -> dict:
    """`POST /api/tenants/{tenant}/usage` with the tenant's key, as a tenant's tooling would."""
    request = urllib.request.Request(
        f"{bot}/api/tenants/{tenant_id}/usage",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {tenant_key(USAGE_API_SECRET, tenant_id)}",
            "Content-Type": "text/csv",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.load(response)


def test_low_balance_alert_after_a_usage_import(chat: Chat, localizer: Localizer, bot: str) -> None:
    """An admin buys $100 through the add-funds form; usage pushed through the usage API takes
    the balance below a fifth of that purchase (the default threshold with auto-recharge off),
    and the low-balance alert arrives in the personal chat on its own (a proactive message)."""
    en = localizer.translator("en-US")
    welcome = chat.wait_for_card(0, en.gettext("welcome.title"))

    # The add-funds form from the welcome card's menu: the amount, the saved demo card (chosen
    # by default), review, place the order.
    purchase = Decimal("100.00")
    before = chat.press(welcome, en.gettext("menu.add_funds"))
    form = chat.wait_for_card(before, en.gettext("add_funds.title"), 30)
    form.get_by_label(en.gettext("add_funds.amount_label", currency="USD")).fill("100")
    chat.press(form, en.gettext("add_funds.review"))
    chat.wait_in(form, en.gettext("confirm.title"))
    chat.press(form, en.gettext("confirm.place"))
    chat.wait_in(form, en.gettext("receipt.title"))

    # Usage worth $85 leaves $15, below the $20 threshold.
    threshold = purchase * DEFAULT_THRESHOLD_PERCENT / 100
    before = chat.count()
    report = push_usage(
        bot,
        DEFAULT_TENANT_ID,
        pstn_export([Decimal("50.00"), Decimal("35.00")]),
    )
    assert (report["charged"], report["debited_minor"]) == (2, 8500), report
    balance = purchase - Decimal("85.00")
    assert report["balance_after_minor"] == int(balance * 100) < int(threshold * 100)

    # The alert: its title, the balance and threshold, and an Add funds button that opens the
    # form.
    alert = chat.wait_for_card(before, en.gettext("alert.balance_low.title"), 30)
    text = plain(
        en.gettext(
            "alert.balance_low.text",
            balance=en.money(balance, "USD"),
            threshold=en.money(threshold, "USD"),
        )
    )
    assert text in normalize(alert.inner_text())
    # Kept for a person to look at (tests/e2e/artifacts is not committed).
    chat.page.screenshot(path=str(ARTIFACTS / "alert-balance-low.png"), full_page=True)

    before = chat.press(alert, en.gettext("menu.add_funds"))
    chat.wait_for_card(before, en.gettext("add_funds.title"), 30)

    # Sent once: the install's two activities store one conversation, the crossing one event.
    title = en.gettext("alert.balance_low.title")
    assert chat.page.get_by_role("heading", name=title, exact=True).count() == 1


def place_order(chat: Chat, en, amount: str) -> None:
    """`add funds <amount>` with the saved demo card, up to the receipt."""
    before = chat.send(first_word(en, "command.add_funds") + " " + amount)
    confirm = chat.wait_for_card(before, en.gettext("confirm.title"))
    chat.press(confirm, en.gettext("confirm.place"))
    chat.wait_in(confirm, en.gettext("receipt.title"))


def test_runway_alert_offers_auto_recharge(chat: Chat, localizer: Localizer, bot: str) -> None:
    """Issue 16: $60 of calls yesterday against a $100 purchase leaves $40, above the $20
    low-balance threshold but less than a day at that rate: the runway alert arrives on its own,
    with the mean daily spend, and its Turn on auto-recharge button opens the form."""
    en = localizer.translator("en-US")
    chat.wait_for_card(0, en.gettext("welcome.title"))
    place_order(chat, en, "100")

    before = chat.count()
    report = push_usage(
        bot, DEFAULT_TENANT_ID, pstn_export([Decimal("60.00")], ago=timedelta(days=1))
    )
    assert (report["charged"], report["balance_after_minor"]) == (1, 4000), report

    titles = {en.gettext("alert.runway_low.title_today")} | {
        en.ngettext("alert.runway_low.title_days", days, days=str(days)) for days in range(1, 15)
    }

    def is_runway_alert(index: int, _text: str) -> bool:
        message = chat.bot_messages.nth(index)
        return any(
            message.get_by_role("heading", name=title, exact=True).count() for title in titles
        )

    alert = chat.wait_for_reply(before, is_runway_alert, "a runway alert", 30)
    text = normalize(alert.inner_text())
    assert en.gettext("alert.fact.mean_daily") in text
    assert en.money(Decimal("60.00"), "USD") in text
    chat.page.screenshot(path=str(ARTIFACTS / "alert-runway-low.png"), full_page=True)
    # No low-balance alert: $40 is above a fifth of the purchase.
    assert chat.headings(en.gettext("alert.balance_low.title")) == 0

    before = chat.press(alert, en.gettext("alert.action.turn_on_auto_recharge"))
    chat.wait_for_card(before, en.gettext("auto_recharge.title"), 30)


def test_history_lists_the_purchase_and_exports_csv(chat: Chat, localizer: Localizer) -> None:
    """Issue 16: `history` shows this month's purchase; Export posts a card whose link (served
    by the bot, signed for 15 minutes) downloads a CSV with a BOM whose amounts tie to the
    balances it states."""
    en = localizer.translator("en-US")
    chat.wait_for_card(0, en.gettext("welcome.title"))
    place_order(chat, en, "500")

    before = chat.send(first_word(en, "command.history"))
    card = chat.wait_for_card(before, en.gettext("history.title"), 30)
    text = normalize(card.inner_text())
    assert en.gettext("entry.purchase") in text
    assert en.money(Decimal("500"), "USD") in text

    before = chat.press(card, en.gettext("history.export"))
    export = chat.wait_for_card(before, en.gettext("history.export_title"), 30)
    link = export.get_by_role("link", name=en.gettext("history.export_download"), exact=True)
    # The button (an Action.OpenUrl: role=link, without an href in the Playground) opens the
    # link in a new tab, where the browser downloads the file; the test reads the address it
    # opened and downloads it the same way.
    with chat.page.context.expect_event("request", lambda r: "/history.csv?" in r.url) as opened:
        link.click()
    href = opened.value.url
    assert href.startswith("http://127.0.0.1:"), href
    chat.page.screenshot(path=str(ARTIFACTS / "history-export.png"), full_page=True)

    with urllib.request.urlopen(href, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        body = response.read()
    assert body.startswith("\ufeff".encode())
    header, *rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    amount = header.index(en.gettext("history.csv.amount"))
    after = header.index(en.gettext("history.csv.balance_after"))
    kinds = [row[header.index(en.gettext("history.csv.kind"))] for row in rows]
    assert en.gettext("entry.purchase") in kinds
    # The books tie: the first row's opening balance plus every amount is the last balance.
    opening = Decimal(rows[0][after]) - Decimal(rows[0][amount])
    assert opening + sum(Decimal(row[amount]) for row in rows) == Decimal(rows[-1][after])
    assert Decimal("500.00") in {Decimal(row[amount]) for row in rows}

    # The same link, altered, is refused.
    forged = href.replace("sig=", "sig=A")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=30)
    assert refused.value.code == 403
