"""Webhook endpoints and the delivery of events to them, signed as Stripe signs them.

A delivery is a POST of the event's JSON (pretty-printed, as Stripe sends it) with
`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`: one `v1`
per valid secret of the endpoint (two while a rolled secret is still valid), and a `v0` that
receivers must ignore (Stripe adds one in test mode). A 2xx answer counts as received; anything
else, a refused connection or no answer within `timeout` seconds is a failed delivery, kept in
`deliveries`. Stripe would retry it for days; here a test redelivers it (`redeliver_failed`).

Delivery is automatic (in event order, one at a time) unless the test holds it: held
deliveries are lost until released — in order, reversed or in any order — or dropped.
A test can also deliver any event again, twice, with an old timestamp or a wrong secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.fakes.stripe.objects import new_id

logger = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(body: bytes, timestamp: int, secrets: Sequence[str]) -> str:
    parts = [f"t={timestamp}"]
    parts += [f"v1={signature(secret, timestamp, body)}" for secret in secrets]
    parts.append(f"v0={signature('whsec_test_mode_v0', timestamp, body)}")
    return ",".join(parts)


@dataclass
class WebhookEndpoint:
    id: str
    url: str
    secrets: list[str]
    """Valid signing secrets, the current one first."""
    enabled_events: tuple[str, ...] = ("*",)

    @property
    def secret(self) -> str:
        return self.secrets[0]

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass
class Delivery:
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    timestamp: int
    signature: str
    body: bytes
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Webhooks:
    event: Callable[[str], dict[str, Any]]
    """The stored event of an id (its `pending_webhooks` is kept current here)."""
    endpoints: list[WebhookEndpoint] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    held: list[tuple[str, str]] = field(default_factory=list)
    """(event id, endpoint id) not delivered while holding."""
    holding: bool = False
    timeout: float = 10.0
    _received: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)
    """(event id, endpoint id) delivered with a 2xx answer."""
    _queue: asyncio.Queue | None = field(default=None, init=False, repr=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _worker: asyncio.Task | None = field(default=None, init=False, repr=False)
    _backlog: list[tuple[str, str]] = field(default_factory=list, init=False, repr=False)
    """Deliveries queued before the app started."""

    # --- endpoints ------------------------------------------------------------------------

    def add_endpoint(
        self, url: str, secret: str | None = None, events: Sequence[str] = ("*",)
    ) -> WebhookEndpoint:
        endpoint = WebhookEndpoint(
            new_id("we"), url, [secret or new_id("whsec", 32)], tuple(events)
        )
        self.endpoints.append(endpoint)
        return endpoint

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        for endpoint in self.endpoints:
            if endpoint.id == endpoint_id:
                return endpoint
        raise KeyError(endpoint_id)

    def roll_secret(self, endpoint_id: str, new_secret: str | None = None) -> str:
        """A new signing secret; the old one stays valid (signed too) until `expire_old`."""
        endpoint = self.endpoint(endpoint_id)
        endpoint.secrets.insert(0, new_secret or new_id("whsec", 32))
        return endpoint.secret

    def expire_old_secrets(self, endpoint_id: str) -> None:
        endpoint = self.endpoint(endpoint_id)
        del endpoint.secrets[1:]

    # --- publishing -----------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        targets = [e for e in self.endpoints if e.wants(event["type"])]
        event["pending_webhooks"] = len(targets)
        for endpoint in targets:
            if self.holding:
                self.held.append((event["id"], endpoint.id))
            else:
                self._enqueue((event["id"], endpoint.id))

    def _enqueue(self, item: tuple[str, str]) -> None:
        if self._queue is None:
            self._backlog.append(item)  # the app has not started yet
        else:
            self._queue.put_nowait(item)

    def release(self, order: str | Sequence[str] = "created") -> None:
        """Deliver the held events: "created" order, "reversed", or these event ids in order."""
        held, self.held = self.held, []
        if order == "reversed":
            held.reverse()
        elif not isinstance(order, str):
            rank = {event_id: index for index, event_id in enumerate(order)}
            held = [item for item in held if item[0] in rank]
            held.sort(key=lambda item: rank[item[0]])
        self.holding = False
        for item in held:
            self._enqueue(item)

    def drop_held(self) -> int:
        """Lose the held deliveries for good (the events stay readable through the API)."""
        count = len(self.held)
        self.held.clear()
        self.holding = False
        return count

    def redeliver_failed(self) -> int:
        failed = {
            (d.event_id, d.endpoint_id)
            for d in self.deliveries
            if not d.ok and (d.event_id, d.endpoint_id) not in self._received
        }
        for item in sorted(failed, key=lambda item: self.event(item[0])["created"]):
            self._enqueue(item)
        return len(failed)

    # --- delivering -----------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        self._queue = asyncio.Queue()
        for item in self._backlog:
            self._queue.put_nowait(item)
        self._backlog.clear()
        self._worker = asyncio.create_task(self._run(), name="fake-stripe-webhooks")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._session is not None:
            await self._session.close()

    async def settle(self) -> None:
        """Wait until every queued delivery has been attempted."""
        if self._queue is None:
            raise RuntimeError("the fake's app is not running: serve it first")
        await self._queue.join()

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            event_id, endpoint_id = await self._queue.get()
            try:
                await self.send(event_id, endpoint_id)
            finally:
                self._queue.task_done()

    async def send(
        self,
        event_id: str,
        endpoint_id: str,
        *,
        timestamp: int | None = None,
        secrets: Sequence[str] | None = None,
    ) -> Delivery:
        if self._session is None:
            raise RuntimeError("the fake's app is not running: serve it first")
        event = self.event(event_id)
        endpoint = self.endpoint(endpoint_id)
        body = json.dumps(event, indent=2).encode()
        # Signatures use the real clock (receivers compare with theirs), not the fake's.
        stamp = int(time.time()) if timestamp is None else timestamp
        header = signature_header(body, stamp, endpoint.secrets if secrets is None else secrets)
        delivery = Delivery(event_id, event["type"], endpoint.id, endpoint.url, stamp, header, body)
        self.deliveries.append(delivery)
        try:
            async with self._session.post(
                endpoint.url,
                data=body,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": header,
                    "User-Agent": USER_AGENT,
                },
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                delivery.status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            logger.info("webhook %s to %s failed: %s", event["type"], endpoint.url, exc)
        if delivery.ok and (event_id, endpoint_id) not in self._received:
            self._received.add((event_id, endpoint_id))
            event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
        return delivery
