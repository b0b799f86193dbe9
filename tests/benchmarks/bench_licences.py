"""Benchmark: opening the licences card for a tenant of 10,000 users on Microsoft Graph.

Graph is the fake on loopback (tests/fakes/graph.py) speaking Graph's paging; the bot is the
real app with the real Graph adapter. Prints the turn's time, the Graph requests it made, the
Python memory it allocated at peak, and the card's size against Teams' ~28 KB limit.

    .venv/bin/python -m tests.benchmarks.bench_licences [--users 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import tracemalloc

from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.settings import Settings
from credits.directory import BILLING_ADMINISTRATOR
from credits.licences import COMMUNICATIONS_CREDITS_SKU_ID
from graph.client import GraphClient
from graph.directory import GraphDirectory
from scripts.azurite import Azurite
from tests.fakes.connector import FakeConnector
from tests.fakes.graph import FakeGraph
from tests.support import activities


class FakeGraphTokens:
    """Tokens straight from the fake (azure-identity itself is exercised in tests/graph)."""

    def __init__(self, graph: FakeGraph) -> None:
        self._graph = graph

    async def token(self, tenant_id: str) -> str:
        return self._graph.issue_token(tenant_id)


ADMIN = "a1e5a1e5-0000-4000-8000-000000000001"


def as_admin(connector_url: str, text: str) -> dict:
    activity = activities.message(connector_url, text)
    activity["from"]["aadObjectId"] = ADMIN
    return activity


async def main(users: int) -> None:
    graph = FakeGraph()
    tenant = activities.TENANT
    graph.add_sku(tenant, COMMUNICATIONS_CREDITS_SKU_ID, "MCOPSTNC", enabled=users, consumed=0)
    graph.add_sku(tenant, "ac", "MCOMEETADV", enabled=users, consumed=users // 2)
    for n in range(users):
        graph.add_user(
            tenant,
            f"user-{n:05d}",
            f"User {n:05d}",
            sku_ids=["ac"] if n % 2 else [],
            roles=[BILLING_ADMINISTRATOR] if n == 0 else [],
        )
    # Graph is asked only about Entra object ids (the Playground's mock id is not one).
    graph.add_user(tenant, ADMIN, "Alex Wilber", roles=[BILLING_ADMINISTRATOR])
    graph_server = TestServer(graph.app())
    await graph_server.start_server()
    graph.url = str(graph_server.make_url("")).rstrip("/")

    with Azurite() as azurite:
        settings = Settings.from_mapping(
            {
                "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
                "TABLE_PREFIX": "bench",
                "LOG_LEVEL": "WARNING",
            }
        )
        graph_client = GraphClient(None, FakeGraphTokens(graph), base=graph.url + "/v1.0")
        directory = GraphDirectory(graph_client)
        connector = FakeConnector()
        connector_server = TestServer(connector.app())
        await connector_server.start_server()
        connector_url = str(connector_server.make_url("")).rstrip("/")
        client = TestClient(TestServer(create_app(settings, directory=directory)))
        await client.start_server()
        try:
            # Warm the role cache and connections with help, then measure "licences".
            await client.post("/api/messages", json=as_admin(connector_url, "status"))
            licences = as_admin(connector_url, "licences")
            before = len(graph.graph_requests())
            begin = time.perf_counter()
            response = await client.post("/api/messages", json=licences)
            elapsed = time.perf_counter() - begin
            assert response.status == 201
            requests = graph.graph_requests()[before:]
            # Memory in a second, traced run: tracing slows Python down several times.
            tracemalloc.start()
            await client.post("/api/messages", json=licences)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            await client.close()
            await connector_server.close()
            await graph_client.close()
            await graph_server.close()

    card = connector.cards()[-1]
    size = len(json.dumps(card, ensure_ascii=False).encode("utf-8"))
    print(
        f"licences card for {users:,} users: {elapsed * 1000:.0f} ms "
        "(the fake Graph serves from the same process and its CPU time counts here)"
    )
    paths = ", ".join(sorted({r.path.split("?")[0] for r in requests}))
    print(f"  Graph requests: {len(requests)} ({paths})")
    print(f"  Python memory allocated at peak during the turn: {peak / 1024 / 1024:.1f} MiB")
    print(f"  card size: {size:,} bytes (Teams limit about 28,000)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().users))
