"""Fixtures of the Graph tests: the fake Graph and Entra token endpoint (tests/fakes/graph.py)
served over TLS on loopback with a throwaway CA, a session that trusts it, and the real
azure-identity token source pointed at it. Nothing here leaves the machine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from graph.tokens import GraphTokens
from tests.fakes.graph import FakeGraph, LoopbackTls
from tests.graph.seed import CLIENT_ID, SECRET, seeded_graph


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> LoopbackTls:
    return LoopbackTls.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def graph(aiohttp_server, tls) -> FakeGraph:
    fake = seeded_graph()
    server = await aiohttp_server(fake.app(), ssl=tls.server_context())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def session(tls) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=tls.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@pytest.fixture
async def tokens(graph, session) -> AsyncIterator[GraphTokens]:
    provider = GraphTokens(CLIENT_ID, SECRET, session, authority=graph.url)
    yield provider
    await provider.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sleep(sleeps):
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)  # recorded, not waited: the tests stay fast

    return sleep


class IssuedTokens:
    """A token source straight from the fake, for tests of the client alone; records every ask."""

    def __init__(self, graph: FakeGraph) -> None:
        self._graph = graph
        self._tokens: dict[str, str] = {}
        self.asked: list[str] = []

    async def token(self, tenant_id: str) -> str:
        self.asked.append(tenant_id)
        if tenant_id not in self._tokens:
            self._tokens[tenant_id] = self._graph.issue_token(tenant_id)
        return self._tokens[tenant_id]


@pytest.fixture
def issued(graph) -> IssuedTokens:
    return IssuedTokens(graph)
