"""The Graph directory against the fake Microsoft Graph and Entra token endpoint over TLS on
loopback (tests/fakes/graph.py), with the real azure-identity token source. Nothing here leaves
the machine."""

from __future__ import annotations

import asyncio
import json
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
from graph.client import GraphClient
from graph.directory import GraphDirectory, directory_error, problem_of
from graph.errors import GraphError, TokenError
from graph.retries import FOR_A_TURN
from graph.tokens import GraphTokens
from tests.graph.seed import (
    ALEX,
    AUDIO,
    CLIENT_ID,
    CREDITS,
    MEGAN,
    NOBODY,
    NOWHERE,
    OLGA,
    OTHER_TENANT,
    SECRET,
    TENANT,
)


@pytest.fixture
def make_directory(session, tokens, graph, sleep):
    def make(token_source=tokens, **kwargs) -> GraphDirectory:
        kwargs.setdefault("base", f"{graph.url}/v1.0")
        kwargs.setdefault("retries", FOR_A_TURN)
        return GraphDirectory(GraphClient(session, token_source, sleep=sleep, **kwargs))

    return make


@pytest.fixture
def directory(make_directory) -> GraphDirectory:
    return make_directory()


async def problem(call) -> DirectoryProblem:
    with pytest.raises(DirectoryError) as raised:
        await call
    return raised.value.problem


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
    alex = await directory.get_user(TENANT, ALEX)
    nowhere = await directory.get_user(TENANT, NOWHERE)

    assert alex == DirectoryUser(ALEX, "Alex Wilber", "alexw@example.com", "US", frozenset({AUDIO}))
    assert nowhere.usage_location == "" and nowhere.display_name == "Élodie Lefèvre"


async def test_subscribed_skus_carry_seats_and_service_plans(directory):
    skus = {sku.part_number: sku for sku in await directory.subscribed_skus(TENANT)}

    assert skus["MCOPSTNC"].sku_id == CREDITS
    assert (skus["MCOPSTNC"].enabled_units, skus["MCOPSTNC"].consumed_units) == (3, 1)
    assert skus["MCOPSTNC"].free_units == 2
    assert skus["ENTERPRISEPREMIUM"].service_plans == {"MCOEV", "MCOMEETADV", "TEAMS1"}


async def test_roles_are_read_across_pages(directory, graph):
    admin = "ad0000ad-0000-4000-8000-000000000005"
    graph.add_user(TENANT, admin, "Megan", roles=[GLOBAL_ADMINISTRATOR, BILLING_ADMINISTRATOR])
    graph.page_size = 1

    roles = await directory.role_template_ids(TENANT, admin)

    assert roles == {GLOBAL_ADMINISTRATOR, BILLING_ADMINISTRATOR}
    calls = graph.graph_requests(f"/users/{admin}/memberOf/microsoft.graph.directoryRole")
    assert len(calls) == 2 and calls[0].query["$select"] == "roleTemplateId"
    assert await directory.role_template_ids(TENANT, ALEX) == frozenset()


# --- assigning ----------------------------------------------------------------------------------


async def test_assign_license_sends_graphs_body_and_returns_the_user(directory, graph):
    user = await directory.assign_licenses(TENANT, ALEX, add=[CREDITS], remove=[AUDIO])

    (post,) = [seen for seen in graph.graph_requests() if seen.method == "POST"]
    assert post.path == f"/v1.0/users/{ALEX}/assignLicense"
    assert post.body == {
        "addLicenses": [{"skuId": CREDITS, "disabledPlans": []}],
        "removeLicenses": [AUDIO],
    }
    # Graph answered with default properties only: the user was read back.
    assert graph.graph_requests()[-1].path == f"/v1.0/users/{ALEX}"
    assert user.sku_ids == {CREDITS} and user.usage_location == "US"
    assert graph.tenants[TENANT].skus[CREDITS].consumed == 2
    assert graph.tenants[TENANT].skus[AUDIO].consumed == 1


