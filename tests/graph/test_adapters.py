"""The Graph adapters as the application factory wires them: one session and one token source
for both, each adapter waiting in its own way. Against the fake Graph and token endpoint over
TLS on loopback (tests/fakes/graph.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import SERVICES, create_app
from bot.settings import Settings
from credits.directory import DirectoryError, DirectoryProblem
from graph.adapters import GraphAdapters
from graph.directory import GraphDirectory
from graph.errors import GraphError
from tests.graph.seed import ALEX, CLIENT_ID, SECRET, TENANT


@pytest.fixture
async def adapters(graph, session, sleep):
    wired = GraphAdapters(
        CLIENT_ID,
        SECRET,
        session=session,
        base=f"{graph.url}/v1.0",
        authority=graph.url,
        sleep=sleep,
    )
    yield wired
    await wired.close()


async def test_both_adapters_share_the_tenants_token(adapters, graph):
    await adapters.directory.get_user(TENANT, ALEX)
    graph.fail_next(1, 404)  # the fake Graph of the directory has no call records
    with pytest.raises(GraphError):
        start = datetime(2026, 1, 1, tzinfo=UTC)
        _ = [page async for page in adapters.pstn_calls.pages(TENANT, start, start + timedelta(1))]

    assert graph.token_requests == {TENANT: 1}
    assert len({seen.authorization for seen in graph.graph_requests()}) == 1


async def test_the_directory_does_not_hold_a_turn_for_a_long_wait(adapters, graph, sleeps):
    graph.fail_next(1, 429, retry_after="3600")

    with pytest.raises(DirectoryError) as throttled:
        await adapters.directory.subscribed_skus(TENANT)

    assert throttled.value.problem is DirectoryProblem.THROTTLED and sleeps == []


async def test_the_pstn_calls_reader_waits_a_long_wait_capped(adapters, graph, sleeps):
    graph.fail_next(1, 429, retry_after="3600")
    start = datetime(2026, 1, 1, tzinfo=UTC)

    # After the wait the fake answers 404: it stands for the directory's part of Graph only.
    with pytest.raises(GraphError) as missing:
        _ = [page async for page in adapters.pstn_calls.pages(TENANT, start, start + timedelta(1))]

    assert sleeps == [120.0] and missing.value.status == 404
    assert len(graph.graph_requests()) == 2


async def test_close_leaves_a_given_session_open_and_closes_its_own(session):
    given = GraphAdapters(CLIENT_ID, SECRET, session=session)
    own = GraphAdapters(CLIENT_ID, SECRET)

    await given.close()
    await own.close()

    assert not session.closed and own.closed


async def test_the_service_wires_graph_when_the_settings_say_so(
    aiohttp_client, azurite, table_prefix
):
    settings = Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "DIRECTORY": "graph",
            "GRAPH_CLIENT_ID": CLIENT_ID,
            "GRAPH_CLIENT_SECRET": SECRET,
        }
    )
    client = await aiohttp_client(create_app(settings))

    services = client.app[SERVICES]
    assert isinstance(services.directory, GraphDirectory)
    assert "usage-sync" in [job.name for job in services.job_list]
