"""Benchmark: the place-order turn through the real app against Azurite.

For each order, one turn opens the confirmation ("add funds 500") and the measured turn presses
"Place order". Prints median and p99 latency, turns per second, and the Table requests of the
measured turn by table (bot state apart from the credits ledger). Figures only, no assertions.

    .venv/bin/python -m tests.benchmarks.bench_place_order [--orders 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from urllib.parse import urlparse

from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.settings import Settings
from scripts.azurite import Azurite
from tests.fakes.connector import FakeConnector
from tests.support import activities


def _table_of(url: str) -> str:
    # .../devstoreaccount1/<table>(PartitionKey='..',RowKey='..') or /$batch or /Tables
    path = urlparse(url).path.split("/")[-1]
    return path.split("(")[0] or "?"


async def main(orders: int) -> None:
    requests: list[str] = []
    counting = False

    def hook(request) -> None:
        if counting:
            requests.append(_table_of(request.http_request.url))

    with Azurite() as azurite:
        settings = Settings.from_mapping(
            {
                "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
                "TABLE_PREFIX": "bench",
                "LOG_LEVEL": "WARNING",
            }
        )
        connector = FakeConnector()
        connector_server = TestServer(connector.app())
        await connector_server.start_server()
        connector_url = str(connector_server.make_url("")).rstrip("/")
        client = TestClient(TestServer(create_app(settings, request_hook=hook)))
        await client.start_server()

        latencies = []
        per_turn: list[Counter[str]] = []
        total = 0.0
        try:
            for i in range(orders):
                conversation = f"a:bench-{i}"
                await client.post(
                    "/api/messages",
                    json=activities.message(
                        connector_url, "add funds 500", conversation_id=conversation
                    ),
                )
                card = connector.cards()[-1]
                place = next(
                    action["data"]
                    for block in card["body"]
                    if block.get("type") == "ActionSet"
                    for action in block["actions"]
                    if action.get("data", {}).get("action") == "place"
                )
                activity = activities.message(
                    connector_url, value=place, conversation_id=conversation
                )
                requests.clear()
                counting = True
                begin = time.perf_counter()
                response = await client.post("/api/messages", json=activity)
                elapsed = time.perf_counter() - begin
                counting = False
                assert response.status == 201
                latencies.append(elapsed)
                total += elapsed
                per_turn.append(Counter(requests))
        finally:
            await client.close()
            await connector_server.close()

    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(
        f"place-order turn, {orders} orders: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, {orders / total:.1f} turns/s (sequential)"
    )
    mean = Counter()
    for counts in per_turn:
        mean.update(counts)
    for table, count in sorted(mean.items()):
        print(f"  Table requests to {table}: {count / orders:.2f} per turn")
    state = sum(v for k, v in mean.items() if k.endswith("BotState")) / orders
    gateway = sum(v for k, v in mean.items() if k.endswith("SandboxPayments")) / orders
    ledger = sum(mean.values()) / orders - state - gateway
    print(f"  bot state {state:.2f}, credits ledger {ledger:.2f}, sandbox gateway {gateway:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    asyncio.run(main(parser.parse_args().orders))
