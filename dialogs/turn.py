"""Facts about the current turn that every flow needs: tenant and language."""

from __future__ import annotations

import re

from botbuilder.core import TurnContext
from botbuilder.schema import Activity

from locales import Translator

TRANSLATOR_KEY = "ccbot.translator"
# A tenant id is a GUID (a domain name where Entra accepts one): it keys every stored row, so
# nothing else is taken for one.
_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")


def tenant_id_of(activity: Activity) -> str | None:
    """The tenant of an activity: `conversation.tenantId`, else `channelData.tenant.id`.

    Teams sends both; the Agents Playground sends only the second. Teams spells the first
    `tenantId`, while botbuilder-schema maps the attribute to `tenantID`, so the value Teams
    sends arrives among the additional properties. An id of another shape is no tenant.
    """
    conversation = activity.conversation
    if conversation is not None:
        extra = conversation.additional_properties or {}
        for candidate in (conversation.tenant_id, extra.get("tenantId")):
            if isinstance(candidate, str) and candidate:
                return candidate if _TENANT_ID.fullmatch(candidate) else None
    channel_data = activity.channel_data
    if isinstance(channel_data, dict):
        tenant = channel_data.get("tenant")
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str) and tenant["id"]:
            return tenant["id"] if _TENANT_ID.fullmatch(tenant["id"]) else None
    return None


def conversation_kind(activity: Activity) -> str:
    conversation_type = activity.conversation.conversation_type if activity.conversation else None
    return conversation_type or "personal"


def set_translator(turn_context: TurnContext, translator: Translator) -> None:
    turn_context.turn_state[TRANSLATOR_KEY] = translator


def translator_of(turn_context: TurnContext) -> Translator:
    """The language chosen for this turn by the bot (user's choice, else the client's locale)."""
    return turn_context.turn_state[TRANSLATOR_KEY]
