"""Benchmark: from Stripe's webhook arriving to the receipt in the chat, through the real app.

For each order an admin adds funds with a new card (the form, then the confirmation whose
button opens the Checkout Session), the cardholder pays on the fake Stripe's page with webhooks
held, and the measured step delivers `checkout.session.completed` to the bot: verify the
signature, read the session from Stripe, book the order, update the confirmation card in place
and post the receipt. Prints median and p95 of the time from the delivery's start to the receipt
reaching the fake Bot Connector, and the Table and Stripe requests of one booking. Figures only,
no assertions.

    .venv/bin/python -m tests.benchmarks.bench_webhook [--orders 100]

Everything runs on loopback: Azurite, the fake Stripe (tests/fakes/stripe_api.py), the fake Bot
Connector; the real Stripe and Teams add their network round trips to these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
from collections import Counter
from urllib.parse import urlparse

from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.settings import Settings
from scripts.azurite import Azurite
from tests.fakes.connector import FakeConnector, card_texts
from tests.fakes.stripe_api import FakeStripe
from tests.support import activities
from tests.support.chat import EN, open_urls, submit_data

WEBHOOK_SECRET = "whsec_bench_0123456789abcdef0123456789abcdef"


def _table_of(url: str) -> str:
    # .../devstoreaccount1/<table>(PartitionKey='..',RowKey='..') or /$batch or /Tables
    path = urlparse(url).path.split("/")[-1]
    return path.split("(")[0] or "?"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share + 0.5) - 1)]


async def main(orders: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    requests: list[str] = []
    counting = False

    def hook(request) -> None:
        if counting:
            requests.append(_table_of(request.http_request.url))

    with Azurite() as azurite:
        connector = FakeConnector()
        connector_server = TestServer(connector.app())
        await connector_server.start_server()
        connector_url = str(connector_server.make_url("")).rstrip("/")
        stripe = FakeStripe()
        stripe_server = TestServer(stripe.app())
        await stripe_server.start_server()
        stripe.url = str(stripe_server.make_url("")).rstrip("/")
        settings = Settings.from_mapping(
            {
                "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
                "TABLE_PREFIX": "benchhook",
                "LOG_LEVEL": "WARNING",
                "PAYMENT_GATEWAY": "stripe",
                "STRIPE_SECRET_KEY": stripe.api_key,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "STRIPE_API_BASE": stripe.url,
            }
        )
        client = TestClient(TestServer(create_app(settings, request_hook=hook)))
        await client.start_server()
        stripe.add_webhook_endpoint(str(client.make_url("/api/payments/stripe")), WEBHOOK_SECRET)
        stripe.hold_webhooks()

        latencies: list[float] = []
        tables: Counter[str] = Counter()
        stripe_calls = 0
        try:
            for i in range(orders):
                conversation = f"a:bench-{i}"

                async def say(text=None, value=None, conversation=conversation):
                    activity = activities.message(
                        connector_url, text, value=value, conversation_id=conversation
                    )
                    response = await client.post("/api/messages", json=activity)
                    assert response.status in (200, 201), await response.text()

                await say("add funds")
                form = submit_data(connector.cards()[-1], "add_funds")
                await say(value={**form, "amount": "500", "method": "new_card"})
                [url] = open_urls(connector.cards()[-1])
                session = url.rsplit("/", 1)[-1]
                assert stripe.complete_checkout_session(session).succeeded
                stripe.drop_held_webhooks()  # the test delivers the one it measures
                stripe.hold_webhooks()
                [event] = [
                    e
                    for e in stripe.events("checkout.session.completed")
                    if e["data"]["object"]["id"] == session
                ]
                posted, seen = len(connector.posted), len(stripe.requests)

                requests.clear()
                counting = True
                begin = asyncio.get_running_loop().time()
                [delivery] = await stripe.deliver(event["id"])
                counting = False

                assert delivery.status == 200, delivery.status
                receipt = next(
                    p
                    for p in connector.posted[posted:]
                    if EN("receipt.title") in card_texts(p.activity["attachments"][0]["content"])
                )
                latencies.append(receipt.at - begin)
                tables.update(requests)
                stripe_calls += len(stripe.requests) - seen
        finally:
            await client.close()
            await stripe_server.close()
            await connector_server.close()

    print(
        f"webhook to receipt, {orders} orders: median {statistics.median(latencies) * 1000:.1f} "
        f"ms, p95 {_percentile(latencies, 0.95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    total = sum(tables.values()) / orders
    print(f"  Table requests per booking: {total:.2f}")
    for table, count in sorted(tables.items()):
        print(f"    {table}: {count / orders:.2f}")
    print(f"  Stripe API requests per booking: {stripe_calls / orders:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    asyncio.run(main(parser.parse_args().orders))
