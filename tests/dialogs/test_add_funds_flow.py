"""The add-funds and status flows through the real app, as Teams (or the Playground) sends them.

Replies are caught by the fake Bot Connector (tests/fakes/connector.py); the ledger is checked in
Azurite through the real repository after every scenario.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from html import escape
from typing import Any
from urllib.parse import urlsplit

import pytest

from app import SERVICES
from credits import ledger
from credits.accounts import saved_card
from locales import LANGUAGES
from storage.credits_repository import TableCreditsRepository
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, L10N, Chat, choices, open_urls, submit_data


@pytest.fixture
async def books(settings):
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    repo = TableCreditsRepository(store.table(store.names.credits))

    async def read(tenant=activities.TENANT):
        account = await repo.get_account(tenant)
        if account is None:
            return None, [], []
        lots = await repo.list_lots(tenant)
        entries = await repo.all_entries(tenant)
        ledger.check_invariant(account.value, lots, entries)
        return account.value, lots, entries

    yield read
    await store.close()


async def open_form(chat: Chat) -> dict[str, Any]:
    await chat.say("add funds")
    card = chat.last_card()
    assert EN("add_funds.title") in card_texts(card) or card_texts(card)
    return card


async def test_the_whole_flow_in_english(client, connector, books):
    chat = Chat(client, connector)
    form = await open_form(chat)
    saved = [c for c in choices(form, "method") if c["value"].startswith("card:")]
    # The network as its owner writes it, not the processor's key ("visa").
    assert saved and saved[0]["title"].startswith("Visa ending in 4242")
    data = submit_data(form, "add_funds")
    await chat.submit({**data, "amount": "1,250.50", "method": saved[0]["value"], "po": ""})

    confirm = chat.last_card()
    texts = card_texts(confirm)
    assert EN("confirm.title") in texts
    facts = str(confirm)
    assert "$1,250.50" in facts and "$0.00 → $1,250.50" in facts
    place = submit_data(confirm, "add_funds_confirm", "place")
    assert place["nonce"] == data["nonce"]

    await chat.submit(place, reply_to="activity-2")
    update = connector.posted[-1]
    assert update.method == "PUT" and update.path.endswith("/activities/activity-2")
    receipt = chat.last_card()
    assert EN("receipt.title") in card_texts(receipt)
    assert EN("receipt.recommend_auto_recharge", command="auto-recharge") in card_texts(receipt)

    account, lots, entries = await books()
    assert account.balance_minor == 125050
    assert len(lots) == 1 and len(entries) == 1 and entries[0].reference == data["nonce"]

    await chat.say("status")
    status = str(chat.last_card())
    assert "$1,250.50" in status and EN("entry.purchase") in status


async def test_the_whole_flow_in_portuguese_with_an_agreement(client, connector, books):
    chat = Chat(client, connector, locale="pt-BR")
    pt = L10N.translator("pt-BR")
    await chat.say("adicionar fundos")
    form = chat.last_card()
    assert pt("add_funds.title") in card_texts(form)
    agreement = next(c for c in choices(form, "method") if c["value"].startswith("agreement:"))
    await chat.submit(
        {
            **submit_data(form, "add_funds"),
            "amount": "1.250,50",
            "method": agreement["value"],
            "po": "PO-2026-11",
        }
    )
    confirm = chat.last_card()
    assert pt("confirm.title") in card_texts(confirm)
    assert "US$\xa01.250,50" in json.dumps(confirm, ensure_ascii=False)
    await chat.submit(submit_data(confirm, "add_funds_confirm", "place"))
    assert pt("receipt.title") in chat.last_texts()
    account, _, _ = await books()
    assert account.balance_minor == 125050


async def test_add_funds_with_an_amount_goes_straight_to_confirmation(client, connector, books):
    chat = Chat(client, connector)
    await chat.say("add funds 500")
    confirm = chat.last_card()
    assert EN("confirm.title") in card_texts(confirm)
    # "Change" goes back to the form with the amount kept.
    await chat.submit(submit_data(confirm, "add_funds_confirm", "change"))
    form = chat.last_card()
    assert EN("add_funds.title") in card_texts(form)
    assert '"value": "500"' in str(form).replace("'", '"')
    account, _, _ = await books()
    assert account.balance_minor == 0


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", EN("error.amount.empty")),
        ("abc", EN("error.amount.not_a_number")),
        ("NaN", EN("error.amount.not_a_number")),
        ("1e9", EN("error.amount.not_a_number")),
        ("-500", EN("error.amount.negative")),
        ("0", EN("error.amount.zero")),
        ("12.345", EN.ngettext("error.amount.too_many_decimals", 2, decimals=2)),
        ("49.99", EN("error.amount.below_minimum", minimum="$50.00")),
        ("100000.01", EN("error.amount.above_maximum", maximum="$100,000.00")),
        ("9" * 40, EN("error.amount.above_maximum", maximum="$100,000.00")),
    ],
)
async def test_bad_amounts_come_back_on_the_form(client, connector, books, amount, message):
    chat = Chat(client, connector)
    form = await open_form(chat)
    card_choice = choices(form, "method")[0]["value"]
    await chat.submit({**submit_data(form, "add_funds"), "amount": amount, "method": card_choice})
    again = chat.last_card()
    texts = card_texts(again)
    assert EN("add_funds.title") in texts
    assert message in texts
    assert submit_data(again, "add_funds")["nonce"] == submit_data(form, "add_funds")["nonce"]
    account, lots, _ = await books()
    assert account.balance_minor == 0 and lots == []


# --- a new card, on the sandbox's hosted page ---------------------------------------------------


async def choose_new_card(chat: Chat, amount: str = "500", save_card: str = "true") -> dict:
    """The form with "a new card": the order is placed, and its confirmation opens the page."""
    form = await open_form(chat)
    assert "new_card" in [c["value"] for c in choices(form, "method")]
    await chat.submit(
        {
            **submit_data(form, "add_funds"),
            "amount": amount,
            "method": "new_card",
            "save_card": save_card,
        }
    )
    return chat.last_card()


def page_path(card: dict) -> str:
    """Where the card's button goes, on the bot's own address (the test server's port)."""
    [url] = open_urls(card)
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname) == ("http", "127.0.0.1")
    assert parts.path.startswith("/sandbox/pay/")
    return parts.path


