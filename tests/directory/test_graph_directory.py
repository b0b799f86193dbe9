"""The Graph directory against a fake Microsoft Graph and a fake Entra token endpoint on loopback.

Both fakes are one HTTPS server (tests/fakes/graph.py) with a throwaway CA: MSAL accepts only
https authorities, so the real `MsalTokenProvider` runs against it, unchanged. Nothing here
leaves the machine.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from credits.directory import (
    BILLING_ADMINISTRATOR,
    GLOBAL_ADMINISTRATOR,
    DirectoryError,
    DirectoryProblem,
    DirectoryUser,
)
from credits.graph_directory import (
    GraphDirectory,
    MsalTokenProvider,
    TokenProvider,
    problem_of,
)
from tests.fakes.graph import FakeGraph, LoopbackTls

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "fake-secret-do-not-log"
TENANT = "8f0b2c1e-5d4a-4e3b-9c2d-1a0f9e8d7c6b"
OTHER_TENANT = "contoso.onmicrosoft.com"
CREDITS = "47794cd0-f0e5-45c5-9033-2eb6b5fc84e0"
AUDIO = "0c266dff-15dd-4b49-8397-2bb16070ed52"
E5 = "c7df2760-2c81-4ef7-b578-5b5392b571df"


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> LoopbackTls:
    return LoopbackTls.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def graph(aiohttp_server, tls) -> FakeGraph:
    fake = FakeGraph(clients={CLIENT_ID: SECRET})
    for tenant in (TENANT, OTHER_TENANT):
        fake.add_sku(tenant, CREDITS, "MCOPSTNC", enabled=3, consumed=1, plans=["MCOPSTNC"])
        fake.add_sku(tenant, AUDIO, "MCOMEETADV", enabled=10, consumed=2)
        fake.add_sku(
            tenant, E5, "ENTERPRISEPREMIUM", enabled=5, plans=["MCOEV", "MCOMEETADV", "TEAMS1"]
        )
    fake.add_user(TENANT, "alex", "Alex Wilber", upn="alexw@example.com", sku_ids=[AUDIO])
    fake.add_user(TENANT, "megan", "Megan Bowen", sku_ids=[E5, CREDITS])
    fake.add_user(TENANT, "nowhere", "Élodie Lefèvre", usage_location=None, sku_ids=[AUDIO])
    fake.add_user(OTHER_TENANT, "olga", "Ольга Смирнова", usage_location="FI")
    server = await aiohttp_server(fake.app(), ssl=tls.server_context())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def session(tls):
    connector = aiohttp.TCPConnector(ssl=tls.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@pytest.fixture
def tokens(graph, tls):
    provider = MsalTokenProvider(
        CLIENT_ID,
        SECRET,
        authority_base=graph.url,
        validate_authority=False,  # no instance discovery at login.microsoftonline.com
        ca_bundle=tls.ca_path,
    )
    yield provider
    provider.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _directory(session, tokens: TokenProvider, graph: FakeGraph, sleeps: list[float], **kwargs):
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)  # recorded, not waited: the tests stay fast

    return GraphDirectory(session, tokens, graph_base=f"{graph.url}/v1.0", sleep=sleep, **kwargs)


@pytest.fixture
def directory(session, tokens, graph, sleeps) -> GraphDirectory:
    return _directory(session, tokens, graph, sleeps)


# --- reading ------------------------------------------------------------------------------------


async def test_every_user_is_listed_across_pages(directory, graph):
    graph.add_users(TENANT, 2_500)

    users = [user async for user in directory.list_users(TENANT)]

    assert len(users) == 2_503 and len({u.id for u in users}) == 2_503
    pages = graph.graph_requests("/users")
    assert len(pages) == 3  # 999 + 999 + 505
    assert all(page.query["$top"] == "999" for page in pages)
    assert pages[0].query["$select"] == (
        "id,displayName,userPrincipalName,usageLocation,assignedLicenses"
    )
    # The later pages are the absolute next links, followed as given.
    assert "$skiptoken" not in pages[0].query
    assert all("$skiptoken" in page.query for page in pages[1:])


async def test_a_user_is_read_with_licences_and_usage_location(directory):
    alex = await directory.get_user(TENANT, "alex")
    nowhere = await directory.get_user(TENANT, "nowhere")

    assert alex == DirectoryUser(
        "alex", "Alex Wilber", "alexw@example.com", "US", frozenset({AUDIO})
    )
    assert nowhere.usage_location == "" and nowhere.display_name == "Élodie Lefèvre"


async def test_subscribed_skus_carry_seats_and_service_plans(directory):
    skus = {sku.part_number: sku for sku in await directory.subscribed_skus(TENANT)}

    assert skus["MCOPSTNC"].sku_id == CREDITS
    assert (skus["MCOPSTNC"].enabled_units, skus["MCOPSTNC"].consumed_units) == (3, 1)
    assert skus["MCOPSTNC"].free_units == 2
    assert skus["ENTERPRISEPREMIUM"].service_plans == {"MCOEV", "MCOMEETADV", "TEAMS1"}


async def test_roles_are_read_across_pages(directory, graph):
    graph.add_user(TENANT, "admin", "Megan", roles=[GLOBAL_ADMINISTRATOR, BILLING_ADMINISTRATOR])
    graph.page_size = 1

    roles = await directory.role_template_ids(TENANT, "admin")

    assert roles == {GLOBAL_ADMINISTRATOR, BILLING_ADMINISTRATOR}
    calls = graph.graph_requests("/users/admin/memberOf/microsoft.graph.directoryRole")
    assert len(calls) == 2 and calls[0].query["$select"] == "roleTemplateId"
    assert await directory.role_template_ids(TENANT, "alex") == frozenset()


# --- assigning ----------------------------------------------------------------------------------


async def test_assign_license_sends_graphs_body_and_returns_the_user(directory, graph):
    user = await directory.assign_licenses(TENANT, "alex", add=[CREDITS], remove=[AUDIO])

    (post,) = [seen for seen in graph.graph_requests() if seen.method == "POST"]
    assert post.path == "/v1.0/users/alex/assignLicense"
    assert post.body == {
        "addLicenses": [{"skuId": CREDITS, "disabledPlans": []}],
        "removeLicenses": [AUDIO],
    }
    assert user.sku_ids == {CREDITS} and user.usage_location == "US"
    assert graph.tenants[TENANT].skus[CREDITS].consumed == 2
    assert graph.tenants[TENANT].skus[AUDIO].consumed == 1


async def test_a_removal_alone_still_sends_both_lists(directory, graph):
    await directory.assign_licenses(TENANT, "megan", add=[], remove=[CREDITS])

    (post,) = [seen for seen in graph.graph_requests() if seen.method == "POST"]
    assert post.body == {"addLicenses": [], "removeLicenses": [CREDITS]}


async def test_no_usage_location_is_its_own_problem(directory, graph):
    with pytest.raises(DirectoryError) as refused:
        await directory.assign_licenses(TENANT, "nowhere", add=[CREDITS], remove=[])

    assert refused.value.problem is DirectoryProblem.NO_USAGE_LOCATION
    assert graph.tenants[TENANT].skus[CREDITS].consumed == 1


async def test_no_free_seat_is_its_own_problem(directory, graph):
    graph.tenants[TENANT].skus[CREDITS].consumed = 3

    with pytest.raises(DirectoryError) as refused:
        await directory.assign_licenses(TENANT, "alex", add=[CREDITS], remove=[])

    assert refused.value.problem is DirectoryProblem.NO_SEATS
    assert graph.tenants[TENANT].users["alex"].sku_ids == [AUDIO]


async def test_an_unknown_user_is_not_found(directory):
    for call in (
        directory.get_user(TENANT, "nobody"),
        directory.role_template_ids(TENANT, "nobody"),
        directory.assign_licenses(TENANT, "nobody", add=[CREDITS], remove=[]),
    ):
        with pytest.raises(DirectoryError) as missing:
            await call
        assert missing.value.problem is DirectoryProblem.USER_NOT_FOUND


async def test_an_id_cannot_change_the_path(directory, graph):
    with pytest.raises(DirectoryError) as missing:
        await directory.get_user(TENANT, "../subscribedSkus")

    assert missing.value.problem is DirectoryProblem.USER_NOT_FOUND
    assert graph.requests[-1].path == "/v1.0/users/../subscribedSkus"  # one segment, quoted
    assert "%2F" in graph.requests[-1].url


async def test_missing_permissions_are_insufficient_privileges(directory, graph):
    graph.deny(TENANT, "assignLicense", "memberOf")

    for call in (
        directory.assign_licenses(TENANT, "alex", add=[CREDITS], remove=[]),
        directory.role_template_ids(TENANT, "alex"),
    ):
        with pytest.raises(DirectoryError) as denied:
            await call
        assert denied.value.problem is DirectoryProblem.INSUFFICIENT_PRIVILEGES


async def test_another_refusal_is_rejected_not_unavailable(directory):
    # Removing a licence the user does not hold: Graph says 400, and retrying will not help.
    with pytest.raises(DirectoryError) as refused:
        await directory.assign_licenses(TENANT, "alex", add=[], remove=[CREDITS])
    assert refused.value.problem is DirectoryProblem.REJECTED


# --- throttling and outages ---------------------------------------------------------------------


async def test_throttling_is_retried_after_the_time_graph_asks(directory, graph, sleeps):
    graph.fail_next(1, 429, retry_after="1")

    skus = await directory.subscribed_skus(TENANT)

    assert {sku.sku_id for sku in skus} == {CREDITS, AUDIO, E5}
    assert len(graph.graph_requests("/subscribedSkus")) == 2
    assert sleeps == [1.0]


async def test_an_assignment_is_retried_after_throttling_and_applied_once(directory, graph, sleeps):
    graph.fail_next(2, 429, retry_after="0")

    user = await directory.assign_licenses(TENANT, "alex", add=[CREDITS], remove=[])

    assert CREDITS in user.sku_ids
    assert len([s for s in graph.graph_requests() if s.method == "POST"]) == 3
    assert graph.tenants[TENANT].skus[CREDITS].consumed == 2
    assert sleeps == [0.0, 0.0]


async def test_an_outage_that_lasts_is_unavailable(directory, graph, sleeps):
    graph.fail_next(10, 503)

    with pytest.raises(DirectoryError) as down:
        await directory.get_user(TENANT, "alex")

    assert down.value.problem is DirectoryProblem.UNAVAILABLE
    assert len(graph.graph_requests()) == 5  # bounded attempts
    # No Retry-After: exponential back-off with jitter, each wait within its doubling cap.
    assert len(sleeps) == 4
    assert all(0 <= wait <= cap for wait, cap in zip(sleeps, (1, 2, 4, 8), strict=True))


async def test_throttling_that_lasts_is_throttled(directory, graph, sleeps):
    graph.fail_next(5, 429, retry_after="2")

    with pytest.raises(DirectoryError) as throttled:
        await directory.role_template_ids(TENANT, "alex")

    assert throttled.value.problem is DirectoryProblem.THROTTLED
    assert sleeps == [2.0, 2.0, 2.0, 2.0]


async def test_a_wait_longer_than_a_turn_is_not_waited(directory, graph, sleeps):
    graph.fail_next(1, 429, retry_after="3600")

    with pytest.raises(DirectoryError) as throttled:
        await directory.subscribed_skus(TENANT)

    assert throttled.value.problem is DirectoryProblem.THROTTLED
    assert sleeps == [] and len(graph.graph_requests()) == 1


async def test_retry_after_as_an_http_date(directory, graph, sleeps):
    graph.fail_next(1, 503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # in the past

    await directory.subscribed_skus(TENANT)

    assert sleeps == [0.0]


async def test_a_read_that_times_out_is_retried(session, tokens, graph, sleeps):
    directory = _directory(session, tokens, graph, sleeps, timeout=aiohttp.ClientTimeout(0.3))
    graph.hang_next(1, 2.0)

    assert (await directory.get_user(TENANT, "alex")).id == "alex"
    assert len(sleeps) == 1


async def test_an_assignment_that_times_out_is_not_repeated(session, tokens, graph, sleeps):
    # It may have been applied: a blind repeat could fail or double a change.
    directory = _directory(session, tokens, graph, sleeps, timeout=aiohttp.ClientTimeout(0.3))
    graph.hang_next(1, 2.0)

    with pytest.raises(DirectoryError) as unknown:
        await directory.assign_licenses(TENANT, "alex", add=[CREDITS], remove=[])

    assert unknown.value.problem is DirectoryProblem.UNAVAILABLE
    assert len([s for s in graph.graph_requests() if s.method == "POST"]) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [502, 504])
async def test_gateway_errors_are_retried(directory, graph, status):
    graph.fail_next(1, status)

    assert (await directory.get_user(TENANT, "megan")).sku_ids == {E5, CREDITS}


async def test_a_refused_connection_is_unavailable(session, tokens, sleeps, unused_tcp_port):
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    nothing_there = f"https://127.0.0.1:{unused_tcp_port}/v1.0"
    directory = GraphDirectory(session, tokens, graph_base=nothing_there, sleep=sleep)

    with pytest.raises(DirectoryError) as down:
        await directory.get_user(TENANT, "alex")

    assert down.value.problem is DirectoryProblem.UNAVAILABLE
    assert len(sleeps) == 4


# --- tokens -------------------------------------------------------------------------------------


async def test_every_call_carries_its_tenants_token_as_bearer(directory, graph):
    await directory.get_user(TENANT, "alex")
    others = [user async for user in directory.list_users(OTHER_TENANT)]

    assert [user.id for user in others] == ["olga"]  # the fake answers per token's tenant
    for seen in graph.graph_requests():
        assert seen.authorization and seen.authorization.startswith("Bearer ")
    assert [seen.tenant_id for seen in graph.graph_requests()] == [TENANT, OTHER_TENANT]


async def test_a_token_is_asked_for_once_per_tenant(directory, graph):
    await asyncio.gather(*(directory.get_user(TENANT, "alex") for _ in range(10)))
    for _ in range(5):
        await directory.subscribed_skus(TENANT)
        await directory.subscribed_skus(OTHER_TENANT)

    assert graph.token_requests == {TENANT: 1, OTHER_TENANT: 1}
    assert graph.discovery_requests == {TENANT: 1, OTHER_TENANT: 1}
    assert len(graph.graph_requests()) == 20


async def test_a_token_close_to_expiry_is_not_used(directory, graph):
    # MSAL treats a token within five minutes of expiry as expired and asks again.
    graph.token_lifetime = 200

    await directory.get_user(TENANT, "alex")
    await directory.get_user(TENANT, "alex")

    assert graph.token_requests[TENANT] == 2


async def test_the_fake_refuses_a_call_without_a_token(session, graph):
    async with session.get(f"{graph.url}/v1.0/users") as response:
        body = await response.json()

    assert response.status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"


async def test_a_wrong_secret_is_insufficient_privileges(session, graph, tls, sleeps):
    tokens = MsalTokenProvider(
        CLIENT_ID,
        "wrong",
        authority_base=graph.url,
        validate_authority=False,
        ca_bundle=tls.ca_path,
    )
    directory = _directory(session, tokens, graph, sleeps)
    try:
        with pytest.raises(DirectoryError) as refused:
            await directory.get_user(TENANT, "alex")
    finally:
        tokens.close()

    assert refused.value.problem is DirectoryProblem.INSUFFICIENT_PRIVILEGES
    assert graph.graph_requests() == []


async def test_an_unknown_tenant_is_rejected(directory, graph):
    with pytest.raises(DirectoryError) as refused:
        await directory.get_user("no-such-tenant.example", "alex")

    assert refused.value.problem is DirectoryProblem.REJECTED
    assert graph.graph_requests() == []


async def test_a_tenant_id_cannot_change_the_authority(directory, graph):
    with pytest.raises(DirectoryError) as refused:
        await directory.get_user("../common", "alex")

    assert refused.value.problem is DirectoryProblem.REJECTED
    assert graph.requests == []


async def test_no_token_or_secret_is_logged(directory, graph, caplog):
    caplog.set_level(logging.DEBUG)
    graph.fail_next(1, 429, retry_after="0")
    graph.tenants[TENANT].skus[CREDITS].consumed = 3

    await directory.get_user(TENANT, "alex")
    with pytest.raises(DirectoryError):
        await directory.assign_licenses(TENANT, "alex", add=[CREDITS], remove=[])

    issued = {seen.authorization.removeprefix("Bearer ") for seen in graph.graph_requests()}
    assert issued and caplog.records
    for record in caplog.records:
        text = record.getMessage()
        assert SECRET not in text
        assert not any(token in text for token in issued)


async def test_a_next_link_to_another_host_is_not_followed(directory, graph):
    graph.add_user(TENANT, "many", "Many Roles", roles=["a", "b", "c"])
    graph.page_size = 2
    graph.next_link_base = "https://attacker.example"

    with pytest.raises(DirectoryError) as refused:
        await directory.role_template_ids(TENANT, "many")

    assert refused.value.problem is DirectoryProblem.REJECTED
    assert all(seen.url.startswith(graph.url) for seen in graph.requests)


async def test_an_owned_session_is_closed(graph, tokens):
    directory = GraphDirectory(None, tokens, graph_base=f"{graph.url}/v1.0")
    await directory.close()
    assert directory._session.closed


# --- what Graph's errors mean -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "message", "problem"),
    [
        # Messages as Graph sends them (seen in public issue threads and client code).
        (
            400,
            "Request_BadRequest",
            "License assignment cannot be done for user with invalid usage location.",
            DirectoryProblem.NO_USAGE_LOCATION,
        ),
        (
            400,
            "Request_BadRequest",
            "Subscription with SKU 47794cd0-f0e5-45c5-9033-2eb6b5fc84e0 does not have any "
            "available licenses.",
            DirectoryProblem.NO_SEATS,
        ),
        (400, "CountViolation", "", DirectoryProblem.NO_SEATS),
        (
            404,
            "Request_ResourceNotFound",
            "Resource 'x' does not exist or one of its queried reference-property objects are "
            "not present.",
            DirectoryProblem.USER_NOT_FOUND,
        ),
        (
            400,
            "Request_BadRequest",
            "Invalid object identifier '00000000-0000-0000-0000-0000'.",
            DirectoryProblem.USER_NOT_FOUND,
        ),
        (
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
            DirectoryProblem.INSUFFICIENT_PRIVILEGES,
        ),
        (
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
            DirectoryProblem.INSUFFICIENT_PRIVILEGES,
        ),
        # The code decides before the message does.
        (
            403,
            "Authorization_RequestDenied",
            "… invalid usage location …",
            DirectoryProblem.INSUFFICIENT_PRIVILEGES,
        ),
        (
            400,
            "ProhibitedInUsageLocationViolation",
            "not available in the usage location",
            DirectoryProblem.REJECTED,
        ),
        # Neither known: the status decides.
        (404, "", "", DirectoryProblem.USER_NOT_FOUND),
        (500, "UnknownError", "", DirectoryProblem.UNAVAILABLE),
        (
            400,
            "Request_BadRequest",
            "User does not have a corresponding license.",
            DirectoryProblem.REJECTED,
        ),
    ],
)
def test_what_graphs_errors_mean(status, code, message, problem):
    assert problem_of(status, code, message) is problem
