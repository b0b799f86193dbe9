"""Universal Actions through the real app: every form changes in place as Teams presses it.

Each press is an `adaptiveCard/action` invoke as Teams sends it (tests/support/chat.py,
`Chat.press`); the invoke's HTTP answer carries the card that replaces the pressed one. The fake
Bot Connector (tests/fakes/connector.py) records what the bot posts to the chat: a form's error
round trip posts nothing, and a finished form is written over its message for everyone (a PUT),
as a summary without buttons.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.dialogs.test_add_funds_flow import page_path, pay_on_page
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import (
    EN,
    L10N,
    NOT_ADMIN,
    Chat,
    UserChat,
    actions_of,
    answered_card,
    choices,
    element,
    error_at,
    input_values,
)

MESSAGE = "application/vnd.microsoft.activity.message"


def posts(connector) -> list[Any]:
    """New messages in the chat (POSTs); updates of a message (PUTs) are not new messages."""
    return [p for p in connector.posted if p.method == "POST"]


def updates(connector) -> list[Any]:
    return [p for p in connector.posted if p.method == "PUT"]


async def opened(chat: Chat, command: str) -> dict[str, Any]:
    """A form opened by typing its command: the one message the flow posts."""
    before = len(posts(chat.connector))
    await chat.say(command)
    assert len(posts(chat.connector)) == before + 1
    return chat.last_card()


# --- add funds ------------------------------------------------------------------------------------


async def test_add_funds_an_error_then_placed_all_in_the_same_card(client, connector):
    chat = Chat(client, connector)
    form = await opened(chat, "add funds")
    saved = next(c["value"] for c in choices(form, "method") if c["value"].startswith("card:"))
    before = len(connector.posted)

    answer = await chat.press(form, EN("add_funds.review"), amount="12.345", method=saved)

    # The same form, with the error under its field and the typed value kept; nothing posted.
    again = answered_card(answer)
    assert EN("add_funds.title") in card_texts(again)
    assert error_at(again, "amount") == EN.ngettext(
        "error.amount.too_many_decimals", 2, decimals="2"
    )
    assert element(again, "amount")["value"] == "12.345"
    assert input_values(again)["method"] == saved
    assert len(connector.posted) == before

    confirm = answered_card(await chat.press(again, EN("add_funds.review"), amount="500"))
    assert EN("confirm.title") in card_texts(confirm)
    assert len(connector.posted) == before

    receipt = answered_card(await chat.press(confirm, EN("confirm.place"), card_id="activity-9"))

    assert EN("receipt.title") in card_texts(receipt)
    assert actions_of(receipt) == []  # a summary: nothing left to press
    # Written over the form's message for everyone, and still no new message.
    [update] = updates(connector)
    assert update.path.endswith("/activities/activity-9")
    assert update.activity["attachments"][0]["content"] == receipt
    assert len(posts(connector)) == 1


async def test_change_brings_the_form_back_with_its_values(client, connector):
    chat = Chat(client, connector)
    form = await opened(chat, "add funds")
    agreement = next(c for c in choices(form, "method") if c["value"].startswith("agreement:"))
    confirm = answered_card(
        await chat.press(
            form, EN("add_funds.review"), amount="750", method=agreement["value"], po="PO-7"
        )
    )

    back = answered_card(await chat.press(confirm, EN("confirm.change")))

    assert EN("add_funds.title") in card_texts(back)
    assert {k: input_values(back)[k] for k in ("amount", "method", "po")} == {
        "amount": "750",
        "method": agreement["value"],
        "po": "PO-7",
    }
    assert len(posts(connector)) == 1


async def test_a_purchase_order_number_with_a_card_is_refused_at_its_field(client, connector):
    """A PO number goes on an Enterprise Agreement's invoice; with a card it was silently
    dropped: now it is refused where it was typed, the other values kept."""
    chat = Chat(client, connector)
    form = await opened(chat, "add funds")
    saved = next(c["value"] for c in choices(form, "method") if c["value"].startswith("card:"))

    for method in (saved, "new_card"):
        again = answered_card(
            await chat.press(form, EN("add_funds.review"), amount="500", method=method, po="PO-1")
        )
        assert error_at(again, "po") == EN("error.po_with_card")
        assert error_at(again, "amount") is None
        assert input_values(again)["po"] == "PO-1"
        assert input_values(again)["amount"] == "500"
        form = again
    assert len(posts(connector)) == 1


async def test_a_new_card_the_form_becomes_the_page_s_card_and_is_told_in_place(client, connector):
    """The form turns into the confirmation whose button opens the hosted page; when the page
    is paid, that same message says so (for everyone) and the receipt is posted under it."""
    chat = Chat(client, connector)
    form = await opened(chat, "add funds")
    confirm = answered_card(
        await chat.press(
            form, EN("add_funds.review"), amount="300", method="new_card", card_id="activity-4"
        )
    )
    assert EN("confirm.checkout_note") in card_texts(confirm)
    assert len(posts(connector)) == 1

    paid = await pay_on_page(client, page_path(confirm))

    assert paid.status == 303
    update, receipt = connector.posted[-2:]
    assert (update.method, update.path.rsplit("/", 1)[-1]) == ("PUT", "activity-4")
    assert EN("confirm.paid_title") in card_texts(update.activity["attachments"][0]["content"])
    assert receipt.method == "POST"
    assert EN("receipt.title") in card_texts(receipt.activity["attachments"][0]["content"])


async def test_a_stale_form_answers_beside_itself_and_changes_nothing(client, connector):
    chat = Chat(client, connector)
    first = await opened(chat, "add funds")
    await opened(chat, "add funds")  # a newer form: the first one is stale

    answer = await chat.press(first, EN("add_funds.review"), amount="500")

    assert (answer["type"], answer["value"]) == (MESSAGE, EN("add_funds.use_the_form"))
    assert len(posts(connector)) == 2 and updates(connector) == []


async def test_cancel_turns_the_form_into_a_read_only_note(client, connector):
    chat = Chat(client, connector)
    form = await opened(chat, "add funds")

    cancelled = answered_card(await chat.press(form, EN("common.cancel")))

    assert card_texts(cancelled) == [EN("cancelled")]
    assert actions_of(cancelled) == []
    assert len(posts(connector)) == 1 and len(updates(connector)) == 1


# --- auto-recharge, alert settings, licences, language, menu -------------------------------------


async def test_auto_recharge_errors_then_saved_in_the_same_card(client, connector):
    chat = Chat(client, connector)
    form = await opened(chat, "auto-recharge")
    values = {"enabled": "true", "recharge_with": "10", "trigger": "-5"}

    again = answered_card(await chat.press(form, EN("auto_recharge.review"), **values))

    assert EN("auto_recharge.title") in card_texts(again)
    assert error_at(again, "recharge_with") == EN("error.amount.below_minimum", minimum="$50.00")
    assert error_at(again, "trigger") == EN("error.amount.negative")
    assert {k: input_values(again)[k] for k in values} == values
    confirm = answered_card(
        await chat.press(again, EN("auto_recharge.review"), recharge_with="500", trigger="100")
    )
    assert EN("auto_recharge.confirm_title") in card_texts(confirm)
    saved = answered_card(await chat.press(confirm, EN("auto_recharge.save")))
    assert EN("auto_recharge.saved_title") in card_texts(saved)
    assert actions_of(saved) == []
    assert len(posts(connector)) == 1 and len(updates(connector)) == 1


async def test_alert_settings_error_then_saved_in_the_same_card(client, connector):
    chat = Chat(client, connector)
    form = await opened(chat, "alerts")

    again = answered_card(await chat.press(form, EN("alert_settings.save"), thresholds="abc"))

    assert EN("alert_settings.title") in card_texts(again)
    assert error_at(again, "thresholds")
    assert input_values(again)["thresholds"] == "abc"
    saved = answered_card(await chat.press(again, EN("alert_settings.save"), thresholds="500"))
    assert EN("alert_settings.saved_title") in card_texts(saved)
    assert actions_of(saved) == []
    assert len(posts(connector)) == 1 and len(updates(connector)) == 1


async def test_licences_pages_search_and_assign_in_the_same_card(client, connector):
    chat = Chat(client, connector)
    listing = await opened(chat, "licences")
    first_page = [c["value"] for c in choices(listing, "users")]

    second = answered_card(await chat.press(listing, EN("licences.next")))
    assert [c["value"] for c in choices(second, "users")] != first_page
    nobody = answered_card(await chat.press(second, EN("licences.assign")))
    assert EN("licences.select_someone") in card_texts(nobody)
    found = answered_card(
        await chat.press(nobody, EN("licences.search_button"), query="zzz-nobody", filter="all")
    )
    assert EN("licences.nobody") in card_texts(found)
    back = answered_card(
        await chat.press(found, EN("licences.search_button"), query="", filter="eligible")
    )
    someone = choices(back, "users")[0]["value"]
    confirm = answered_card(await chat.press(back, EN("licences.assign"), users=someone))
    assert EN.ngettext("licences.confirm_assign", 1, count="1") in card_texts(confirm)
    result = answered_card(await chat.press(confirm, EN("licences.confirm")))

    assert EN("licences.result_title") in card_texts(result)
    assert actions_of(result) == []
    assert len(posts(connector)) == 1 and len(updates(connector)) == 1


async def test_the_language_chooser_answers_in_place_in_the_chosen_language(client, connector):
    chat = Chat(client, connector)
    chooser = await opened(chat, "language")
    pt = L10N.translator("pt-BR")

    answer = answered_card(await chat.press(chooser, "Português (Brasil)"))

    assert card_texts(answer) == [pt("language.changed")]
    assert len(posts(connector)) == 1
    await chat.say("ajuda")
    assert connector.texts()[-1] == pt("help.text")


async def test_a_menu_button_opens_its_form_in_place_of_the_menu(client, connector):
    chat = Chat(client, connector)
    menu = await opened(chat, "bananas")

    form = answered_card(await chat.press(menu, EN("menu.add_funds")))

    assert EN("add_funds.title") in card_texts(form)
    assert len(posts(connector)) == 1
    # And the form so opened goes on in place.
    again = answered_card(await chat.press(form, EN("add_funds.review"), amount="0"))
    assert error_at(again, "amount") == EN("error.amount.zero")


# --- notices: alerts, status ----------------------------------------------------------------------


async def test_an_alert_stays_an_alert_and_its_button_opens_the_form_below(client, connector):
    chat = Chat(client, connector)
    await chat.say("status")
    before = len(posts(connector))

    answer = await chat.execute({"command": "add_funds"}, verb="open")

    assert (answer["type"], answer["value"]) == (MESSAGE, EN("card.opened_below"))
    assert len(posts(connector)) == before + 1 and updates(connector) == []
    assert EN("add_funds.title") in chat.last_texts()


async def test_a_status_card_refreshes_to_the_current_balance(client, connector):
    chat = Chat(client, connector)
    await chat.say("status")
    status = chat.last_card()
    assert status["refresh"]["userIds"] == ["29:user-1"]
    assert "$0.00" in card_texts(status)
    # Funds added meanwhile (an agreement, through the add-funds form), and a form left open.
    added = await opened(chat, "add funds")
    agreement = next(c for c in choices(added, "method") if c["value"].startswith("agreement:"))
    confirm = answered_card(
        await chat.press(added, EN("add_funds.review"), amount="250", method=agreement["value"])
    )
    answered_card(await chat.press(confirm, EN("confirm.place")))
    form = await opened(chat, "auto-recharge")
    posted = len(posts(connector))

    refreshed = answered_card(
        await chat.execute(status["refresh"]["action"]["data"], verb="refresh", trigger="automatic")
    )

    assert "$250.00" in card_texts(refreshed)
    assert refreshed["refresh"] == status["refresh"]
    assert len(posts(connector)) == posted
    # The refresh left the open form alone: it still answers its own press.
    saved = answered_card(
        await chat.press(form, EN("auto_recharge.review"), enabled="false", recharge_with="")
    )
    assert EN("auto_recharge.confirm_title") in card_texts(saved)


async def test_a_status_card_in_a_channel_refreshes_for_the_admins_who_chat_with_the_bot(
    client, connector
):
    chat = Chat(client, connector)
    await chat.say("status")  # the admin's personal chat with the bot
    place = activities.in_channel("19:team@thread.tacv2", "19:team@thread.tacv2")
    channel = activities.message(
        connector.url,
        "status",
        conversation_id=place["conversation_id"],
        conversation_type="channel",
        channel_data=place["channel_data"],
        user_id="29:user-2",
    )
    channel["from"]["aadObjectId"] = activities.USER_AAD

    response = await client.post("/api/messages", json=channel)

    assert response.status in (200, 201)
    card = chat.last_card()
    assert card["refresh"]["userIds"] == ["29:user-2", "29:user-1"]


# --- who may press, and presses that are not the bot's --------------------------------------------


async def test_someone_who_is_not_an_admin_is_refused_beside_the_card(client, connector):
    chat = Chat(client, connector)
    form = await opened(chat, "add funds")
    other = UserChat(client, connector, NOT_ADMIN)

    answer = await other.press(form, EN("add_funds.review"), amount="500")

    assert (answer["type"], answer["value"]) == (MESSAGE, EN("access.refused"))
    assert len(posts(connector)) == 1 and updates(connector) == []


async def test_a_press_whose_turn_fails_is_answered_with_the_apology(
    client, connector, monkeypatch
):
    """The turn fails (the account cannot be read): the press is answered beside the card,
    in the admin's language, and nothing is posted."""
    from credits.accounts import AccountService

    chat = Chat(client, connector, locale="fr-FR")
    await chat.say("status")
    status = chat.last_card()

    async def unreadable(*_args, **_kwargs):
        raise RuntimeError("the account cannot be read")

    monkeypatch.setattr(AccountService, "status", unreadable)
    answer = await chat.execute(status["refresh"]["action"]["data"], verb="refresh")

    fr = L10N.translator("fr-FR")
    assert (answer["statusCode"], answer["type"]) == (200, MESSAGE)
    assert answer["value"] == fr("error.generic")
    assert len(posts(connector)) == 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        "x",
        [],
        {},
        {"action": "Action.Execute"},
        {"action": {"type": "Action.Submit", "data": {"command": "status"}}},
        {"action": {"type": "Action.Execute", "verb": 7, "data": "status"}},
        {"action": {"type": "Action.Execute", "verb": "refresh", "data": {"refresh": ["x"]}}},
    ],
)
async def test_a_malformed_press_is_answered_and_changes_nothing(client, connector, value):
    activity = activities.invoke(connector.url, verb="form", data={})
    activity["value"] = value

    response = await client.post("/api/messages", json=activity)

    assert response.status == 200
    answer = await response.json()
    assert answer["statusCode"] in (200, 400)
    assert posts(connector) == [] or EN("unknown.hint") in card_texts(connector.cards()[-1])
