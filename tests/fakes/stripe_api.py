"""A fake Stripe on loopback.

It stands for Stripe's REST API (api.stripe.com, v1, test mode) as the official `stripe` Python
SDK (16.1.0, its async client) speaks to it, pointed here with the SDK's own setting:
`stripe.StripeClient(key, base_addresses={"api": fake.url}, http_client=stripe.AIOHTTPClient())`.
It also stands for Stripe Checkout's hosted page and for Stripe's webhook deliveries.

Endpoints (form-encoded bodies with bracket notation; Bearer or Basic auth with the configured
secret key, else 401; `Stripe-Version` accepted and echoed; `expand[]` on every endpoint):

    POST /v1/customers                     GET /v1/customers[/{id}]     POST /v1/customers/{id}
    GET  /v1/customers/search?query=metadata['tenant_id']:'…'
    GET  /v1/customers/{id}/payment_methods[/{pm}]   GET /v1/payment_methods?customer=…&type=card
    GET  /v1/payment_methods/{id}          POST /v1/payment_methods/{id}/attach | /detach
    POST /v1/checkout/sessions             GET /v1/checkout/sessions[?payment_intent=…]
    GET  /v1/checkout/sessions/{id}[/line_items]     POST /v1/checkout/sessions/{id}/expire
    POST /v1/payment_intents               GET /v1/payment_intents[?customer=…] | /search | /{id}
    GET  /v1/setup_intents/{id}            GET /v1/charges[/{id}]    GET /v1/disputes/{id}
    POST /v1/refunds                       GET /v1/refunds/{id}
    GET  /v1/events[?type=…]               GET /v1/events/{id}
    GET|POST /pay/{session}                the hosted Checkout page (tests/fakes/stripe/hosted.py)
    /_fake/…                               test hooks over HTTP (tests/fakes/stripe/control.py)

What it models, as Stripe documents it:
- Objects with Stripe's shapes and id prefixes (`cus_`, `pm_`, `cs_test_`, `pi_`, `seti_`,
  `ch_`, `re_`, `dp_`, `evt_`), `object`, `livemode: false`, `created`, `metadata` (limits:
  50 keys, 40/500 characters; updates merge, "" unsets). Unknown parameters are refused
  (`parameter_unknown`) — including real Stripe parameters the fake does not model, so the
  product cannot silently depend on one.
- Errors as `{"error": {type, code, decline_code, message, param, doc_url, payment_intent,
  payment_method, charge, request_log_url}}`: 400 invalid_request_error, 402 card_error, 404
  resource_missing (400 when a parameter names the missing object), 401 (Stripe answers a bad
  key with type invalid_request_error; the SDK raises `stripe.AuthenticationError` for any
  401), 409 idempotency_key_in_use, 400 idempotency_error; 429 and 5xx only when scripted.
- Checkout Sessions in `payment` mode (line_items with price_data, payment_intent_data with
  setup_future_usage / metadata / description) and `setup` mode (currency,
  setup_intent_data). As since API 2022-08-01, the PaymentIntent or SetupIntent is created
  when the cardholder submits the page, not with the session; session `metadata` is not copied
  to the intent (payment_intent_data[metadata] is). `success_url` is kept as given; the page
  substitutes `{CHECKOUT_SESSION_ID}` when it redirects. Sessions expire at `expires_at`
  (24 h by default, 30 min to 24 h allowed) or when expired through the API; an expired
  session's failed PaymentIntent is canceled.
- Test cards decide outcomes (tests/fakes/stripe/cards.py): 4242… succeeds; …0002 generic
  decline; …9995 insufficient funds (but can be saved); …0069 expired_card; …0119
  processing_error; …0127 incorrect_cvc; …0341 saves but every charge fails; 4000002760003184
  always asks for 3D Secure: it passes on the hosted page (the cardholder is there), fails
  off session with `authentication_required`, and gives `requires_action` when confirmed
  through the API without `off_session`; …0259 is disputed after the charge. `pm_card_*`
  shortcuts make a new PaymentMethod each time. Any other number is refused as a live card.
- PaymentIntents created with `confirm=true` charge at once; a decline is a 402 card_error
  whose body holds the PaymentIntent (status `requires_payment_method`, `last_payment_error`,
  `latest_charge` the failed Charge). A PaymentMethod used without being attached, or
  detached, cannot be used again.
- Idempotency (tests/fakes/stripe/idempotency.py): saved answers replayed with
  `Idempotent-Replayed: true`; mismatches, keys in use, pruning (on demand).
- Search (customers, PaymentIntents) with a subset of the query language
  (tests/fakes/stripe/search.py); writes become searchable after `search_lag` seconds of the
  fake's clock (0 unless a test sets it: Stripe documents "usually under a minute").
- Events for every change (checkout.session.completed / .expired, payment_intent.created /
  .succeeded / .payment_failed / .requires_action / .canceled, setup_intent.created /
  .succeeded / .setup_failed, charge.succeeded / .failed / .refunded, refund.created,
  charge.dispute.created / .funds_withdrawn / .closed, customer.created / .updated,
  payment_method.attached / .detached), readable at /v1/events and delivered to webhook
  endpoints signed like Stripe (tests/fakes/stripe/webhooks.py), under the test's control.

What it does not model: live mode, Connect (`Stripe-Account` is ignored), prices and products
as objects (only `price_data`), subscriptions and invoices, payment methods other than cards,
manual capture, PaymentIntent confirm/cancel/update endpoints, balance transactions and fees
(`balance_transaction` is null), Radar, 3D Secure redirects (`next_action` is a placeholder),
automatic retries of failed webhooks (a test redelivers), API version differences (objects
have the shapes of the SDK's pinned version whatever `Stripe-Version` says), rate limits
(only scripted), search indexing other than the lag, and the exact wording of most messages.

Serve one `FakeStripe` per test with `aiohttp_server(fake.app())` (the `fake_stripe` fixture in
tests/conftest.py), or standalone for a demo or a test in another process:

    python -m tests.fakes.stripe_api --port 12111 --webhook http://127.0.0.1:3978/api/stripe \
        --secret whsec_local
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
from urllib.parse import urlsplit

from aiohttp import web

from tests.fakes.stripe.app import API_VERSION, TEST_SECRET_KEY, FakeStripe, Seen
from tests.fakes.stripe.cards import SHORTCUTS, TEST_CARDS
from tests.fakes.stripe.checkout import Attempt
from tests.fakes.stripe.faults import Fault
from tests.fakes.stripe.webhooks import Delivery, WebhookEndpoint

__all__ = [
    "API_VERSION",
    "SHORTCUTS",
    "TEST_CARDS",
    "TEST_SECRET_KEY",
    "Attempt",
    "Delivery",
    "FakeStripe",
    "Fault",
    "Seen",
    "WebhookEndpoint",
]

logger = logging.getLogger("tests.fakes.stripe_api")


async def serve(host: str, port: int, webhook: str | None, secret: str | None, key: str) -> None:
    fake = FakeStripe(key)
    if webhook:
        endpoint = fake.add_webhook_endpoint(webhook, secret)
        logger.info("webhooks go to %s signed with %s", webhook, endpoint.secret)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    fake.url = f"http://{host}:{runner.addresses[0][1]}"
    logger.info("fake Stripe listening on %s", fake.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for name in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(name, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Stripe API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--webhook", help="URL of a webhook endpoint to deliver events to")
    parser.add_argument("--secret", help="its signing secret (whsec_…); made up if absent")
    parser.add_argument("--api-key", default=TEST_SECRET_KEY, help="the secret key to accept")
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("the fake serves loopback only")
    if args.webhook and urlsplit(args.webhook).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the fake delivers webhooks to loopback only")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.webhook, args.secret, args.api_key))


if __name__ == "__main__":
    main()
