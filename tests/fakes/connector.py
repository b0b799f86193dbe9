"""A fake Bot Connector on loopback.

It stands for the Bot Framework Connector service (the `serviceUrl` of Teams activities) and
speaks the part of its v3 REST contract the bot uses: send to a conversation, reply to an
activity, update an activity. It records every request so tests can assert on what the bot
posted, in order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Posted:
    method: str
    path: str
    conversation_id: str
    activity: dict[str, Any]
    authorization: str | None


@dataclass
class FakeConnector:
    posted: list[Posted] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._send)
        app.router.add_post(
            "/v3/conversations/{conversation_id}/activities/{activity_id}", self._send
        )
        app.router.add_put(
            "/v3/conversations/{conversation_id}/activities/{activity_id}", self._send
        )
        return app

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posted.append(
            Posted(
                method=request.method,
                path=request.path,
                conversation_id=request.match_info["conversation_id"],
                activity=body,
                authorization=request.headers.get("Authorization"),
            )
        )
        return web.json_response({"id": f"activity-{next(self._ids)}"})

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