async def test_an_answer_with_licences_is_not_read_back(directory, graph):
    user = {
        "id": ALEX,
        "displayName": "Alex Wilber",
        "userPrincipalName": "alexw@example.com",
        "usageLocation": "US",
        "assignedLicenses": [{"skuId": CREDITS, "disabledPlans": []}],
    }
    graph.answer_next(200, json.dumps(user).encode())

    assigned = await directory.assign_licenses(TENANT, ALEX, add=[CREDITS], remove=[])

    assert assigned.sku_ids == {CREDITS} and len(graph.graph_requests()) == 1


async def test_a_removal_alone_still_sends_both_lists(directory, graph):
    await directory.assign_licenses(TENANT, MEGAN, add=[], remove=[CREDITS])

    (post,) = [seen for seen in graph.graph_requests() if seen.method == "POST"]
    assert post.body == {"addLicenses": [], "removeLicenses": [CREDITS]}


async def test_no_usage_location_is_its_own_problem(directory, graph):
    assigning = directory.assign_licenses(TENANT, NOWHERE, add=[CREDITS], remove=[])

    assert await problem(assigning) is DirectoryProblem.NO_USAGE_LOCATION
    assert graph.tenants[TENANT].skus[CREDITS].consumed == 1


async def test_no_free_seat_is_its_own_problem(directory, graph):
    graph.tenants[TENANT].skus[CREDITS].consumed = 3

    assigning = directory.assign_licenses(TENANT, ALEX, add=[CREDITS], remove=[])

    assert await problem(assigning) is DirectoryProblem.NO_SEATS
    assert graph.tenants[TENANT].users[ALEX].sku_ids == [AUDIO]


async def test_an_unknown_user_is_not_found(directory):
    for call in (
        directory.get_user(TENANT, NOBODY),
        directory.role_template_ids(TENANT, NOBODY),
        directory.assign_licenses(TENANT, NOBODY, add=[CREDITS], remove=[]),
    ):
        assert await problem(call) is DirectoryProblem.USER_NOT_FOUND


@pytest.mark.parametrize(
    "user_id",
    ["..", ".", "../subscribedSkus", "alexw@example.com", ALEX + "/memberOf", ALEX + " ", "", "x"],
)
async def test_only_an_object_id_reaches_graph(directory, graph, user_id):
    """Issue 13: an id of exactly ".." passed `quote` (the client now quotes dots too); every
    user id is an Entra object id (a GUID) before it goes into a URL, or nothing is asked."""
    before = len(graph.requests)
    for call in (
        directory.get_user(TENANT, user_id),
        directory.role_template_ids(TENANT, user_id),
        directory.assign_licenses(TENANT, user_id, add=[CREDITS], remove=[]),
    ):
        assert await problem(call) is DirectoryProblem.USER_NOT_FOUND
    assert len(graph.requests) == before
    assert graph.tenants[TENANT].users[ALEX].sku_ids == [AUDIO]


async def test_missing_permissions_are_insufficient_privileges(directory, graph):
    graph.deny(TENANT, "assignLicense", "memberOf")

    for call in (
        directory.assign_licenses(TENANT, ALEX, add=[CREDITS], remove=[]),
        directory.role_template_ids(TENANT, ALEX),
    ):
        assert await problem(call) is DirectoryProblem.INSUFFICIENT_PRIVILEGES


async def test_another_refusal_is_rejected_not_unavailable(directory):
    # Removing a licence the user does not hold: Graph says 400, and retrying will not help.
    removing = directory.assign_licenses(TENANT, ALEX, add=[], remove=[CREDITS])
    assert await problem(removing) is DirectoryProblem.REJECTED


# --- throttling and outages ---------------------------------------------------------------------