async def pay_on_page(client, path: str, number: str = "4242 4242 4242 4242", **fields):
    form = {
        "cardNumber": number,
        "cardExpiry": "12 / 34",
        "cardCvc": "123",
        "billingName": "Alex Wilber",
        **fields,
    }
    return await client.post(path, data=form, allow_redirects=False)


async def test_a_new_card_is_typed_on_the_hosted_page_and_the_receipt_comes_to_the_chat(
    client, connector, books
):
    chat = Chat(client, connector, locale="pt-BR")
    pt = L10N.translator("pt-BR")
    confirm = await choose_new_card(chat)

    # The confirmation has no Place button: its button opens the page made for this order.
    assert pt("confirm.pay_on_page") in card_texts(confirm)
    assert pt("confirm.checkout_note") in card_texts(confirm)
    assert "add_funds_confirm" not in json.dumps(confirm)
    confirmation_id = connector.posted[-1].activity_id
    path = page_path(confirm)
    page = await client.get(path)
    html = await page.text()
    assert page.status == 200 and 'lang="pt-BR"' in html and 'id="cardNumber"' in html
    assert escape(pt("hosted.pay", amount="US$\xa0500,00")) in html
    assert (await books())[0].balance_minor == 0  # nothing until the page is paid

    paid = await pay_on_page(client, path, "5555 5555 5555 4444")

    assert paid.status == 303
    assert paid.headers["Location"].endswith("/payments/done?lang=pt-BR&mode=payment")
    update, receipt = connector.posted[-2:]
    assert (update.method, update.path.rsplit("/", 1)[-1]) == ("PUT", confirmation_id)
    assert pt("confirm.paid_title") in card_texts(update.activity["attachments"][0]["content"])
    receipt_texts = card_texts(receipt.activity["attachments"][0]["content"])
    assert receipt.method == "POST" and pt("receipt.title") in receipt_texts
    assert any("4444" in text for text in receipt_texts)
    account, lots, entries = await books()
    assert account.balance_minor == 50000 and len(lots) == 1 and len(entries) == 1
    # The card was kept at the processor (beside the demo's), and is offered next time.
    assert [(c.last4, c.saved) for c in account.cards] == [("4242", True), ("4444", True)]
    form = await open_form(chat)
    assert sum("4444" in c["title"] for c in choices(form, "method")) == 1
    # The page is closed now; the success page says to go back to Teams.
    again = await pay_on_page(client, path)
    assert pt("hosted.closed") in await again.text()
    location = urlsplit(paid.headers["Location"])
    done = await client.get(f"{location.path}?{location.query}")
    assert pt("return.paid_text") in await done.text()
    assert (await books())[0].balance_minor == 50000


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ({"number": "4242 4242 4242 4241"}, EN("error.card.number")),
        ({"cardExpiry": "13 / 30"}, EN("error.card.expiry")),
        ({"cardExpiry": "01 / 20"}, EN("error.card.expiry")),
        ({"cardCvc": "12"}, EN("error.card.cvc")),
        ({"billingName": ""}, EN("error.card.name")),
        ({"number": "4000 0000 0000 0069"}, EN("failed.reason.expired_card")),
        ({"number": "4000 0000 0000 9995"}, EN("failed.reason.insufficient_funds")),
    ],
)
async def test_a_refused_card_is_explained_on_the_page_and_changes_nothing(
    client, connector, books, typed, message
):
    chat = Chat(client, connector)
    path = page_path(await choose_new_card(chat))
    posted = len(connector.posted)

    page = await pay_on_page(client, path, **typed)

    html = await page.text()
    assert page.status == 200 and escape(message) in html
    assert "4242424242424241" not in html and "4242 4242 4242 4241" not in html
    assert len(connector.posted) == posted  # the chat hears nothing
    account, lots, entries = await books()
    assert (account.balance_minor, lots, entries) == (0, [], [])
    # The page stays open: another card pays it.
    assert (await pay_on_page(client, path)).status == 303
    assert (await books())[0].balance_minor == 50000


