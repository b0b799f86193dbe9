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
        "channelData": {},
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