async def test_an_assignment_is_retried_after_throttling_and_applied_once(directory, graph, sleeps):
    graph.fail_next(2, 429, retry_after="0")

    user = await directory.assign_licenses(TENANT, ALEX, add=[CREDITS], remove=[])

    assert CREDITS in user.sku_ids
    assert len([s for s in graph.graph_requests() if s.method == "POST"]) == 3
    assert graph.tenants[TENANT].skus[CREDITS].consumed == 2
    assert sleeps == [0.0, 0.0]


async def test_an_outage_that_lasts_is_unavailable(directory, graph, sleeps):
    graph.fail_next(10, 503)

    assert await problem(directory.get_user(TENANT, ALEX)) is DirectoryProblem.UNAVAILABLE
    assert len(graph.graph_requests()) == 5 and len(sleeps) == 4  # bounded attempts


async def test_throttling_that_lasts_is_throttled(directory, graph, sleeps):
    graph.fail_next(5, 429, retry_after="2")

    roles = directory.role_template_ids(TENANT, ALEX)

    assert await problem(roles) is DirectoryProblem.THROTTLED
    assert sleeps == [2.0, 2.0, 2.0, 2.0]


async def test_a_wait_longer_than_a_turn_is_not_waited(directory, graph, sleeps):
    graph.fail_next(1, 429, retry_after="3600")

    assert await problem(directory.subscribed_skus(TENANT)) is DirectoryProblem.THROTTLED
    assert sleeps == [] and len(graph.graph_requests()) == 1


async def test_a_read_that_times_out_is_retried(make_directory, graph, sleeps):
    directory = make_directory(timeout=aiohttp.ClientTimeout(total=0.3))
    graph.hang_next(1, 2.0)

    assert (await directory.get_user(TENANT, ALEX)).id == ALEX
    assert len(sleeps) == 1


async def test_an_assignment_that_times_out_is_not_repeated(make_directory, graph, sleeps):
    # It may have been applied: a blind repeat could fail or double a change.
    directory = make_directory(timeout=aiohttp.ClientTimeout(total=0.3))
    graph.hang_next(1, 2.0)

    assigning = directory.assign_licenses(TENANT, ALEX, add=[CREDITS], remove=[])

    assert await problem(assigning) is DirectoryProblem.UNAVAILABLE
    assert len([s for s in graph.graph_requests() if s.method == "POST"]) == 1
    assert sleeps == []


async def test_a_refused_connection_is_unavailable(make_directory, sleeps, unused_tcp_port):
    directory = make_directory(base=f"https://127.0.0.1:{unused_tcp_port}/v1.0")

    assert await problem(directory.get_user(TENANT, ALEX)) is DirectoryProblem.UNAVAILABLE
    assert len(sleeps) == 4


async def test_an_answer_that_is_not_json_is_unavailable(directory, graph):
    graph.answer_next(200, b"<html>maintenance</html>")

    assert await problem(directory.get_user(TENANT, ALEX)) is DirectoryProblem.UNAVAILABLE


async def test_a_next_link_to_another_host_is_rejected(directory, graph):
    many = "3a393a39-0000-4000-8000-000000000006"
    graph.add_user(TENANT, many, "Many Roles", roles=["a", "b", "c"])
    graph.page_size = 2
    graph.next_link_base = "https://attacker.example"

    assert await problem(directory.role_template_ids(TENANT, many)) is (DirectoryProblem.REJECTED)
    assert all(seen.url.startswith(graph.url) for seen in graph.requests)


# --- tokens -------------------------------------------------------------------------------------


async def test_every_call_carries_its_tenants_token_as_bearer(directory, graph):
    await directory.get_user(TENANT, ALEX)
    others = [user async for user in directory.list_users(OTHER_TENANT)]

    assert [user.id for user in others] == [OLGA]  # the fake answers per token's tenant
    for seen in graph.graph_requests():
        assert seen.authorization and seen.authorization.startswith("Bearer ")
    assert [seen.tenant_id for seen in graph.graph_requests()] == [TENANT, OTHER_TENANT]


