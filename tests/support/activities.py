"""Activities shaped like the ones Teams and the Agents Playground send."""

from __future__ import annotations

import itertools
from typing import Any

TENANT = "00000000-0000-0000-0000-0000000000001"
BOT_ID = "28:bot-app-id"
USER_AAD = "00000000-0000-0000-0000-0000000000020"

_ids = itertools.count(1)


def message(
    service_url: str,
    text: str | None = None,
    *,
    value: Any = None,
    locale: str = "en-US",
    tenant: str | None = TENANT,
    tenant_in_conversation: bool = False,
    conversation_id: str = "a:personal-chat-1",
    user_id: str = "29:user-1",
    conversation_type: str = "personal",
    channel_data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": "message",
        "id": f"act-{next(_ids)}",
        "timestamp": "2026-11-23T10:00:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": user_id, "name": "Alex Wilber", "aadObjectId": USER_AAD},
        "conversation": {"id": conversation_id, "conversationType": conversation_type},
        "recipient": {"id": BOT_ID, "name": "Communications Credits"},
        "locale": locale,
        "channelData": dict(channel_data or {}),
    }
    if text is not None:
        activity["text"] = text
    if value is not None:
        activity["value"] = value
    if tenant is not None:
        # Teams sends both places; the Playground only channelData.
        activity["channelData"]["tenant"] = {"id": tenant}
        if tenant_in_conversation:
            activity["conversation"]["tenantId"] = tenant
    return activity


def installation(
    service_url: str,
    *,
    action: str = "add",
    locale: str = "en-US",
    tenant: str = TENANT,
    conversation_id: str = "a:personal-chat-1",
    conversation_type: str = "personal",
) -> dict[str, Any]:
    return {
        "type": "installationUpdate",
        "action": action,
        "id": f"act-{next(_ids)}",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": "29:user-1", "aadObjectId": USER_AAD},
        "conversation": {"id": conversation_id, "conversationType": conversation_type},
        "recipient": {"id": BOT_ID},
        "locale": locale,
        "channelData": {"tenant": {"id": tenant}},
    }


def members_added(
    service_url: str,
    *,
    members: list[str] | None = None,
    tenant: str = TENANT,
    conversation_id: str = "a:personal-chat-1",
    conversation_type: str = "personal",
    removed: bool = False,
) -> dict[str, Any]:
    accounts = [{"id": member} for member in (members or [BOT_ID])]
    return {
        "type": "conversationUpdate",
        "id": f"act-{next(_ids)}",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": "29:user-1"},
        "conversation": {"id": conversation_id, "conversationType": conversation_type},
        "recipient": {"id": BOT_ID},
        "locale": "en-US",
        "membersRemoved" if removed else "membersAdded": accounts,
        "channelData": {"tenant": {"id": tenant}},
    }


def in_channel(team_id: str, channel_id: str, thread: str | None = None) -> dict[str, Any]:
    """Where a channel message comes from, as Teams sends it: the conversation id (with
    `;messageid=` when it is a reply in a thread) and channelData with the team's and channel's
    ids but no names."""
    return {
        "conversation_id": f"{channel_id};messageid={thread}" if thread else channel_id,
        "conversation_type": "channel",
        "channel_data": {
            "teamsTeamId": team_id,
            "teamsChannelId": channel_id,
            "team": {"id": team_id},
            "channel": {"id": channel_id},
        },
    }


def added_to_team(
    service_url: str, team_id: str, team_name: str, *, tenant: str = TENANT
) -> dict[str, Any]:
    """The bot added to a team: a conversationUpdate in the General channel (whose id is the
    team's), naming the team but not the channel."""
    activity = members_added(
        service_url, tenant=tenant, conversation_id=team_id, conversation_type="channel"
    )
    activity["channelData"].update(
        {"eventType": "teamMemberAdded", "team": {"id": team_id, "name": team_name}}
    )
    return activity


def renamed(
    service_url: str,
    team: dict[str, str],
    channel: dict[str, str] | None = None,
    *,
    tenant: str = TENANT,
) -> dict[str, Any]:
    """A channelRenamed (with `channel`) or teamRenamed conversation update."""
    channel_data: dict[str, Any] = {
        "eventType": "channelRenamed" if channel else "teamRenamed",
        "team": team,
        "tenant": {"id": tenant},
    }
    if channel:
        channel_data["channel"] = channel
    return {
        "type": "conversationUpdate",
        "id": f"act-{next(_ids)}",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": "29:user-1"},
        "conversation": {"id": team["id"], "conversationType": "channel", "isGroup": True},
        "recipient": {"id": BOT_ID},
        "locale": "en-US",
        "channelData": channel_data,
    }


def invoke(
    service_url: str,
    *,
    verb: str,
    data: Any,
    reply_to: str | None = "activity-1",
    trigger: str = "manual",
    locale: str = "en-US",
    tenant: str | None = TENANT,
    conversation_id: str = "a:personal-chat-1",
    conversation_type: str = "personal",
    user_id: str = "29:user-1",
) -> dict[str, Any]:
    """A press on an Action.Execute (or a card's refresh, `trigger` "automatic"), as Teams sends
    it: an `adaptiveCard/action` invoke whose `value.action.data` is the button's data merged
    with the card's inputs, `replyToId` the card's message."""
    activity = message(
        service_url,
        locale=locale,
        tenant=tenant,
        conversation_id=conversation_id,
        conversation_type=conversation_type,
        user_id=user_id,
    )
    activity.update(
        type="invoke",
        name="adaptiveCard/action",
        value={
            "action": {"type": "Action.Execute", "id": "", "verb": verb, "data": data},
            "trigger": trigger,
        },
    )
    if reply_to is not None:
        activity["replyToId"] = reply_to
    return activity
