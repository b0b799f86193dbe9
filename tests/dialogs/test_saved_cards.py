"""Saved cards through the real app: a card is kept only once a payment with it succeeded, a
saved card that later fails is shown as failing, and an expired one is offered no more.

The processor is the embedded sandbox (its hosted page on the bot's address, its test cards in
Tables, docs/sandbox-cards.md): 4000 0000 0000 0002 is declined, 4000 0000 0000 9995 saves but
has no funds, 4000 0000 0000 0069 is refused as expired.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from tests.dialogs.test_add_funds_flow import page_path, pay_on_page
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, Chat, answered_card, choices, input_values, open_urls

DECLINED = "4000 0000 0000 0002"
NO_FUNDS = "4000 0000 0000 9995"
EXPIRED = "4000 0000 0000 0069"


@pytest.fixture
async def sandbox(settings):
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    yield SandboxGateway(TableSandboxRecords(store.table(store.names.sandbox_payments)))
    await store.close()


def offered(form: dict[str, Any]) -> list[str]:
    return [c["title"] for c in choices(form, "method") or [] if c["value"].startswith("card:")]


async def forms(chat: Chat) -> tuple[dict[str, Any], dict[str, Any]]:
    """The add-funds and auto-recharge forms as they open now."""
    await chat.say("add funds")
    add_funds = chat.last_card()
    await chat.say("auto-recharge")
    return add_funds, chat.last_card()


async def pay(chat: Chat, card: str, amount: str = "100") -> dict:
    """Add funds with a saved card (by its last four digits); the card that answers."""
    await chat.say("add funds")
    form = chat.last_card()
    [choice] = [c["value"] for c in choices(form, "method") if card[-4:] in c["title"]]
    confirm = answered_card(
        await chat.press(form, EN("add_funds.review"), amount=amount, method=choice)
    )
    return answered_card(await chat.press(confirm, EN("confirm.place")))


async def test_a_card_declined_on_the_hosted_page_is_never_offered(client, connector):
    """Issue 14: a new card, "Keep a new card" ticked, declined: it used to appear in both
    lists. A card is kept only once a payment (or a setup) with it succeeded."""
    chat = Chat(client, connector)
    await chat.say("add funds")
    form = chat.last_card()
    confirm = answered_card(
        await chat.press(
            form, EN("add_funds.review"), amount="100", method="new_card", save_card="true"
        )
    )
    path = page_path(confirm)

    declined = await pay_on_page(client, path, DECLINED)

    assert declined.status == 200  # the bank's answer on the page, which stays open
    for form in await forms(chat):
        assert offered(form) and not any("0002" in title for title in offered(form))
    # A second try on the same page with a good card: that card is kept, the declined is not.
    assert (await pay_on_page(client, path, "4242 4242 4242 4242")).status == 303
    for form in await forms(chat):
        assert not any("0002" in title for title in offered(form))


async def test_a_saved_card_that_fails_is_shown_as_failing_and_an_expired_one_is_not_offered(
    client, connector, sandbox
):
    chat = Chat(client, connector)
    await chat.say("status")  # the demo account
    await sandbox.seed_card(activities.TENANT, NO_FUNDS)
    await sandbox.seed_card(activities.TENANT, EXPIRED)
    add_funds, _ = await forms(chat)
    assert sum("9995" in t or "0069" in t for t in offered(add_funds)) == 2

    failed = await pay(chat, NO_FUNDS)
    assert EN("failed.reason.insufficient_funds") in card_texts(failed)
    failed = await pay(chat, EXPIRED)
    assert EN("failed.reason.expired_card") in card_texts(failed)

    today = EN.date(datetime.now(UTC).date())
    for form in await forms(chat):
        titles = offered(form)
        # Declined for want of funds: still offered (the bank may accept it tomorrow), marked.
        [no_funds] = [title for title in titles if "9995" in title]
        assert no_funds.endswith(EN("add_funds.method_failing", card="", date=today).strip())
        # Refused as expired: not offered, and the form says why.
        assert not any("0069" in title for title in titles)
        assert any("0069" in text and text.endswith(EN("add_funds.card_expired", card="")
                   .removeprefix(" ")) for text in card_texts(form))  # fmt: skip
        # Nor can a press name it: it is not this form's to choose.
    await chat.say("add funds")
    form = chat.last_card()
    expired_choice = "card:" + next(
        c.id for c in (await _account(client)).cards if c.last4 == "0069"
    )
    again = answered_card(
        await chat.press(form, EN("add_funds.review"), amount="100", method=expired_choice)
    )
    assert EN("error.method.unknown") in card_texts(again)


async def test_a_card_past_its_expiry_month_is_not_offered(client, connector, sandbox):
    chat = Chat(client, connector)
    await chat.say("status")
    last_year = datetime.now(UTC).year - 1
    await sandbox.seed_card(activities.TENANT, "5555 5555 5555 4444", expiry_year=last_year)

    for form in await forms(chat):
        assert not any("4444" in title for title in offered(form))
        assert any("4444" in text for text in card_texts(form))  # said to have expired
        assert "4444" not in input_values(form).get("method", "")


async def test_a_payment_that_succeeds_clears_the_failing_mark(client, connector, sandbox):
    """The demo card fails once (its bank said no: the sandbox's card is swapped for one that
    declines, as a bank would), then pays: no longer marked."""
    chat = Chat(client, connector)
    await chat.say("status")
    card = (await _account(client)).cards[0]
    await _mark_failing(client, card.id)
    add_funds, _ = await forms(chat)
    assert any(EN("add_funds.method_failing", card="", date="").strip(" ·") in t
               for t in offered(add_funds))  # fmt: skip

    receipt = await pay(chat, card.last4)

    assert EN("receipt.title") in card_texts(receipt)
    account = await _account(client)
    assert (account.card(card.id).failure, account.card(card.id).failed_on) == ("", "")
    assert open_urls(receipt) == []


async def _account(client):
    from app import SERVICES

    return await client.app[SERVICES].accounts.get_or_create(activities.TENANT)


async def _mark_failing(client, card_id: str) -> None:
    from dataclasses import replace

    from app import SERVICES

    repo = client.app[SERVICES].credits
    current = await repo.get_account(activities.TENANT)
    cards = tuple(
        replace(c, failure="declined", failed_on="2026-11-03") if c.id == card_id else c
        for c in current.value.cards
    )
    await repo.save_account(current, replace(current.value, cards=cards))