async def test_a_token_is_asked_for_once_per_tenant(directory, graph):
    await asyncio.gather(*(directory.get_user(TENANT, ALEX) for _ in range(10)))
    for _ in range(5):
        await directory.subscribed_skus(TENANT)
        await directory.subscribed_skus(OTHER_TENANT)

    assert graph.token_requests == {TENANT: 1, OTHER_TENANT: 1}
    assert len(graph.graph_requests()) == 20


async def test_the_fake_refuses_a_call_without_a_token(session, graph):
    async with session.get(f"{graph.url}/v1.0/users") as response:
        body = await response.json()

    assert response.status == 401
    assert body["error"]["code"] == "InvalidAuthenticationToken"


async def test_a_wrong_secret_is_insufficient_privileges(make_directory, session, graph):
    tokens = GraphTokens(CLIENT_ID, "wrong", session, authority=graph.url)
    try:
        reading = make_directory(tokens).get_user(TENANT, ALEX)
        assert await problem(reading) is DirectoryProblem.INSUFFICIENT_PRIVILEGES
    finally:
        await tokens.close()

    assert graph.graph_requests() == []


async def test_an_unknown_tenant_is_rejected(directory, graph):
    reading = directory.get_user("no-such-tenant.example", ALEX)

    assert await problem(reading) is DirectoryProblem.REJECTED
    assert graph.graph_requests() == []


async def test_a_tenant_id_cannot_change_the_authority(directory, graph):
    assert await problem(directory.get_user("../common", ALEX)) is DirectoryProblem.REJECTED
    assert graph.requests == []


async def test_an_authority_that_fails_passingly_is_unavailable(directory, graph):
    graph.fail_token_next(1, 503, "temporarily_unavailable")

    assert await problem(directory.get_user(TENANT, ALEX)) is DirectoryProblem.UNAVAILABLE
    assert graph.graph_requests() == []


async def test_no_token_or_secret_is_logged(directory, graph, caplog):
    caplog.set_level(logging.DEBUG)
    graph.fail_next(1, 429, retry_after="0")
    graph.tenants[TENANT].skus[CREDITS].consumed = 3

    await directory.get_user(TENANT, ALEX)
    with pytest.raises(DirectoryError):
        await directory.assign_licenses(TENANT, ALEX, add=[CREDITS], remove=[])

    issued = {seen.authorization.removeprefix("Bearer ") for seen in graph.graph_requests()}
    assert issued and caplog.records
    for record in caplog.records:
        text = record.getMessage()
        assert SECRET not in text
        assert not any(token in text for token in issued)


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


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (GraphError(429, "gave_up", "", transient=True), DirectoryProblem.THROTTLED),
        (GraphError(503, "gave_up", "", transient=True), DirectoryProblem.UNAVAILABLE),
        (GraphError(None, "", "dropped", transient=True), DirectoryProblem.UNAVAILABLE),
        (GraphError(200, "too_large", ""), DirectoryProblem.UNAVAILABLE),
        (GraphError(200, "bad_next_link", ""), DirectoryProblem.REJECTED),
        (GraphError(302, "", ""), DirectoryProblem.REJECTED),
        (TokenError(401, "invalid_client", ""), DirectoryProblem.INSUFFICIENT_PRIVILEGES),
        (TokenError(400, "unauthorized_client", ""), DirectoryProblem.INSUFFICIENT_PRIVILEGES),
        (TokenError(400, "invalid_request", "AADSTS90002"), DirectoryProblem.REJECTED),
        (TokenError(None, "not_a_tenant_id", ""), DirectoryProblem.REJECTED),
        (TokenError(None, "unreachable", "", transient=True), DirectoryProblem.UNAVAILABLE),
    ],
)  # fmt: skip
def test_what_the_clients_errors_mean(error, problem):
    assert directory_error(error).problem is problem
