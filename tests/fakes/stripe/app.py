"""`FakeStripe`: the aiohttp application that speaks Stripe's REST API, and its test hooks.

The request pipeline of every `/v1` request, in Stripe's order: authentication (401), form
decoding, scripted faults that strike before the API executes, the idempotency layer (replay,
409 key in use, 400 mismatch), execution (the account's operation, rendered with `expand`),
then saving the result for the key. See `tests/fakes/stripe_api.py` for what is modelled.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.stripe import forms, hosted
from tests.fakes.stripe.account import Account
from tests.fakes.stripe.checkout import Attempt, CardEntry
from tests.fakes.stripe.control import add_control_routes
from tests.fakes.stripe.endpoints import Call, Endpoints, Handler
from tests.fakes.stripe.errors import StripeFailure, unrecognized_url
from tests.fakes.stripe.faults import STAGES, Fault, fault_failure
from tests.fakes.stripe.hosted import HostedPages
from tests.fakes.stripe.idempotency import IdempotencyStore
from tests.fakes.stripe.objects import new_id
from tests.fakes.stripe.store import Clock, Origin
from tests.fakes.stripe.webhooks import Delivery, WebhookEndpoint, Webhooks

logger = logging.getLogger(__name__)

TEST_SECRET_KEY = "sk_test_fake51Hx0ReallyNotASecretKeyForLoopbackTestsOnly"
API_VERSION = "2026-10-28.endive"
"""The account's default API version (events are rendered in it): the one stripe 16.1.0 pins."""


