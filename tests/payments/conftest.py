"""Fixtures for talking to the fake Stripe (tests/fakes/stripe_api.py) through the real SDK.

`stripe_client` is the official `stripe` SDK's async client pointed at the fake with its own
base-address setting; `webhook_inbox` is a webhook endpoint on loopback that keeps the raw
bodies and signature headers the fake delivers, for `stripe.Webhook.construct_event`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import stripe
from aiohttp import web


@pytest.fixture
async def stripe_client_for(fake_stripe) -> AsyncIterator[Callable[..., stripe.StripeClient]]:
    """Makes SDK clients for the fake (other keys, retries, timeouts); closes them after."""
    made: list[stripe.AIOHTTPClient] = []

    def make(
        *, api_key: str | None = None, max_network_retries: int | None = None, timeout=80
    ) -> stripe.StripeClient:
        http_client = stripe.AIOHTTPClient(timeout=timeout)
        made.append(http_client)
        return stripe.StripeClient(
            api_key or fake_stripe.api_key,
            base_addresses={"api": fake_stripe.url},
            http_client=http_client,
            max_network_retries=max_network_retries,
        )

    yield make
    for http_client in made:
        await http_client.close_async()


@pytest.fixture
def stripe_client(stripe_client_for) -> stripe.StripeClient:
    return stripe_client_for()


@dataclass
class Received:
    body: bytes
    signature: str


@dataclass
class WebhookInbox:
    """The product's webhook endpoint stand-in: keeps what arrives, answers `status`."""

    received: list[Received] = field(default_factory=list)
    status: int = 200
    secret: str = ""
    endpoint_id: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/stripe/webhook", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append(
            Received(await request.read(), request.headers.get("Stripe-Signature", ""))
        )
        return web.Response(status=self.status)

    def events(self) -> list[stripe.Event]:
        """Every delivery, verified with the endpoint's secret as the product will do it."""
        return [
            stripe.Webhook.construct_event(item.body, item.signature, self.secret)
            for item in self.received
        ]

    def types(self) -> list[str]:
        return [event.type for event in self.events()]


@pytest.fixture
async def webhook_inbox(aiohttp_server, fake_stripe) -> WebhookInbox:
    inbox = WebhookInbox()
    server = await aiohttp_server(inbox.app())
    endpoint = fake_stripe.add_webhook_endpoint(str(server.make_url("/stripe/webhook")))
    inbox.secret = endpoint.secret
    inbox.endpoint_id = endpoint.id
    return inbox
