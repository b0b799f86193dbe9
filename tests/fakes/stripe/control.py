"""`/_fake/...`: the fake's test hooks over HTTP, for a test in another process (a chaos test,
a browser script, a local demo) to drive what tests in-process call as `FakeStripe` methods.

JSON in, JSON out, and the same Bearer secret key as the API. None of this is Stripe's.

    POST /_fake/checkout/sessions/{id}/complete   {"card", "exp", "cvc", "name", "email",
                                                   "authenticate"} → {"succeeded", "error", …}
    POST /_fake/checkout/sessions/{id}/expire
    POST /_fake/charges/{id}/refund               {"amount"?, "reason"?}
    POST /_fake/charges/{id}/dispute              {"reason"?}
    POST /_fake/faults                            {"count", "status", "delay", "stage",
                                                   "retry_after", "should_retry", "code", "path",
                                                   "method"}
    POST /_fake/idempotency/prune                 {"older_than"?}
    POST /_fake/clock/advance                     {"seconds"}
    POST /_fake/webhooks/hold | /release {"order"?} | /drop | /redeliver-failed
    POST /_fake/webhooks/deliver                  {"event", "times"?, "timestamp"?, "secret"?}
    GET  /_fake/requests                          the recorded API requests
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.stripe.errors import StripeFailure
from tests.fakes.stripe.faults import Fault

if TYPE_CHECKING:
    from tests.fakes.stripe.app import FakeStripe


def add_control_routes(app: web.Application, fake: FakeStripe) -> None:
    routes = Control(fake)
    app.router.add_post("/_fake/checkout/sessions/{id}/complete", routes.complete)
    app.router.add_post("/_fake/checkout/sessions/{id}/expire", routes.expire)
    app.router.add_post("/_fake/charges/{id}/refund", routes.refund)
    app.router.add_post("/_fake/charges/{id}/dispute", routes.dispute)
    app.router.add_post("/_fake/faults", routes.faults)
    app.router.add_post("/_fake/idempotency/prune", routes.prune)
    app.router.add_post("/_fake/clock/advance", routes.advance)
    app.router.add_post("/_fake/webhooks/{action}", routes.webhooks)
    app.router.add_get("/_fake/requests", routes.requests)


class Control:
    def __init__(self, fake: FakeStripe) -> None:
        self.fake = fake

    async def _body(self, request: web.Request) -> dict[str, Any]:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), self.fake.api_key.encode()):
            raise web.HTTPUnauthorized(text="the fake's control endpoints need its secret key")
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="a JSON object, please")
        return body

    async def complete(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        options = {k: body[k] for k in ("exp", "cvc", "name", "email", "authenticate") if k in body}
        attempt = self.fake.complete_checkout_session(
            request.match_info["id"], body.get("card", "4242424242424242"), **options
        )
        return web.json_response(
            {
                "succeeded": attempt.succeeded,
                "error": attempt.error,
                "code": attempt.code,
                "decline_code": attempt.decline_code,
                "session": attempt.session,
            }
        )

    async def expire(self, request: web.Request) -> web.Response:
        await self._body(request)
        return _answer(lambda: self.fake.expire_checkout_session(request.match_info["id"]))

    async def refund(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return _answer(
            lambda: self.fake.refund_charge(
                request.match_info["id"], body.get("amount"), body.get("reason")
            )
        )

    async def dispute(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return _answer(
            lambda: self.fake.open_dispute(
                request.match_info["id"], body.get("reason", "fraudulent")
            )
        )

    async def faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        count = int(body.pop("count", 1))
        names = {f.name for f in dataclasses.fields(Fault)}
        unknown = set(body) - names
        if unknown:
            raise web.HTTPBadRequest(text=f"unknown fault fields: {sorted(unknown)}")
        self.fake.script_faults(count, Fault(**body))
        return web.json_response({"queued": count})

    async def prune(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        pruned = self.fake.prune_idempotency_keys(float(body.get("older_than", 0)))
        return web.json_response({"pruned": pruned})

    async def advance(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self.fake.advance(float(body["seconds"]))
        return web.json_response({"now": self.fake.store.now()})

    async def webhooks(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        action = request.match_info["action"]
        if action == "hold":
            self.fake.hold_webhooks()
            return web.json_response({"holding": True})
        if action == "release":
            self.fake.release_webhooks(body.get("order", "created"))
            return web.json_response({"holding": False})
        if action == "drop":
            return web.json_response({"dropped": self.fake.drop_held_webhooks()})
        if action == "redeliver-failed":
            return web.json_response({"queued": self.fake.redeliver_failed_webhooks()})
        if action == "deliver":
            deliveries = await self.fake.deliver(
                body["event"],
                times=int(body.get("times", 1)),
                timestamp=body.get("timestamp"),
                secret=body.get("secret"),
            )
            return web.json_response(
                [{"status": d.status, "error": d.error, "url": d.url} for d in deliveries]
            )
        raise web.HTTPNotFound(text=f"no webhook action {action!r}")

    async def requests(self, request: web.Request) -> web.Response:
        await self._body(request)
        seen = [
            {**dataclasses.asdict(s), "fault": dataclasses.asdict(s.fault) if s.fault else None}
            for s in self.fake.requests
        ]
        return web.json_response(seen)


def _answer(action) -> web.Response:
    try:
        return web.json_response(action())
    except StripeFailure as failure:
        return web.json_response(
            {"error": {"type": failure.type, "code": failure.code, "message": failure.message}},
            status=failure.status,
        )
