"""The fake Bot Connector of the chaos run, and the file host the chat downloads usage from.

It stands for the Bot Framework Connector (the `serviceUrl` of every activity the driver posts,
so turn replies and proactive alerts both arrive here) and speaks the same v3 routes as
`tests/fakes/connector.py`. Turn replies are always accepted and kept by the activity they
answer, so the driver can read the card a turn sent. Alert posts (activity ids `alert-…`) meet
scripted faults: a 429 with Retry-After, a 5xx, a 403 (the bot removed), or an answer held
open, during which the driver may kill the instance that is waiting for it.

What recipients would have seen is `accepted`: every alert post answered 201, by message id.
A post whose sender died before it was answered is `cut`: like Teams, we cannot say whether
the chat showed it, which is exactly the case the service records as unconfirmed.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Faults:
    """Chances, per alert post, of each answer other than 201."""

    throttle: float = 0.10
    server_error: float = 0.07
    removed: float = 0.02
    hold: float = 0.25
    hold_seconds: tuple[float, float] = (1.0, 4.0)

    @staticmethod
    def none() -> Faults:
        return Faults(0.0, 0.0, 0.0, 0.0)


@dataclass
class AlertPost:
    message_id: str
    conversation_id: str
    arrived: float
    peer_port: int
    outcome: str = ""
    """accepted, 429, 500, 503, 403, or cut."""


# Called when an alert post is held open: (message id, the sender's TCP port).
OnHold = Callable[[str, int], Awaitable[None]]
# Called when a conversation answered 403: the driver installs the bot there again.
OnRemoved = Callable[[str], None]


@dataclass
class ChaosConnector:
    seed: int
    faults: Faults = field(default_factory=Faults)
    on_hold: OnHold | None = None
    on_removed: OnRemoved | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    """Activities the bot sent in answer to an activity, by the id of that activity."""
    alerts: list[AlertPost] = field(default_factory=list)
    url: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _holds: set[asyncio.Task] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._send)
        app.router.add_post(
            "/v3/conversations/{conversation_id}/activities/{activity_id}", self._send
        )
        app.router.add_put(
            "/v3/conversations/{conversation_id}/activities/{activity_id}", self._send
        )
        app.router.add_get("/files/{name}", self._file)
        return app

    # --- what the audit reads -----------------------------------------------------------------

    def accepted(self) -> dict[str, int]:
        """Alert posts answered 201, by message id: what the chats showed."""
        counts: dict[str, int] = defaultdict(int)
        for post in self.alerts:
            if post.outcome == "accepted":
                counts[post.message_id] += 1
        return counts

    def cut(self) -> set[str]:
        return {post.message_id for post in self.alerts if post.outcome == "cut"}

    def count(self, outcome: str) -> int:
        return sum(1 for post in self.alerts if post.outcome == outcome)

    # --- the routes ---------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        body = self.files.get(request.match_info["name"])
        return web.Response(body=body) if body is not None else web.Response(status=404)

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        conversation_id = request.match_info["conversation_id"]
        activity_id = str(body.get("id") or "")
        if request.method == "POST" and activity_id.startswith("alert-"):
            return await self._alert(request, conversation_id, activity_id)
        answered = request.match_info.get("activity_id")
        if answered:
            self.replies[answered].append(body)
        return web.json_response(
            {"id": f"activity-{next(self._ids)}"}, status=201 if request.method == "POST" else 200
        )

    async def _alert(
        self, request: web.Request, conversation_id: str, message_id: str
    ) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        post = AlertPost(message_id, conversation_id, time.monotonic(), peer[1] if peer else 0)
        self.alerts.append(post)
        self._attempts[message_id] += 1
        # The same message meets the same faults in every run with this seed, whatever the
        # interleaving: the roll depends on the seed, the message and the attempt only.
        roll = _rng(self.seed, message_id, self._attempts[message_id])
        chance = roll.random()
        faults = self.faults
        for threshold, status in (
            (faults.throttle, 429),
            (faults.throttle + faults.server_error, roll.choice((500, 503))),
            (faults.throttle + faults.server_error + faults.removed, 403),
        ):
            if chance < threshold:
                return self._fault(post, status)
        if chance < faults.throttle + faults.server_error + faults.removed + faults.hold:
            low, high = faults.hold_seconds
            if self.on_hold is not None:
                task = asyncio.create_task(self.on_hold(message_id, post.peer_port))
                self._holds.add(task)  # kept until done: the loop holds tasks weakly
                task.add_done_callback(self._holds.discard)
            await asyncio.sleep(roll.uniform(low, high))
        if request.transport is None or request.transport.is_closing():
            post.outcome = "cut"  # the sender died while we held its answer
            raise web.HTTPServiceUnavailable()  # never reaches anyone
        post.outcome = "accepted"
        return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)

    def _fault(self, post: AlertPost, status: int) -> web.Response:
        post.outcome = str(status)
        headers = {"Retry-After": "1"} if status == 429 else {}
        code = "BotNotInConversationRoster" if status == 403 else "ServiceError"
        if status == 403 and self.on_removed is not None:
            self.on_removed(post.conversation_id)
        return web.json_response(
            {"error": {"code": code, "message": f"chaos {status}"}}, status=status, headers=headers
        )


def _rng(seed: int, message_id: str, attempt: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\n{message_id}\n{attempt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
