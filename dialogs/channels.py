"""Channels as Teams names them: where an activity happened, the names to show, the roster.

Teams identifies a channel message's conversation by the channel id, with `;messageid=<id>`
appended when the message is a reply in a thread; the bot keeps one conversation per channel,
under the channel id, so a channel is subscribed once whichever thread "alerts here" was typed
in, and alerts start a new post rather than answer an old thread.

Names come from the activity's channelData (`team.name`, `channel.name`: present in some
activities only, such as the bot's installation in a team and renames) and from the Teams roster
API (`TeamsInfo.get_team_details`, `get_team_channels`), read when the bot is added to a team,
when a team or channel is renamed, and when a channel whose names are unknown subscribes. The
General channel's id is the team's, and Teams gives it no name: it is shown as "General" in the
reader's language, as the Teams client shows it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity
from msrest.exceptions import ClientRequestError, HttpOperationError

from credits.conversations import Conversations, StoredConversation
from dialogs.turn import conversation_kind
from locales import Translator

logger = logging.getLogger(__name__)

THREAD_SUFFIX = ";messageid="


@dataclass(frozen=True)
class Place:
    """Where an activity happened, as the bot keeps it."""

    conversation_id: str
    """The key of the stored conversation: a channel's id for any message in that channel."""
    kind: str
    team_id: str = ""
    team_name: str = ""
    channel_name: str = ""


def place_of(activity: Activity) -> Place:
    kind = conversation_kind(activity)
    conversation_id = activity.conversation.id if activity.conversation else ""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    if kind != "channel":
        return Place(conversation_id, kind)
    team = _part(data, "team")
    channel = _part(data, "channel")
    channel_id = (
        _text(channel.get("id"))
        or _text(data.get("teamsChannelId"))
        or conversation_id.split(THREAD_SUFFIX, 1)[0]
    )
    return Place(
        conversation_id=channel_id,
        kind=kind,
        team_id=_text(team.get("id")) or _text(data.get("teamsTeamId")),
        team_name=_text(team.get("name")),
        channel_name=_text(channel.get("name")),
    )


def reference_of(activity: Activity, place: Place) -> dict[str, Any]:
    """The serialised conversation reference, addressed to the stored conversation: for a
    channel, the channel itself (a new post), not the thread the message was typed in."""
    reference = TurnContext.get_conversation_reference(activity).serialize()
    conversation = dict(reference.get("conversation") or {})
    conversation["id"] = place.conversation_id
    reference["conversation"] = conversation
    return reference


def display_name(t: Translator, conversation: StoredConversation) -> str:
    """A conversation's name for an admin to read ("" when Teams never named it): a person's
    name, a group chat's topic, or a channel as "Team › Channel"."""
    if conversation.kind != "channel":
        return conversation.name
    channel = conversation.channel_name or (
        t("conversation.general") if conversation.is_general else ""
    )
    if conversation.team_name and channel:
        return t("conversation.team_channel", team=conversation.team_name, channel=channel)
    return channel or conversation.team_name or conversation.name


@dataclass(frozen=True)
class TeamNames:
    team_name: str
    channel_names: dict[str, str]
    """Channel id to name; the General channel comes without one."""


class TeamRoster:
    """Reads a team's names from the Teams roster API and keeps them on its stored channels."""

    def __init__(self, conversations: Conversations) -> None:
        self._conversations = conversations

    async def refresh(self, turn_context: TurnContext, tenant_id: str, team_id: str) -> bool:
        """Read the team's and its channels' names and store them; False when Teams would not
        say (the names the activities carried stay as they are)."""
        names = await self.read(turn_context, team_id)
        if names is None:
            return False
        await self._conversations.set_names(
            tenant_id, team_id, names.team_name, names.channel_names
        )
        return True

    async def read(self, turn_context: TurnContext, team_id: str) -> TeamNames | None:
        try:
            client = await TeamsInfo.get_teams_connector_client(turn_context)
            # botbuilder's Teams client is synchronous (msrest): off the event loop.
            details = await asyncio.to_thread(client.teams.get_team_details, team_id)
            channels = await asyncio.to_thread(client.teams.get_teams_channels, team_id)
        except (HttpOperationError, ClientRequestError, ValueError) as error:
            # 403 when the bot was removed meanwhile, or a connector that serves no roster.
            logger.warning("the Teams roster of team %s is not available: %s", team_id, error)
            return None
        return TeamNames(
            team_name=(details.name or "") if details is not None else "",
            channel_names={
                channel.id: channel.name or ""
                for channel in (channels.conversations if channels is not None else None) or []
                if channel.id
            },
        )


def _part(data: dict[str, Any], key: str) -> dict[str, Any]:
    part = data.get(key)
    return part if isinstance(part, dict) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