@dataclass
class Seen:
    """A recorded API request (its parameters, never the secret key)."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    stripe_version: str | None
    request_id: str
    status: int = 0
    replayed: bool = False
    fault: Fault | None = None
    at: float = 0.0
    """time.monotonic() when the request arrived."""


class FakeStripe:
    def __init__(self, api_key: str = TEST_SECRET_KEY, *, api_version: str = API_VERSION):
        self.api_key = api_key
        self.api_version = api_version
        self.url = ""
        """The base address once served (set by whoever serves it)."""
        self.public_url: str | None = None
        """Base of the hosted pages' addresses; by default the address the API was called on."""
        self.clock = Clock()
        self.webhooks = Webhooks(event=lambda event_id: self.store.objects[event_id])
        self.account = Account(api_version, self.clock, self.webhooks.publish)
        self.store = self.account.store
        self.idempotency = IdempotencyStore()
        self.requests: list[Seen] = []
        self._faults: list[Fault] = []
        self._executions: set[asyncio.Task] = set()

    # --- test hooks: state ----------------------------------------------------------------

    def complete_checkout_session(
        self,
        session_id: str,
        card: str = "4242424242424242",
        *,
        exp: str = "12/34",
        cvc: str = "123",
        name: str | None = "Test Cardholder",
        email: str | None = "payer@example.com",
        authenticate: bool = True,
    ) -> Attempt:
        """Pay (or save the card on) a session as the cardholder would on its hosted page."""
        month, year = hosted.expiry(exp)
        entry = CardEntry(card.replace(" ", ""), month, year, cvc, name, email, authenticate)
        return self.account.checkout.pay(session_id, entry)

    def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        return self.account.checkout.expire(session_id, Origin())

    def attach_card(self, customer_id: str, card: str = "4242424242424242") -> dict[str, Any]:
        """A test card saved to a customer, as a setup-mode Checkout would (a shortcut)."""
        method = self.account.customers.new_card(card)
        return self.account.customers.attach(method["id"], {"customer": customer_id}, Origin())

    def refund_charge(
        self, charge_id: str, amount: int | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """A refund made in the Dashboard: full, or partial with `amount`."""
        return self.account.payments.refund(charge_id, amount=amount, reason=reason)

    def open_dispute(self, charge_id: str, reason: str = "fraudulent") -> dict[str, Any]:
        return self.account.payments.open_dispute(charge_id, reason=reason)

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        return self.account.payments.close_dispute(dispute_id, won=won)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on; sessions past their `expires_at` expire."""
        self.clock.offset += seconds
        self.account.checkout.expire_due()

    @property
    def search_lag(self) -> float:
        return self.store.search_lag

    @search_lag.setter
    def search_lag(self, seconds: float) -> None:
        self.store.search_lag = seconds

    # --- test hooks: faults and idempotency -----------------------------------------------

    def fail_next(
        self,
        count: int,
        status: int = 500,
        *,
        stage: str = "before",
        retry_after: str | None = None,
        should_retry: bool | None = None,
        code: str | None = None,
        path: str = "",
        method: str = "",
    ) -> None:
        """The next `count` API requests (matching `path` prefix and `method`) fail."""
        fault = Fault(status, 0.0, stage, retry_after, should_retry, code, path, method)
        self.script_faults(count, fault)

    def hang_next(
        self, count: int, seconds: float, *, stage: str = "before", path: str = "", method: str = ""
    ) -> None:
        """The next `count` API requests answer only after `seconds` (see `Fault.stage`)."""
        self.script_faults(count, Fault(0, seconds, stage, path=path, method=method))

    def script_faults(self, count: int, fault: Fault) -> None:
        if fault.stage not in STAGES:
            raise ValueError(f"unknown fault stage {fault.stage!r}")
        self._faults.extend([fault] * count)

    def prune_idempotency_keys(self, older_than: float = 0.0) -> int:
        """Forget saved keys at least `older_than` seconds old (Stripe: after 24 hours)."""
        return self.idempotency.prune(older_than=older_than, now=self.clock.now())

    # --- test hooks: webhooks -------------------------------------------------------------

    def add_webhook_endpoint(
        self, url: str, secret: str | None = None, events: Sequence[str] = ("*",)
    ) -> WebhookEndpoint:
        return self.webhooks.add_endpoint(url, secret, events)

    def roll_webhook_secret(self, endpoint_id: str, new_secret: str | None = None) -> str:
        return self.webhooks.roll_secret(endpoint_id, new_secret)

    def hold_webhooks(self) -> None:
        self.webhooks.holding = True

    def release_webhooks(self, order: str | Sequence[str] = "created") -> None:
        self.webhooks.release(order)

    def drop_held_webhooks(self) -> int:
        return self.webhooks.drop_held()

    def redeliver_failed_webhooks(self) -> int:
        return self.webhooks.redeliver_failed()

    async def deliver(
        self,
        event_id: str,
        *,
        times: int = 1,
        timestamp: int | None = None,
        secret: str | None = None,
        endpoint_id: str | None = None,
    ) -> list[Delivery]:
        """Deliver an event now, again: `times` over, signed at `timestamp`, or with `secret`."""
        endpoints = (
            [self.webhooks.endpoint(endpoint_id)] if endpoint_id else self.webhooks.endpoints
        )
        secrets = [secret] if secret else None
        return [
            await self.webhooks.send(event_id, e.id, timestamp=timestamp, secrets=secrets)
            for e in endpoints
            for _ in range(times)
        ]

    async def settle(self) -> None:
        """Wait until every automatic webhook delivery so far has been attempted."""
        await self.webhooks.settle()

    # --- what tests read ------------------------------------------------------------------

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.store.events if type_ in (None, e["type"])]

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Stored objects of a kind ("customer", "payment_intent"…), oldest first."""
        return self.store.of_kind(kind)[::-1]

    def calls(self, method: str = "", path_prefix: str = "") -> list[Seen]:
        return [
            seen
            for seen in self.requests
            if seen.method.startswith(method) and seen.path.startswith(path_prefix)
        ]

    # --- the app --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        endpoints = Endpoints(self.account)
        for method, path, handler in endpoints.routes():
            app.router.add_route(method, path, self._endpoint(handler))
        app.router.add_route("*", "/v1/{tail:.*}", self._unrecognized)
        pages = HostedPages(self.account)
        app.router.add_get("/pay/{session}", pages.show)
        app.router.add_post("/pay/{session}", pages.submit)
        add_control_routes(app, self)
        app.cleanup_ctx.append(self._lifecycle)
        return app

    async def _lifecycle(self, app: web.Application):
        await self.webhooks.start()
        yield
        for task in list(self._executions):
            task.cancel()
        await asyncio.gather(*self._executions, return_exceptions=True)
        await self.webhooks.stop()

    # --- the pipeline ---------------------------------------------------------------------

    def _endpoint(self, handler: Handler):
        async def serve(request: web.Request) -> web.Response:
            seen = Seen(
                request.method,
                request.path,
                {},
                request.headers.get("Idempotency-Key") if request.method == "POST" else None,
                request.headers.get("Stripe-Version"),
                new_id("req", 14),
                at=time.monotonic(),
            )
            self.requests.append(seen)
            headers = {
                "Request-Id": seen.request_id,
                "Stripe-Version": seen.stripe_version or self.api_version,
            }
            if seen.idempotency_key:
                headers["Idempotency-Key"] = seen.idempotency_key
            try:
                status, body, extra = await self._answer(request, handler, seen)
            except StripeFailure as failure:
                status, body, extra = failure.status, self._error(failure, seen), failure.headers
            seen.status = status
            return web.Response(
                status=status,
                body=body,
                headers={**headers, **extra},
                content_type="application/json",
            )

        return serve

    async def _answer(
        self, request: web.Request, handler: Handler, seen: Seen
    ) -> tuple[int, bytes, dict[str, str]]:
        self._authenticate(request)
        pairs = (await request.post()) if request.method == "POST" else request.query
        seen.params = forms.decode((str(k), str(v)) for k, v in pairs.items())
        fault = seen.fault = self._take_fault(request)
        if fault is not None and fault.stage == "before":
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                raise fault_failure(fault, executed=False)
        key = seen.idempotency_key
        if key is not None:
            saved = self.idempotency.begin(
                key,
                f"{request.method} {request.path}",
                seen.params,
                seen.request_id,
                self.clock.now(),
            )
            if saved is not None:
                seen.replayed = True
                assert saved.status is not None
                return (
                    saved.status,
                    saved.body,
                    {
                        **saved.headers,
                        "Idempotent-Replayed": "true",
                        "Original-Request": saved.request_id,
                    },
                )
        call = Call(
            seen.params,
            dict(request.match_info),
            Origin(seen.request_id, key),
            self.public_url or str(request.url.origin()),
        )
        # Stripe finishes what it began even if the client goes away: the execution runs
        # shielded from the handler's cancellation, and its answer is saved for the key.
        execution = asyncio.create_task(self._execute(handler, call, seen, fault))
        self._executions.add(execution)
        execution.add_done_callback(self._executions.discard)
        answer = await asyncio.shield(execution)
        if fault is not None and fault.stage == "after" and fault.delay:
            await asyncio.sleep(fault.delay)
        return answer

    async def _execute(
        self, handler: Handler, call: Call, seen: Seen, fault: Fault | None
    ) -> tuple[int, bytes, dict[str, str]]:
        key = seen.idempotency_key
        try:
            if fault is not None and fault.stage == "during" and fault.delay:
                await asyncio.sleep(fault.delay)
            self.account.checkout.expire_due()
            params = dict(call.params)
            expand = forms.strings(params, "expand") or []
            params.pop("expand", None)
            try:
                result = handler(Call(params, call.match, call.origin, call.base_url))
                status, body, headers = 200, self._json(self.store.render(result, expand)), {}
                saved = True
            except StripeFailure as failure:
                status, body, headers = failure.status, self._error(failure, seen), failure.headers
                saved = failure.saved
            if fault is not None and fault.stage in ("during", "after") and fault.status:
                failure = fault_failure(fault, executed=True)
                status, body, headers = failure.status, self._error(failure, seen), failure.headers
                saved = True
        except BaseException:
            if key is not None:
                self.idempotency.release(key)
            raise
        if key is not None:
            if saved:
                self.idempotency.finish(key, status, body, headers)
            else:
                self.idempotency.release(key)
        seen.status = status
        return status, body, headers

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        given = ""
        if header.startswith("Bearer "):
            given = header.removeprefix("Bearer ").strip()
        elif header.startswith("Basic "):
            try:
                given = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                given = ""
        if not given:
            raise StripeFailure(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            shown = f"{given[:8]}{'*' * max(0, len(given) - 12)}{given[-4:]}"
            raise StripeFailure(401, "invalid_request_error", f"Invalid API Key provided: {shown}")

    def _take_fault(self, request: web.Request) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if request.path.startswith(fault.path) and request.method.startswith(fault.method):
                return self._faults.pop(index)
        return None

    def _error(self, failure: StripeFailure, seen: Seen) -> bytes:
        return self._json(failure.body(seen.request_id, self.store.now()))

    @staticmethod
    def _json(value: Any) -> bytes:
        return json.dumps(value, indent=2).encode()

    async def _unrecognized(self, request: web.Request) -> web.Response:
        failure = unrecognized_url(request.method, request.path)
        body = failure.body(new_id("req", 14), self.store.now())
        return web.json_response(body, status=failure.status)

    def __repr__(self) -> str:
        return f"FakeStripe(url={self.url!r})"
