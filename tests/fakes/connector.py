"""A fake Bot Connector on loopback.

It stands for the Bot Framework Connector service (the `serviceUrl` of Teams activities) and
speaks the part of its v3 REST contract the bot uses: send to a conversation, reply to an
activity, update an activity. It records every request so tests can assert on what the bot
posted, in order.

It also serves Teams' roster of a team, the Teams extension of the same service that
botbuilder's `TeamsInfo.get_team_details` and `get_team_channels` call: `GET /v3/teams/{team}`
answers the team's details (`id`, `name`, `aadGroupId`, `channelCount`, `memberCount`), and
`GET /v3/teams/{team}/conversations` its channels (`{"conversations": [{"id", "name"}]}`), where
the General channel, whose id is the team's, comes without a name as Teams sends it. Tests set
the teams (`teams`); an unknown team answers 404 (the bot was removed from it), and a team may
be scripted to answer 403 (`roster_forbidden`).

Faults are scripted per conversation (`fail`): a 429 with Retry-After, a 5xx, a 403 with Teams'
`BotNotInConversationRoster` error, a 404, or a slow answer, as Teams gives them. Like the real
service it does not deduplicate: every accepted POST is a new message in the chat, so `posted`
with status 201 is what recipients see.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering (with `status` 0: then accept the message)."""


TOO_MANY = Fault(429, retry_after="1")
SERVER_ERROR = Fault(500)
BOT_REMOVED = Fault(403)
NOT_FOUND = Fault(404)


def slow(seconds: float) -> Fault:
    return Fault(0, delay=seconds)


@dataclass
class Posted:
    method: str
    path: str
    conversation_id: str
    activity: dict[str, Any]
    authorization: str | None
    status: int = 200
    at: float = 0.0
    """time.monotonic() when the request arrived."""
    activity_id: str = ""
    """The id the connector answered with (a new message's id, or the updated one's)."""


@dataclass
class Team:
    """A team as the roster tells it: its name, and its channels by id (the General channel is
    the team's id, and has no name)."""

    name: str
    channels: dict[str, str | None] = field(default_factory=dict)


@dataclass
class FakeConnector:
    posted: list[Posted] = field(default_factory=list)
    rejected: list[Posted] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    in_flight: int = 0
    peak_in_flight: int = 0
    answered: list[str] = field(default_factory=list)
    """Conversation ids in the order their requests were answered."""
    teams: dict[str, Team] = field(default_factory=dict)
    roster_forbidden: set[str] = field(default_factory=set)
    roster_reads: list[str] = field(default_factory=list)
    """Paths of the roster requests, in order."""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def fail(self, conversation_id: str, *faults: Fault) -> None:
        """Answer the next requests to this conversation with these faults, in order."""
        self.faults[conversation_id].extend(faults)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._send)
        app.router.add_post(
            "/v3/conversations/{conversation_id}/activities/{activity_id}", self._send
        )
        app.router.add_put(
            "/v3/conversations/{conversation_id}/activities/{activity_id}", self._send
        )
        app.router.add_get("/v3/teams/{team_id}", self._team_details)
        app.router.add_get("/v3/teams/{team_id}/conversations", self._team_channels)
        return app

    def _team(self, request: web.Request) -> Team:
        self.roster_reads.append(request.path)
        team_id = request.match_info["team_id"]
        if team_id in self.roster_forbidden:
            raise web.HTTPForbidden(
                text='{"error": {"code": "BotNotInConversationRoster", "message": "fake 403"}}',
                content_type="application/json",
            )
        if team_id not in self.teams:
            raise web.HTTPNotFound(
                text='{"error": {"code": "NotFound", "message": "fake 404"}}',
                content_type="application/json",
            )
        return self.teams[team_id]

    async def _team_details(self, request: web.Request) -> web.Response:
        team = self._team(request)
        team_id = request.match_info["team_id"]
        return web.json_response(
            {
                "id": team_id,
                "name": team.name,
                "aadGroupId": f"group-{team_id}",
                "channelCount": len(team.channels),
                "memberCount": 3,
            }
        )

    async def _team_channels(self, request: web.Request) -> web.Response:
        team = self._team(request)
        return web.json_response(
            {
                "conversations": [
                    {"id": channel_id, **({"name": name} if name else {})}
                    for channel_id, name in team.channels.items()
                ]
            }
        )

    async def _send(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1
            self.answered.append(request.match_info["conversation_id"])

    async def _answer(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = await request.json()
        conversation_id = request.match_info["conversation_id"]
        record = Posted(
            method=request.method,
            path=request.path,
            conversation_id=conversation_id,
            activity=body,
            authorization=request.headers.get("Authorization"),
            at=arrived,
        )
        queue = self.faults.get(conversation_id)
        fault = queue.pop(0) if queue else None
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status:
            record.status = fault.status
            self.rejected.append(record)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            code = "BotNotInConversationRoster" if fault.status == 403 else "ServiceError"
            return web.json_response(
                {"error": {"code": code, "message": f"fake {fault.status}"}},
                status=fault.status,
                headers=headers,
            )
        record.status = 201 if request.method == "POST" else 200
        number = next(self._ids)
        # An update keeps its message's id; a send or a reply is a new message.
        updated = request.method == "PUT" and request.match_info.get("activity_id")
        record.activity_id = updated or f"activity-{number}"
        self.posted.append(record)
        return web.json_response({"id": record.activity_id}, status=record.status)

    # What tests read most.
    def texts(self) -> list[str]:
        return [p.activity.get("text") or "" for p in self.posted if p.activity.get("text")]

    def cards(self) -> list[dict[str, Any]]:
        return [
            attachment["content"]
            for p in self.posted
            for attachment in p.activity.get("attachments") or []
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]

    def clear(self) -> None:
        self.posted.clear()
        self.rejected.clear()

    def window_violations(self, limit: int, seconds: float) -> list[str]:
        """Conversations that got more than `limit` requests within some `seconds` window."""
        times: dict[str, list[float]] = defaultdict(list)
        for record in [*self.posted, *self.rejected]:
            times[record.conversation_id].append(record.at)
        found = []
        for conversation_id, arrivals in times.items():
            arrivals.sort()
            for i in range(len(arrivals) - limit):
                if arrivals[i + limit] - arrivals[i] < seconds:
                    found.append(conversation_id)
                    break
        return found


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every TextBlock text, fact and action title in a card, depth first."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock" and isinstance(node.get("text"), str):
                found.append(node["text"])
            if node.get("type", "").startswith("Action.") and isinstance(node.get("title"), str):
                found.append(node["title"])
            if node.get("type") == "FactSet":
                for fact in node.get("facts") or []:
                    found.extend([fact.get("title", ""), fact.get("value", "")])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found
