"""The auto-recharge settings flow through the real app, as Teams (or the Playground) sends it.

Replies are caught by the fake Bot Connector; the stored settings are read back from Azurite
through the real repository after every scenario.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from app import SERVICES
from credits.model import AutoRecharge, RechargeState, SavedCard
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, L10N, Chat, choices, element, error_at, submit_data

MAX = "$100,000.00"
MIN = "$50.00"


@pytest.fixture
async def repo(settings):
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    yield TableCreditsRepository(store.table(store.names.credits))
    await store.close()


@pytest.fixture
async def audit(settings):
    """What the audit log holds for the tenant (what `history` lists as changes)."""
    from datetime import UTC, datetime

    from storage.audit import AuditLog

    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    log = AuditLog(store.table(store.names.audit), clock=lambda: datetime.now(UTC))

    async def entries():
        start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        return await log.between(activities.TENANT, start, end, 100)

    yield entries
    await store.close()


async def stored(repo, tenant=activities.TENANT):
    account = await repo.get_account(tenant)
    assert account is not None
    return account.value


async def change_account(repo, **changes) -> None:
    current = await repo.get_account(activities.TENANT)
    await repo.save_account(current, replace(current.value, **changes))


def values_of(card: dict[str, Any]) -> dict[str, str]:
    return {
        k: element(card, k).get("value") for k in ("enabled", "recharge_with", "trigger", "method")
    }


async def open_form(chat: Chat) -> dict[str, Any]:
    await chat.say("auto-recharge")
    card = chat.last_card()
    assert card_texts(card)[0] == L10N.translator(chat.locale)("auto_recharge.title")
    return card


async def review(chat: Chat, form: dict[str, Any], **fields: str) -> dict[str, Any]:
    data = {"enabled": "true", "recharge_with": "1,000.00", "trigger": "200.00"}
    if "method" not in fields:
        data["method"] = saved_card(form)
    await chat.submit({**submit_data(form, "auto_recharge"), **data, **fields})
    return chat.last_card()


def saved_card(form: dict[str, Any]) -> str:
    return next(c["value"] for c in choices(form, "method") if c["value"].startswith("card:"))


def warnings_of(card: dict[str, Any]) -> list[str]:
    return [
        e["text"]
        for e in card["body"]
        if e.get("type") == "TextBlock" and e.get("color") == "warning"
    ]


# --- showing the settings -----------------------------------------------------------------------


async def test_a_new_tenant_sees_auto_recharge_off_with_its_saved_methods(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    account = await stored(repo)
    card = account.cards[0]
    assert values_of(form) == {
        "enabled": "false",
        "recharge_with": "",
        "trigger": "",
        "method": f"card:{card.id}",
    }
    # Saved cards and agreement numbers, labelled as on the add-funds form; never "a new card".
    assert [c["value"] for c in choices(form, "method")] == [
        f"card:{card.id}",
        "agreement:EA-4471-2210",
        "agreement:EA-8802-3157",
    ]
    assert choices(form, "method")[0]["title"].startswith("Visa ending in 4242")
    assert (
        EN("add_funds.method_agreement", number="EA-4471-2210")
        == choices(form, "method")[1]["title"]
    )
    assert EN("auto_recharge.limits", minimum=MIN, maximum=MAX) in card_texts(form)


async def test_the_form_shows_the_saved_settings(client, connector, repo):
    chat = Chat(client, connector)
    await open_form(chat)
    await change_account(
        repo, auto_recharge=AutoRecharge(True, 125050, 20000, "agreement:EA-8802-3157")
    )
    form = await open_form(chat)
    assert values_of(form) == {
        "enabled": "true",
        "recharge_with": "1,250.50",
        "trigger": "200.00",
        "method": "agreement:EA-8802-3157",
    }
    # In Portuguese the amounts are written the way a Portuguese admin types them.
    pt = Chat(client, connector, locale="pt-BR")
    form = await open_form(pt)
    assert values_of(form)["recharge_with"] == "1.250,50" and values_of(form)["trigger"] == "200,00"


# --- turning it on --------------------------------------------------------------------------------


async def test_turn_on_in_english(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    card_id = saved_card(form)
    confirm = await review(chat, form, recharge_with="1,000", trigger="200", method=card_id)

    texts = card_texts(confirm)
    assert EN("auto_recharge.confirm_title") in texts
    assert EN("auto_recharge.on") in texts and "$1,000.00" in texts and "$200.00" in texts
    assert any("4242" in text for text in texts)
    assert warnings_of(confirm) == []
    assert (await stored(repo)).auto_recharge == AutoRecharge()  # nothing saved before Save

    save = submit_data(confirm, "auto_recharge_confirm", "save")
    assert save["nonce"] == submit_data(form, "auto_recharge")["nonce"]
    assert set(save) == {"form", "nonce", "action"}  # the values stay on the server
    await chat.submit(save, reply_to="activity-2")

    # The saved-settings card replaces the confirmation.
    update = connector.posted[-1]
    assert update.method == "PUT" and update.path.endswith("/activities/activity-2")
    saved = chat.last_texts()
    assert EN("auto_recharge.saved_title") in saved
    assert EN("status.auto_recharge_on", amount="$1,000.00", trigger="$200.00") in saved

    account = await stored(repo)
    assert account.auto_recharge == AutoRecharge(True, 100000, 20000, card_id.removeprefix("card:"))
    assert account.balance_minor == 0

    await chat.say("status")
    assert EN("status.auto_recharge_on", amount="$1,000.00", trigger="$200.00") in chat.last_texts()


async def test_turn_on_in_portuguese_with_an_agreement(client, connector, repo):
    chat = Chat(client, connector, locale="pt-BR")
    pt = L10N.translator("pt-BR")
    await chat.say("recarga automática")
    form = chat.last_card()
    assert pt("auto_recharge.title") in card_texts(form)
    confirm = await review(
        chat, form, recharge_with="1.000,00", trigger="250,50", method="agreement:EA-4471-2210"
    )
    assert pt("auto_recharge.confirm_title") in card_texts(confirm)
    dumped = json.dumps(confirm, ensure_ascii=False)
    assert "US$\xa01.000,00" in dumped and "US$\xa0250,50" in dumped
    assert pt("add_funds.method_agreement", number="EA-4471-2210") in dumped
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    assert pt("auto_recharge.saved_title") in chat.last_texts()

    account = await stored(repo)
    assert account.auto_recharge == AutoRecharge(True, 100000, 25050, "agreement:EA-4471-2210")
    await chat.say("saldo")
    assert (
        pt("status.auto_recharge_on", amount="US$\xa01.000,00", trigger="US$\xa0250,50")
        in chat.last_texts()
    )


# --- problems at their field ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("recharge_with", "", EN("error.amount.empty")),
        ("recharge_with", "abc", EN("error.amount.not_a_number")),
        ("recharge_with", "1e9", EN("error.amount.not_a_number")),
        ("recharge_with", "-500", EN("error.amount.negative")),
        ("recharge_with", "0", EN("error.amount.zero")),
        ("recharge_with", "12.345", EN.ngettext("error.amount.too_many_decimals", 2, decimals=2)),
        ("recharge_with", "49.99", EN("error.amount.below_minimum", minimum=MIN)),
        ("recharge_with", "100000.01", EN("error.amount.above_maximum", maximum=MAX)),
        ("trigger", "", EN("error.amount.empty")),
        ("trigger", "NaN", EN("error.amount.not_a_number")),
        ("trigger", "-1", EN("error.amount.negative")),
        ("trigger", "0.001", EN.ngettext("error.amount.too_many_decimals", 2, decimals=2)),
        ("trigger", "100000.01", EN("error.trigger.above_maximum", maximum=MAX)),
        ("trigger", "9" * 40, EN("error.trigger.above_maximum", maximum=MAX)),
    ],
)
async def test_bad_amounts_come_back_at_their_field(client, connector, repo, field, typed, message):
    chat = Chat(client, connector)
    form = await open_form(chat)
    again = await review(chat, form, **{field: typed})
    assert EN("auto_recharge.title") in card_texts(again)
    assert error_at(again, field) == message
    other = "trigger" if field == "recharge_with" else "recharge_with"
    assert error_at(again, other) is None and error_at(again, "method") is None
    # What was typed is kept, and the form is the same one (same nonce).
    assert values_of(again)[field] == typed
    assert values_of(again)["enabled"] == "true"
    assert (
        submit_data(again, "auto_recharge")["nonce"] == submit_data(form, "auto_recharge")["nonce"]
    )
    assert (await stored(repo)).auto_recharge == AutoRecharge()


async def test_every_problem_shows_at_once(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    again = await review(chat, form, recharge_with="10", trigger="-3", method="bitcoin")
    assert error_at(again, "recharge_with") == EN("error.amount.below_minimum", minimum=MIN)
    assert error_at(again, "trigger") == EN("error.amount.negative")
    assert error_at(again, "method") == EN("error.method.unknown")
    assert (await stored(repo)).auto_recharge == AutoRecharge()


async def test_forged_payment_methods_are_refused(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    account = await stored(repo)
    unsaved = SavedCard("card-used-once", "tok", "Visa", "0069", 12, 2030, saved=False)
    await change_account(repo, cards=(*account.cards, unsaved))
    forged = (
        "card:card-of-another-tenant",
        "card:card-used-once",  # a card used once and not saved is never offered
        "card-used-once",  # a stored id is not a choice
        "agreement:EA-0000",
        "agreement:",
        "new_card",
        "",
        "bitcoin",
    )
    for method in forged:
        again = await review(chat, form, method=method)
        assert error_at(again, "method") == EN("error.method.unknown"), method
    await chat.submit(
        {
            **submit_data(form, "auto_recharge"),
            "enabled": "true",
            "recharge_with": "500",
            "trigger": "100",
            "method": {"card": 1},
        }
    )
    assert error_at(chat.last_card(), "method") == EN("error.method.unknown")
    assert (await stored(repo)).auto_recharge == AutoRecharge()


async def test_a_stale_nonce_changes_nothing(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.submit(
        {
            "form": "auto_recharge",
            "nonce": "forged",
            "enabled": "true",
            "recharge_with": "500",
            "trigger": "100",
            "method": saved_card(form),
        }
    )
    assert connector.texts()[-1] == EN("auto_recharge.use_the_form")
    confirm = await review(chat, form)
    await chat.submit({**submit_data(confirm, "auto_recharge_confirm", "save"), "nonce": "forged"})
    assert connector.texts()[-1] == EN("auto_recharge.use_the_form")
    await chat.say("ok then")  # typed text while the confirmation is open
    assert connector.texts()[-1] == EN("auto_recharge.use_the_form")
    assert (await stored(repo)).auto_recharge == AutoRecharge()


# --- warnings on the confirmation --------------------------------------------------------------


async def test_a_trigger_of_zero_is_allowed_with_a_warning(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    confirm = await review(chat, form, trigger="0")
    assert warnings_of(confirm) == [EN("auto_recharge.warning.trigger_zero")]
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    settings = (await stored(repo)).auto_recharge
    assert (
        settings.enabled and settings.trigger_minor == 0 and settings.recharge_with_minor == 100000
    )


@pytest.mark.parametrize(("amount", "trigger"), [("200", "200"), ("100", "250.50")])
async def test_a_recharge_that_cannot_lift_the_balance_is_warned_about(
    client, connector, repo, amount, trigger
):
    chat = Chat(client, connector)
    form = await open_form(chat)
    confirm = await review(chat, form, recharge_with=amount, trigger=trigger)
    expected = EN(
        "auto_recharge.warning.no_lift",
        amount=f"${float(amount):,.2f}",
        trigger=f"${float(trigger):,.2f}",
    )
    assert warnings_of(confirm) == [expected]
    # A warning does not block: the settings save.
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    assert (await stored(repo)).auto_recharge.enabled


async def test_turning_it_off_says_plainly_what_stops(client, connector, repo, audit):
    chat = Chat(client, connector)
    await open_form(chat)
    on = AutoRecharge(True, 50000, 10000, "agreement:EA-4471-2210")
    await change_account(repo, auto_recharge=on)
    form = await open_form(chat)
    assert values_of(form)["enabled"] == "true"
    # Switched off; whatever the other fields hold is not checked when turning it off.
    confirm = await review(chat, form, enabled="false", recharge_with="garbage", trigger="")
    assert EN("auto_recharge.off") in card_texts(confirm)
    assert warnings_of(confirm) == [EN("auto_recharge.warning.off")]
    assert "toll-free numbers and dial-out calls stop working" in EN("auto_recharge.warning.off")

    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"), reply_to="activity-9")
    assert connector.posted[-1].method == "PUT"
    saved = chat.last_texts()
    assert EN("status.auto_recharge_off") in saved and EN("auto_recharge.warning.off") in saved
    # Off; the amounts and method are kept for the day it is turned on again.
    assert (await stored(repo)).auto_recharge == replace(on, enabled=False)
    assert [c.details for c in await audit()] == [{"enabled": False, "currency": "USD"}]
    await chat.say("status")
    assert EN("status.auto_recharge_off") in chat.last_texts()


# --- the failure state -------------------------------------------------------------------------


FAILED = RechargeState(
    due_key="recharge-7",
    attempts=2,
    next_attempt_at="2026-11-24T10:00:00+00:00",
    last_failure="expired_card",
)


async def test_turning_it_on_clears_the_failure_state(client, connector, repo):
    chat = Chat(client, connector)
    await open_form(chat)
    # Switched off by the engine after failed recharges.
    await change_account(
        repo,
        auto_recharge=AutoRecharge(False, 50000, 10000, "agreement:EA-4471-2210"),
        recharge=FAILED,
    )
    form = await open_form(chat)
    confirm = await review(
        chat, form, recharge_with="500", trigger="100", method="agreement:EA-4471-2210"
    )
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    account = await stored(repo)
    assert account.auto_recharge.enabled
    assert account.recharge == RechargeState(due_key="recharge-7")


async def test_a_new_method_clears_the_failure_state_and_new_amounts_do_not(
    client, connector, repo
):
    chat = Chat(client, connector)
    await open_form(chat)
    await change_account(
        repo,
        auto_recharge=AutoRecharge(True, 50000, 10000, "agreement:EA-4471-2210"),
        recharge=FAILED,
    )
    form = await open_form(chat)
    confirm = await review(
        chat, form, recharge_with="600", trigger="100", method="agreement:EA-4471-2210"
    )
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    account = await stored(repo)
    assert account.auto_recharge.recharge_with_minor == 60000 and account.recharge == FAILED

    form = await open_form(chat)
    confirm = await review(
        chat, form, recharge_with="600", trigger="100", method="agreement:EA-8802-3157"
    )
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    account = await stored(repo)
    assert account.auto_recharge.method_id == "agreement:EA-8802-3157"
    assert account.recharge == RechargeState(due_key="recharge-7")


# --- change, cancel, double press ---------------------------------------------------------------


async def test_change_goes_back_to_the_form_with_the_values_kept(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    confirm = await review(
        chat, form, recharge_with="750", trigger="0", method="agreement:EA-8802-3157"
    )
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "change"))
    again = chat.last_card()
    assert EN("auto_recharge.title") in card_texts(again)
    assert values_of(again) == {
        "enabled": "true",
        "recharge_with": "750",
        "trigger": "0",
        "method": "agreement:EA-8802-3157",
    }
    assert (
        submit_data(again, "auto_recharge")["nonce"] != submit_data(form, "auto_recharge")["nonce"]
    )
    # The old confirmation is dead.
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    assert (await stored(repo)).auto_recharge == AutoRecharge()


async def test_cancel_leaves_the_settings_as_they_were(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    confirm = await review(chat, form)
    await chat.submit({"command": "cancel"})
    assert connector.texts()[-1] == EN("cancelled")
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    assert (await stored(repo)).auto_recharge == AutoRecharge()


async def test_save_pressed_twice_is_harmless(client, connector, repo, audit):
    chat = Chat(client, connector)
    form = await open_form(chat)
    confirm = await review(chat, form)
    save = submit_data(confirm, "auto_recharge_confirm", "save")
    await chat.submit(save)
    await client.app[SERVICES].runway.idle()  # the forecast, looked at again after the save
    first = await repo.get_account(activities.TENANT)
    await chat.submit(save)  # the flow has ended: nothing is saved again
    second = await repo.get_account(activities.TENANT)
    assert second.etag == first.etag
    # ... and the admin sees the settings as saved, not the menu.
    assert EN("auto_recharge.saved_title") in card_texts(chat.last_card())
    assert second.value.auto_recharge == AutoRecharge(
        True, 100000, 20000, saved_card(form).removeprefix("card:")
    )
    # One change in the audit log: who turned it on, the amounts and the card.
    (change,) = await audit()
    assert (change.actor, change.action) == (activities.USER_AAD, "auto_recharge")
    assert change.details == {
        "enabled": True, "currency": "USD", "recharge_with_minor": 100000,
        "trigger_minor": 20000, "card_brand": "visa", "card_last4": "4242",
    }  # fmt: skip


async def test_save_delivered_twice_at_once_saves_once(client, connector, repo, audit):
    chat = Chat(client, connector)
    await open_form(chat)
    await change_account(repo, recharge=FAILED)
    form = await open_form(chat)
    confirm = await review(chat, form, recharge_with="300", trigger="50")
    save = submit_data(confirm, "auto_recharge_confirm", "save")
    await asyncio.gather(chat.submit(save), chat.submit(save), chat.submit(save))
    account = await stored(repo)
    assert account.auto_recharge == AutoRecharge(
        True, 30000, 5000, saved_card(form).removeprefix("card:")
    )
    assert account.recharge == RechargeState(due_key="recharge-7")
    assert account.balance_minor == 0
    assert len(await audit()) == 1


async def test_without_saved_methods_the_form_says_how_to_add_one(client, connector, repo):
    chat = Chat(client, connector)
    await open_form(chat)
    # A tenant whose processor keeps no card for it (it never saved one), and no agreement.
    await change_account(repo, cards=(), agreements=(), default_method_id="", payment_customer="")
    form = await open_form(chat)
    assert EN("auto_recharge.no_methods") in card_texts(form)
    # The way to add one: a card-saving page at the processor, never a card field here.
    [actions] = [e["actions"] for e in form["body"] if e.get("type") == "ActionSet"]
    assert {"command": "update_payment_method"} in [a["data"] for a in actions]
    again = await review(chat, form, method="")
    assert EN("error.method.unknown") in card_texts(again)
    # Turning it off needs no method.
    confirm = await review(chat, again, enabled="false", method="")
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))
    assert (await stored(repo)).auto_recharge == AutoRecharge()


async def test_after_something_unexpected_the_open_card_still_works(client, connector, repo):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.say("ok then")
    await chat.submit({"form": "auto_recharge", "nonce": "stale"})
    assert connector.texts()[-2:] == [EN("auto_recharge.use_the_form")] * 2
    confirm = await review(chat, form)  # the form still answers
    assert EN("auto_recharge.confirm_title") in card_texts(confirm)
    await chat.say("ok then")
    await chat.submit(submit_data(form, "auto_recharge"))  # the form again, not the confirmation
    assert connector.texts()[-1] == EN("auto_recharge.use_the_form")
    await chat.submit(submit_data(confirm, "auto_recharge_confirm", "save"))  # still answers
    assert EN("auto_recharge.saved_title") in chat.last_texts()
    assert (await stored(repo)).auto_recharge.enabled
