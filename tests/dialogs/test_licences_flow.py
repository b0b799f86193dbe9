"""The licences flow and admins-only access, through the real app on the embedded directory.

The local (unauthenticated) app seeds every new tenant's embedded directory with the demo users:
Alex Wilber (the Playground's default user, …0020) is a Billing Administrator, Isaiah Langer
(…0023) is not an admin.
"""

from __future__ import annotations

import pytest

from locales import Localizer
from tests.fakes.connector import card_texts
from tests.support.chat import NOT_ADMIN, Chat, UserChat, choices, submit_data

L10N = Localizer.from_directory()
EN = L10N.translator("en-US")


def _users(card, **kw):
    return choices(card, "users") or []


async def _list(chat: Chat, filter_name: str = "eligible", query: str = ""):
    await chat.say("licences")
    card = chat.last_card()
    if filter_name != "eligible" or query:
        await chat.submit(
            {
                **submit_data(card, "licences"),
                "action": "search",
                "filter": filter_name,
                "query": query,
            }
        )
        card = chat.last_card()
    return card


async def test_the_overview_counts_and_filters(client, connector):
    chat = Chat(client, connector)
    card = await _list(chat)
    texts = card_texts(card)
    assert EN("licences.title") in texts
    eligible = _users(card)
    assert eligible and all(EN("licences.standing.eligible") in u["title"] for u in eligible)
    missing = _users(await _list(chat, "missing"))
    assert missing and all(EN("licences.standing.eligible") not in u["title"] for u in missing)
    licensed = _users(await _list(chat, "licensed"))
    assert licensed and all(EN("licences.standing.licensed") in u["title"] for u in licensed)


async def test_search_by_name_or_upn(client, connector):
    chat = Chat(client, connector)
    found = _users(await _list(chat, "all", "megan"))
    assert [u["value"] for u in found] == ["00000000-0000-0000-0000-0000000000021"]
    assert _users(await _list(chat, "all", "alexw@example.com"))[0]["value"].endswith("0020")
    assert _users(await _list(chat, "all", "nobody-by-this-name")) == []


async def test_assign_to_three_users_with_a_result_each(client, connector):
    chat = Chat(client, connector)
    eligible = _users(await _list(chat, "eligible"))[0]["value"]
    missing = _users(await _list(chat, "missing"))[0]["value"]
    licensed = _users(await _list(chat, "licensed"))[0]["value"]
    card = chat.last_card()
    await chat.submit(
        {
            **submit_data(card, "licences"),
            "action": "assign",
            "users": f"{eligible},{missing},{licensed}",
        }
    )
    confirm = chat.last_card()
    assert EN.ngettext("licences.confirm_assign", 3, count=3) in card_texts(confirm)
    await chat.submit(
        {**submit_data(confirm, "licences_confirm"), "action": "confirm", "prerequisite": "none"},
        reply_to="activity-9",
    )
    result = card_texts(chat.last_card())
    assert connector.posted[-1].method == "PUT"
    assert EN("licences.outcome.assigned") in result
    assert any(t.startswith(EN("licences.outcome.already_had")) for t in result)
    assert EN.ngettext("licences.summary", 1, done=1, total=3) in result
    # Repeating the assignment changes nothing and says so.
    await chat.say("licences")
    await chat.submit(
        {**submit_data(chat.last_card(), "licences"), "action": "assign", "users": eligible}
    )
    await chat.submit({**submit_data(chat.last_card(), "licences_confirm"), "action": "confirm"})
    assert any(
        t.startswith(EN("licences.outcome.already_had")) for t in card_texts(chat.last_card())
    )


async def test_fixing_a_prerequisite_in_the_same_confirmation(client, connector):
    chat = Chat(client, connector)
    card = await _list(chat, "missing")
    target = next(
        u
        for u in _users(card)
        if EN("licences.missing.audio_conferencing_or_phone_system") in u["title"]
    )
    await chat.submit(
        {**submit_data(card, "licences"), "action": "assign", "users": target["value"]}
    )
    confirm = chat.last_card()
    assert choices(confirm, "prerequisite")
    await chat.submit(
        {
            **submit_data(confirm, "licences_confirm"),
            "action": "confirm",
            "prerequisite": "audio_conferencing",
        }
    )
    assert EN("licences.outcome.assigned_with_prerequisite") in card_texts(chat.last_card())


