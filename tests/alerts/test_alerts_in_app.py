"""Alerts through the real app: a usage upload crosses the threshold, the admin hears of it.

The app runs its own dispatcher (woken by the commit) and posts to the fake Bot Connector,
which stands for Teams; storage is Azurite.
"""

from __future__ import annotations

import asyncio
import uuid

from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, L10N
from tests.support.usage_files import bearer, export

TENANT = activities.TENANT
CHANNEL = "19:general@thread.tacv2"
PERSONAL = "a:personal-chat-1"


def alert_cards(connector, conversation_id: str, msgid: str, locale: str = "en-US") -> list[dict]:
    title = L10N.translator(locale)(msgid)
    return [
        attachment["content"]
        for p in connector.posted
        if p.conversation_id == conversation_id
        for attachment in p.activity.get("attachments") or []
        if attachment["content"].get("body", [{}])[0].get("text") == title
    ]


async def wait_for_alert(
    connector, conversation_id: str, msgid: str, locale: str = "en-US"
) -> list[dict]:
    async with asyncio.timeout(15):
        while not (found := alert_cards(connector, conversation_id, msgid, locale)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # let a duplicate, if any, arrive
    return found


async def spend(api, dollars: int) -> None:
    rows = [(str(uuid.uuid4()), f"{dollars}.00", "0.00", "MCOPSTNPP")]
    response = await api.post(f"/api/tenants/{TENANT}/usage", data=export(rows), headers=bearer())
    assert response.status == 200, await response.text()


async def say(api, connector, text: str, **where) -> None:
    activity = activities.message(connector.url, text, **where)
    response = await api.post("/api/messages", json=activity)
    assert response.status in (200, 201)


async def test_usage_crossing_the_threshold_alerts_the_admin_once(api, connector):
    # $500 bought: with auto-recharge off the default threshold is 20 % of it, $100.
    await spend(api, 390)
    await asyncio.sleep(0.5)
    assert alert_cards(connector, PERSONAL, "alert.balance_low.title") == []
    await spend(api, 20)  # $110 → $90

    [card] = await wait_for_alert(connector, PERSONAL, "alert.balance_low.title")
    assert EN("alert.balance_low.text", balance="$90.00", threshold="$100.00") in card_texts(card)
    await spend(api, 90)  # → $0
    [zero] = await wait_for_alert(connector, PERSONAL, "alert.balance_zero.title")
    assert [a["data"]["command"] for a in zero["actions"]] == ["add_funds"]


async def test_a_subscribed_channel_hears_alerts_and_history_shows_them(api, connector):
    channel = {"conversation_id": CHANNEL, "conversation_type": "channel"}
    await say(api, connector, "alerts here", **channel)
    assert connector.texts()[-1] == EN("alerts_here.subscribed")
    await say(api, connector, "alerts here", **channel)
    assert connector.texts()[-1] == EN("alerts_here.already")
    await say(api, connector, "alerts here")  # in the personal chat
    assert connector.texts()[-1] == EN("alerts_here.personal")
    await say(api, connector, "stop alerts here")  # its own answer, not the one above
    assert connector.texts()[-1] == EN("alerts_here.stop_personal")

    await spend(api, 450)
    await wait_for_alert(connector, CHANNEL, "alert.balance_low.title")
    await wait_for_alert(connector, PERSONAL, "alert.balance_low.title")

    await say(api, connector, "alert history")
    history = connector.cards()[-1]
    texts = card_texts(history)
    assert texts[0] == EN("alert_history.title")
    assert EN("alert.balance_low.title") in texts
    # $50 left at $15 a day also runs out within 14 days: the runway alert goes to both too.
    assert EN("alert.runway_low.title") in texts
    assert texts.count(EN("alert_history.state.delivered")) == 4

    await say(api, connector, "stop alerts here", **channel)
    assert connector.texts()[-1] == EN("alerts_here.unsubscribed")
    await spend(api, 50)  # → $0
    await wait_for_alert(connector, PERSONAL, "alert.balance_zero.title")
    assert alert_cards(connector, CHANNEL, "alert.balance_zero.title") == []

    # `history` lists who sent alerts to the channel and who stopped them, once each.
    from datetime import UTC, datetime

    from credits.history import Period
    from tests.support.chat import Chat, answered_card

    month = Period.this_month(datetime.now(UTC).date())
    view = {"view": "history", "first": str(month.first), "last": str(month.last)}
    answer = await Chat(api, connector).execute({**view, "list": "changes", "action": "page"})
    texts = card_texts(answered_card(answer))
    channel = EN("history.a_channel")  # Teams named it in none of these messages
    for action in ("alerts_here", "stop_alerts_here"):
        what = EN(f"history.audit.{action}", channel=channel)
        assert sum(1 for text in texts if text.endswith(what)) == 1, (what, texts)


async def test_a_non_admin_cannot_subscribe_a_channel(api, connector):
    activity = activities.message(
        connector.url, "alerts here", conversation_id=CHANNEL, conversation_type="channel"
    )
    activity["from"]["aadObjectId"] = "00000000-0000-0000-0000-0000000000023"  # not an admin
    await api.post("/api/messages", json=activity)
    assert connector.texts()[-1] == EN("access.refused")


async def test_alerts_follow_the_language_the_admin_chose(api, connector):
    from tests.support.chat import L10N

    await say(api, connector, "language pt-BR")
    await spend(api, 450)
    [card] = await wait_for_alert(connector, PERSONAL, "alert.balance_low.title", "pt-BR")
    assert card["actions"][0]["title"] == L10N.translator("pt-BR")("menu.add_funds")
