"""The conversations port: where the bot can reach each admin and channel for proactive alerts.

A conversation is remembered when the bot is installed in it (a personal chat or a channel) and
refreshed on every inbound activity, because Teams may move its service URL; uninstalling marks
it inactive rather than forgetting it, so alert history can still name the recipient.
`storage/conversations.py` keeps them in Azure Tables, with the chat cards that opened a
processor's hosted page (`CheckoutCards`), so a payment completed there is told in its chat.

The reference is kept as Bot Framework serialises a ConversationReference (a JSON object with
`serviceUrl`, `conversation`, `bot`, `user`, …): the domain stores and returns it untouched, and
only the Teams edge reads it.

A channel is kept once, under the channel's id (a message in a reply thread carries the channel
id with `;messageid=…` appended), with the names Teams gives it: the team's and the channel's,
from the activity's channelData and from the Teams roster, refreshed when the bot is added to a
team and when a team or channel is renamed. The General channel's id is the team's, and Teams
may give it no name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from credits.repository import Versioned


class ConversationConflict(RuntimeError):
    """The stored conversation changed on every attempt to refresh it (concurrent installs)."""


@dataclass(frozen=True)
class StoredConversation:
    tenant_id: str
    conversation_id: str
    kind: str
    """`personal`, `channel` or `groupChat`, as Teams names the conversation type."""
    reference: dict[str, Any]
    """The serialised Bot Framework ConversationReference."""
    locale: str
    user_aad_object_id: str
    active: bool
    updated_at: datetime
    subscribed: bool = False
    """A channel where an admin typed "alerts here": it receives every alert."""
    subscribed_by: str = ""
    team_id: str = ""
    """A channel's team (its General channel has the same id)."""
    team_name: str = ""
    channel_name: str = ""
    """"" when Teams gave none: always so for the General channel."""

    @property
    def is_general(self) -> bool:
        return self.kind == "channel" and self.conversation_id == self.team_id

    @property
    def name(self) -> str:
        """Who the conversation is, as history records it: the person's name, a channel's team
        and channel names, a group chat's topic ("" when unknown)."""
        if self.kind == "channel" and (self.team_name or self.channel_name):
            return " › ".join(name for name in (self.team_name, self.channel_name) if name)
        part = self.reference.get("user" if self.kind == "personal" else "conversation")
        return str(part.get("name") or "") if isinstance(part, dict) else ""


class Conversations(Protocol):
    async def upsert(
        self,
        *,
        tenant_id: str,
        conversation_id: str,
        reference: dict[str, Any],
        kind: str,
        locale: str,
        user_aad_object_id: str = "",
        active: bool = True,
        team_id: str = "",
        team_name: str = "",
        channel_name: str = "",
    ) -> bool:
        """Store or refresh a conversation; True when it was new or had been inactive (the
        caller welcomes the admin then). An empty name keeps the one stored: Teams names a team
        or channel in some activities only. Raises ConversationConflict."""

    async def deactivate(self, tenant_id: str, conversation_id: str) -> None: ...

    async def get(self, tenant_id: str, conversation_id: str) -> StoredConversation | None: ...

    async def set_subscribed(
        self, tenant_id: str, conversation_id: str, subscribed: bool, by: str
    ) -> bool:
        """Subscribe a stored conversation to alerts (or not); False when it is not stored."""

    async def list_active(self, tenant_id: str) -> list[StoredConversation]: ...

    async def set_names(
        self, tenant_id: str, team_id: str, team_name: str, channel_names: Mapping[str, str]
    ) -> int:
        """Record a team's name, and its channels' (by channel id), on every stored channel of
        that team; empty names change nothing. The number of conversations updated."""


@dataclass(frozen=True)
class CheckoutCard:
    """The card in a chat that opened a processor's hosted page (an order's confirmation, or
    a card-saving page): where to say what became of it once the processor tells."""

    tenant_id: str
    key: str
    """The order's (or the setup's) idempotency key."""
    reference: dict[str, Any]
    """The serialised Bot Framework ConversationReference of the chat."""
    activity_id: str
    """The card's activity, updated in place."""
    locale: str
    purpose: str
    """`order` or `setup`."""
    told: bool = False
    """Whether the chat has been told the outcome (claimed before telling, so once)."""


class CheckoutCards(Protocol):
    async def remember(self, card: CheckoutCard) -> None: ...

    async def get(self, tenant_id: str, key: str) -> Versioned[CheckoutCard] | None: ...

    async def claim(self, current: Versioned[CheckoutCard]) -> Versioned[CheckoutCard] | None:
        """Mark it told, unless someone did meanwhile (None then): the one who claims tells."""

    async def release(self, claimed: Versioned[CheckoutCard]) -> None:
        """Telling failed: let the next event (or recovery pass) try again."""