async def test_remove_then_remove_again(client, connector):
    chat = Chat(client, connector)
    card = await _list(chat, "licensed")
    user = _users(card)[0]["value"]
    for expected in ("licences.outcome.removed", "licences.outcome.not_held"):
        await chat.say("licences")
        await chat.submit(
            {**submit_data(chat.last_card(), "licences"), "action": "remove", "users": user}
        )
        await chat.submit(
            {**submit_data(chat.last_card(), "licences_confirm"), "action": "confirm"}
        )
        assert EN(expected) in card_texts(chat.last_card())


async def test_a_forged_submit_naming_another_tenants_user_changes_nothing(client, connector):
    chat = Chat(client, connector)
    card = await _list(chat, "eligible")
    before = len(_users(card))
    await chat.submit(
        {**submit_data(card, "licences"), "action": "assign", "users": "user-of-another-tenant"}
    )
    assert connector.texts()[-1] == EN("licences.unknown_users")
    assert len(_users(await _list(chat, "eligible"))) == before


@pytest.mark.parametrize(
    "activity",
    [
        {"text": "status"},
        {"text": "add funds 500"},
        {"text": "licences"},
        {"text": "language"},
        {"text": "auto-recharge"},
        {"text": "what"},
        {"value": {"command": "add_funds"}},
        {"value": {"command": "licences"}},
        {"value": {"form": "licences", "nonce": "x", "action": "assign_all_eligible"}},
        {"value": {"form": "add_funds_confirm", "nonce": "x", "action": "place"}},
    ],
)
async def test_a_non_admin_is_refused_everything_but_help(client, connector, activity):
    chat = UserChat(client, connector, NOT_ADMIN)
    if "text" in activity:
        await chat.say(activity["text"])
    else:
        await chat.submit(activity["value"])
    assert connector.texts() == [EN("access.refused")]


async def test_help_is_for_everyone(client, connector):
    chat = UserChat(client, connector, NOT_ADMIN)
    await chat.say("help")
    assert connector.texts() == [EN("help.text")]


async def test_a_stranger_to_the_directory_is_refused(client, connector):
    chat = UserChat(client, connector, "ffffffff-0000-0000-0000-000000000000")
    await chat.say("status")
    assert connector.texts() == [EN("access.refused")]


async def test_stray_input_keeps_the_licences_card_waiting(client, connector):
    chat = Chat(client, connector)
    card = await _list(chat)
    await chat.say("which one")
    assert connector.texts()[-1] == EN("licences.use_the_card")
    user = _users(card)[0]["value"]
    await chat.submit({**submit_data(card, "licences"), "action": "assign", "users": user})
    confirm = chat.last_card()
    await chat.say("wait")
    await chat.submit({**submit_data(confirm, "licences_confirm"), "action": "confirm"})
    assert EN("licences.outcome.assigned") in card_texts(chat.last_card())


async def test_seats_running_out_mid_way_through_the_app(client, connector, settings):
    """Assign to all eligible with two seats left: a result per user, two assigned."""
    from azure.data.tables import UpdateMode

    from credits.licences import COMMUNICATIONS_CREDITS_SKU_ID
    from storage.keys import escape_key
    from storage.tables import TableStore
    from tests.support import activities

    chat = Chat(client, connector)
    card = await _list(chat)  # seeds the demo directory
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    try:
        table = store.table(store.names.directory)
        sku = await table.get_entity(
            escape_key(activities.TENANT), "sku-" + escape_key(COMMUNICATIONS_CREDITS_SKU_ID)
        )
        sku["Enabled"] = int(sku["Consumed"]) + 2
        await table.update_entity(sku, mode=UpdateMode.MERGE)
    finally:
        await store.close()
    await chat.submit({**submit_data(card, "licences"), "action": "assign_all_eligible"})
    confirm = chat.last_card()
    assert EN("licences.seats_short") in card_texts(confirm)
    await chat.submit({**submit_data(confirm, "licences_confirm"), "action": "confirm"})
    result = card_texts(chat.last_card())
    assert result.count(EN("licences.outcome.assigned")) == 2
    assert result.count(EN("licences.outcome.no_seats")) >= 1
