"""Channels are shown by team and channel name, never by their raw id.

Through the real app on Azurite. The fake Bot Connector stands for Teams: it receives the bot's
messages and serves the Teams roster of a team (`/v3/teams/{id}` and its `/conversations`), which
botbuilder's TeamsInfo reads. The activities are shaped as Teams sends them: a channel message
names neither team nor channel, and carries `;messageid=` when it is a reply in a thread.
"""

from __future__ import annotations

from storage.conversations import ConversationRepository
from storage.tables import TableStore
from tests.alerts.test_alerts_in_app import spend, wait_for_alert
from tests.fakes.connector import Team, card_texts
from tests.support import activities
from tests.support.chat import EN, L10N

TEAM = "19:finance-general@thread.tacv2"  # the General channel's id is the team's
OPS = "19:billing-ops@thread.tacv2"
PERSONAL = "a:personal-chat-1"


async def post(client, activity) -> None:
    response = await client.post("/api/messages", json=activity)
    assert response.status in (200, 201), await response.text()


async def say(client, connector, text: str, channel: str, thread: str | None = "1795997321996"):
    await post(
        client,
        activities.message(connector.url, text, **activities.in_channel(TEAM, channel, thread)),
    )


async def stored(settings, conversation_id: str):
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    try:
        repo = ConversationRepository(store.table(store.names.conversations))
        return await repo.get(activities.TENANT, conversation_id)
    finally:
        await store.close()


def listed_channels(card) -> list[str]:
    return [text.removeprefix("• ") for text in card_texts(card) if text.startswith("• ")]


async def alert_settings(client, connector) -> list[str]:
    await post(client, activities.message(connector.url, "alerts"))
    return listed_channels(connector.cards()[-1])


async def test_channels_are_named_from_the_roster_and_follow_renames(client, connector, settings):
    connector.teams[TEAM] = Team("Finance", {TEAM: None, OPS: "Billing ops"})

    # Added to the team: the event names the team; the roster names its channels.
    await post(client, activities.added_to_team(connector.url, TEAM, "Finance"))
    general = await stored(settings, TEAM)
    assert (general.team_name, general.channel_name, general.is_general) == ("Finance", "", True)
    assert connector.roster_reads == [f"/v3/teams/{TEAM}", f"/v3/teams/{TEAM}/conversations"]
    welcome = connector.cards()[-1]
    assert card_texts(welcome) == [EN("welcome.title"), EN("welcome.channel_text")]

    # "alerts here" in a reply thread of each channel: one conversation per channel.
    await say(client, connector, "alerts here", TEAM)
    await say(client, connector, "alerts here", OPS, thread="42")
    assert connector.texts()[-1] == EN("alerts_here.subscribed")
    ops = await stored(settings, OPS)
    assert (ops.team_name, ops.channel_name, ops.subscribed) == ("Finance", "Billing ops", True)
    assert ops.reference["conversation"]["id"] == OPS  # alerts start a post, not a reply
    assert await stored(settings, f"{OPS};messageid=42") is None
    assert await alert_settings(client, connector) == ["Finance › Billing ops", "Finance › General"]

    # Renamed in Teams: the settings follow.
    connector.teams[TEAM] = Team("Finance", {TEAM: None, OPS: "Invoices"})
    await post(
        client,
        activities.renamed(connector.url, {"id": TEAM}, {"id": OPS, "name": "Invoices"}),
    )
    assert await alert_settings(client, connector) == ["Finance › General", "Finance › Invoices"]
    connector.teams[TEAM] = Team("Money", {TEAM: None, OPS: "Invoices"})
    await post(client, activities.renamed(connector.url, {"id": TEAM, "name": "Money"}))
    assert await alert_settings(client, connector) == ["Money › General", "Money › Invoices"]

    # Stopped from another thread of the same channel.
    await say(client, connector, "stop alerts here", OPS, thread="77")
    assert connector.texts()[-1] == EN("alerts_here.unsubscribed")
    assert await alert_settings(client, connector) == ["Money › General"]


async def test_the_general_channel_reads_general_in_each_language(client, connector):
    connector.teams[TEAM] = Team("Finance", {TEAM: None})
    await post(client, activities.added_to_team(connector.url, TEAM, "Finance"))
    await say(client, connector, "alerts here", TEAM)
    for locale, general in (("ru-RU", "Общий"), ("fr-FR", "Général"), ("zh-CN", "常规")):
        t = L10N.translator(locale)
        await post(client, activities.message(connector.url, "alerts", locale=locale))
        assert listed_channels(connector.cards()[-1]) == [
            t("conversation.team_channel", team="Finance", channel=general)
        ]


async def test_without_the_roster_the_names_teams_sent_are_kept(client, connector, settings):
    """The roster refuses (403): nothing fails, and the team's name from the event stays."""
    connector.roster_forbidden.add(TEAM)
    await post(client, activities.added_to_team(connector.url, TEAM, "Finance"))
    await say(client, connector, "alerts here", OPS)
    assert connector.texts()[-1] == EN("alerts_here.subscribed")
    await say(client, connector, "alerts here", TEAM)
    channels = await alert_settings(client, connector)
    # OPS was never named by Teams: a "Channel", not "19:billing-ops@thread.tacv2".
    assert channels == [EN("alert_history.recipient.channel"), "Finance › General"]
    assert (await stored(settings, OPS)).team_id == TEAM


async def test_alert_history_names_the_channel_and_the_alert_starts_a_post(api, connector):
    connector.teams[TEAM] = Team("Finance", {TEAM: None, OPS: "Billing ops"})
    await post(api, activities.added_to_team(connector.url, TEAM, "Finance"))
    await say(api, connector, "alerts here", OPS, thread="1795997321996")

    await spend(api, 450)  # $500 → $50: below the $100 default
    await wait_for_alert(connector, OPS, "alert.balance_low.title")
    await wait_for_alert(connector, PERSONAL, "alert.balance_low.title")
    posted = [p for p in connector.posted if p.conversation_id.startswith(OPS)]
    balance_low = EN("alert.balance_low.title")
    assert [p.path for p in posted if p.activity.get("summary") == balance_low] == [
        f"/v3/conversations/{OPS}/activities"
    ]

    await post(api, activities.message(connector.url, "alert history"))
    texts = card_texts(connector.cards()[-1])
    assert f"{EN('alert_history.recipient.channel')}: Finance › Billing ops" in texts
    assert not any("thread.tacv2" in text for text in texts)