async def test_a_card_used_once_is_not_offered_again(client, connector, books):
    chat = Chat(client, connector)
    path = page_path(await choose_new_card(chat, save_card="false"))
    await pay_on_page(client, path, "5555 5555 5555 4444")
    assert EN("receipt.title") in chat.last_texts()
    account, _, _ = await books()
    assert account.balance_minor == 50000
    form = await open_form(chat)
    assert not any("4444" in c["title"] for c in choices(form, "method"))


async def test_a_lost_event_is_booked_by_the_recovery_job(client, connector, books):
    chat = Chat(client, connector)
    confirm = await choose_new_card(chat)
    # The hanging test card pays, but its event never reaches the bot.
    assert (await pay_on_page(client, page_path(confirm), "4000 0000 0000 0259")).status == 303
    assert (await books())[0].balance_minor == 0
    assert EN("receipt.title") not in chat.last_texts()

    services = client.app[SERVICES]
    outcomes = await services.orders.recover(activities.TENANT, older_than=timedelta(0))
    await services.payments.recovered(outcomes)

    assert [o.status.value for o in outcomes] == ["succeeded"]
    assert EN("receipt.title") in chat.last_texts()
    assert EN("confirm.paid_title") in card_texts(
        connector.posted[-2].activity["attachments"][0]["content"]
    )
    account, lots, _ = await books()
    assert account.balance_minor == 50000 and len(lots) == 1
    # Another pass finds nothing pending, and tells nobody twice.
    posted = len(connector.posted)
    assert await services.orders.recover(activities.TENANT, older_than=timedelta(0)) == []
    await services.payments.recovered(outcomes)
    assert len(connector.posted) == posted


async def test_a_saved_card_whose_bank_asks_for_the_cardholder_gets_the_page_for_the_same_order(
    client, connector, books, settings
):
    chat = Chat(client, connector)
    await chat.say("status")  # the demo account, with its saved test card
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    try:
        gateway = SandboxGateway(TableSandboxRecords(store.table(store.names.sandbox_payments)))
        repo = TableCreditsRepository(store.table(store.names.credits))
        strict = saved_card(await gateway.seed_card(activities.TENANT, "4000 0027 6000 3184"))
        current = await repo.get_account(activities.TENANT)
        await repo.save_account(
            current, replace(current.value, cards=(strict,), default_method_id=strict.id)
        )
    finally:
        await store.close()
    await chat.say("add funds 500")
    place = submit_data(chat.last_card(), "add_funds_confirm", "place")

    await chat.submit(place, reply_to="activity-77")

    update = connector.posted[-1]
    assert update.method == "PUT" and update.path.endswith("/activities/activity-77")
    card = update.activity["attachments"][0]["content"]
    assert EN("confirm.authenticate_note") in card_texts(card)
    assert (await books())[0].balance_minor == 0
    assert (await pay_on_page(client, page_path(card), "4000 0027 6000 3184")).status == 303
    assert EN("receipt.title") in chat.last_texts()
    paid = connector.posted[-2]
    assert paid.method == "PUT" and paid.path.endswith("/activities/activity-77")
    account, lots, entries = await books()
    assert account.balance_minor == 50000 and len(lots) == 1
    assert entries[0].reference == place["nonce"]  # the same order, paid on the page


