"""The add-funds and status flows through the real app, as Teams (or the Playground) sends them.

Replies are caught by the fake Bot Connector (tests/fakes/connector.py); the ledger is checked in
Azurite through the real repository after every scenario.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from credits import ledger
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, L10N, Chat, choices, submit_data


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
    assert saved and "4242" in saved[0]["title"]
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
    assert EN("receipt.recommend_auto_recharge") in card_texts(receipt)

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
        ("12.345", EN("error.amount.too_many_decimals", decimals=2)),
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


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"card_number": "4242 4242 4242 4241"}, EN("error.card.number")),
        ({"card_number": "1234"}, EN("error.card.number")),
        ({"card_year": "2020"}, EN("error.card.expiry")),
        ({"card_cvc": "12"}, EN("error.card.cvc")),
        ({"card_name": ""}, EN("error.card.name")),
    ],
)
async def test_bad_new_cards_come_back_on_the_form(client, connector, books, card, message):
    chat = Chat(client, connector)
    form = await open_form(chat)
    good = {
        "card_number": "4242424242424242",
        "card_month": "12",
        "card_year": "2030",
        "card_cvc": "123",
        "card_name": "Alex Wilber",
    }
    await chat.submit(
        {**submit_data(form, "add_funds"), "amount": "500", "method": "new_card", **good, **card}
    )
    texts = chat.last_texts()
    assert message in texts
    assert not any("4242 4242 4242 4241" in t or "4242424242424241" in t for t in texts)
    account, lots, _ = await books()
    assert account.balance_minor == 0 and lots == []


async def test_an_expired_card_fails_in_plain_words_and_changes_nothing(client, connector, books):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.submit(
        {
            **submit_data(form, "add_funds"),
            "amount": "500",
            "method": "new_card",
            "card_number": "4000000000000069",
            "card_month": "12",
            "card_year": "2030",
            "card_cvc": "123",
            "card_name": "Alex Wilber",
            "card_save": "false",
        }
    )
    confirm = chat.last_card()
    await chat.submit(submit_data(confirm, "add_funds_confirm", "place"))
    texts = chat.last_texts()
    assert EN("failed.title") in texts and EN("failed.reason.expired_card") in texts
    account, lots, entries = await books()
    assert (account.balance_minor, lots, entries) == (0, [], [])
    # The unsaved card is not offered next time.
    form = await open_form(chat)
    assert not any("0069" in c["title"] for c in choices(form, "method"))


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