async def test_no_page_for_an_unknown_session(client):
    response = await client.get(f"/sandbox/pay/{activities.TENANT}/cs_sandbox_{'0' * 40}")
    assert response.status == 404


@pytest.mark.parametrize("locale", [lang.tag for lang in LANGUAGES])
async def test_the_pages_the_processor_returns_to_speak_the_admins_language(client, locale):
    t = L10N.translator(locale)
    for path, message in (
        (f"/payments/done?lang={locale}&mode=payment", "return.paid"),
        (f"/payments/done?lang={locale}&mode=setup", "return.saved"),
        (f"/payments/cancelled?lang={locale}&mode=payment", "return.cancelled"),
    ):
        response = await client.get(path)
        html = await response.text()
        assert response.status == 200 and f'lang="{locale}"' in html
        assert escape(t(f"{message}_title")) in html and escape(t(f"{message}_text")) in html
        assert response.headers["Cache-Control"] == "no-store"


async def test_forged_payment_methods_are_refused(client, connector, books):
    chat = Chat(client, connector)
    form = await open_form(chat)
    for method in ("card:card-of-another-tenant", "agreement:EA-0000", "", "bitcoin"):
        await chat.submit({**submit_data(form, "add_funds"), "amount": "500", "method": method})
        assert EN("error.method.unknown") in chat.last_texts()
    account, lots, _ = await books()
    assert account.balance_minor == 0 and lots == []


async def test_stray_input_keeps_the_form_waiting(client, connector, books):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.say("what is this?")
    await chat.submit({"form": "add_funds", "nonce": "stale", "amount": "500"})
    assert connector.texts()[-2:] == [EN("add_funds.use_the_form")] * 2
    # The form still works afterwards, and so does its confirmation.
    method = choices(form, "method")[0]["value"]
    await chat.submit({**submit_data(form, "add_funds"), "amount": "500", "method": method})
    confirm = chat.last_card()
    await chat.say("is this right")
    await chat.submit(submit_data(confirm, "add_funds_confirm", "place"))
    assert EN("receipt.title") in chat.last_texts()
    account, _, _ = await books()
    assert account.balance_minor == 50000


async def test_a_stale_nonce_changes_nothing(client, connector, books):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.submit(
        {
            "form": "add_funds",
            "nonce": "forged",
            "amount": "500",
            "method": choices(form, "method")[0]["value"],
        }
    )
    assert connector.texts()[-1] == EN("add_funds.use_the_form")
    await chat.submit({"form": "add_funds_confirm", "nonce": "forged", "action": "place"})
    account, lots, _ = await books()
    assert account.balance_minor == 0 and lots == []


async def test_place_order_pressed_twice_places_one_order(client, connector, books):
    chat = Chat(client, connector)
    await chat.say("add funds 500")
    place = submit_data(chat.last_card(), "add_funds_confirm", "place")
    await chat.submit(place)
    await chat.submit(place)  # the flow has ended: the same receipt again, no new order
    assert EN("receipt.title") in chat.last_texts()
    account, lots, entries = await books()
    assert account.balance_minor == 50000 and len(lots) == 1 and len(entries) == 1


async def test_place_order_delivered_twice_at_once_places_one_order(client, connector, books):
    chat = Chat(client, connector)
    await chat.say("add funds 750")
    place = submit_data(chat.last_card(), "add_funds_confirm", "place")
    await asyncio.gather(chat.submit(place), chat.submit(place), chat.submit(place))
    account, lots, entries = await books()
    assert account.balance_minor == 75000 and len(lots) == 1 and len(entries) == 1


async def test_cancel_leaves_nothing_behind(client, connector, books):
    chat = Chat(client, connector)
    await chat.say("add funds 500")
    await chat.submit({"command": "cancel"})
    assert connector.texts()[-1] == EN("cancelled")
    account, lots, _ = await books()
    assert account.balance_minor == 0 and lots == []


async def test_status_of_a_new_tenant(client, connector):
    chat = Chat(client, connector, locale="fr-FR")
    await chat.say("solde")
    fr = L10N.translator("fr-FR")
    texts = chat.last_texts()
    assert fr("status.no_funds") in texts and fr("status.no_transactions") in texts
