"""The Graph client's one retry loop, paging and answer handling, against the fake Graph on
loopback (tests/fakes/graph.py, standing for Microsoft Graph v1.0) with the fake's own tokens.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from decimal import Decimal

import aiohttp
import pytest

from graph.client import GraphClient
from graph.errors import BAD_NEXT_LINK, GAVE_UP, NOT_JSON, TOO_LARGE, GraphError
from graph.retries import FOR_A_TURN, IN_THE_BACKGROUND, Retries
from tests.graph.seed import ALEX, AUDIO, CREDITS, E5, OLGA, OTHER_TENANT, TENANT


@pytest.fixture
def make_client(session, issued, graph, sleep):
    def make(**kwargs) -> GraphClient:
        kwargs.setdefault("base", f"{graph.url}/v1.0")
        return GraphClient(session, issued, sleep=sleep, **kwargs)

    return make


@pytest.fixture
def client(make_client) -> GraphClient:
    return make_client()


async def skus(client: GraphClient, tenant: str = TENANT) -> set[str]:
    pages = client.pages(tenant, client.url("subscribedSkus"))
    return {item["skuId"] async for page in pages for item in page["value"]}


# --- paging -------------------------------------------------------------------------------------


async def test_pages_follow_next_links_to_the_last_page(client, graph):
    graph.add_users(TENANT, 250)
    graph.page_size = 100

    pages = [page async for page in client.pages(TENANT, client.url("users"), {"$top": "100"})]

    assert [len(page["value"]) for page in pages] == [100, 100, 53]
    assert "@odata.nextLink" not in pages[-1]
    seen = graph.graph_requests("/users")
    # The first request carries the query; the later ones are the next links as given.
    assert seen[0].query == {"$top": "100"} and "$skiptoken" not in seen[0].query
    assert all("$skiptoken" in page.query for page in seen[1:])


async def test_a_next_link_to_another_origin_is_not_followed(client, graph):
    graph.add_users(TENANT, 5)
    graph.page_size = 2
    graph.next_link_base = "https://attacker.example"

    with pytest.raises(GraphError) as refused:
        _ = [page async for page in client.pages(TENANT, client.url("users"))]

    assert refused.value.code == BAD_NEXT_LINK and not refused.value.transient
    assert len(graph.requests) == 1
    assert all(seen.url.startswith(graph.url) for seen in graph.requests)


@pytest.mark.parametrize("link", ["/v1.0/users?$skiptoken=1", "", 42])
async def test_a_next_link_that_is_not_an_absolute_graph_url_is_refused(client, graph, link):
    body = json.dumps({"value": [], "@odata.nextLink": link}).encode()
    graph.answer_next(200, body, {"Content-Type": "application/json"})

    with pytest.raises(GraphError) as refused:
        _ = [page async for page in client.pages(TENANT, client.url("users"))]

    assert refused.value.code == BAD_NEXT_LINK
    assert len(graph.requests) == 1


# --- throttling and outages ---------------------------------------------------------------------


async def test_throttling_is_retried_after_the_time_graph_asks(client, graph, sleeps, issued):
    graph.fail_next(1, 429, retry_after="1")

    assert await skus(client) == {CREDITS, AUDIO, E5}

    assert len(graph.graph_requests("/subscribedSkus")) == 2
    assert sleeps == [1.0]
    # The token is asked for on every attempt: a long wait may outlast it.
    assert issued.asked == [TENANT, TENANT]


async def test_each_wait_is_the_one_graph_asked_for(client, graph, sleeps):
    graph.fail_next(1, 429, retry_after="7")
    graph.fail_next(1, 503, retry_after="2")

    await skus(client)

    assert sleeps == [7.0, 2.0] and len(graph.requests) == 3


async def test_retry_after_as_an_http_date(client, graph, sleeps):
    graph.fail_next(1, 503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # in the past

    await skus(client)

    assert sleeps == [0.0]


@pytest.mark.parametrize("status", [502, 504])
async def test_gateway_errors_are_retried(client, graph, status):
    graph.fail_next(1, status)

    assert await skus(client) == {CREDITS, AUDIO, E5}
    assert len(graph.requests) == 2


async def test_an_outage_that_lasts_gives_up_after_bounded_attempts(client, graph, sleeps):
    graph.fail_next(10, 503)

    with pytest.raises(GraphError) as down:
        await client.get(TENANT, client.url("users", ALEX))

    assert (down.value.status, down.value.code, down.value.transient) == (503, GAVE_UP, True)
    assert len(graph.graph_requests()) == 5
    # No Retry-After: exponential back-off with full jitter, each wait within its doubling cap.
    assert len(sleeps) == 4
    assert all(0 <= wait <= cap for wait, cap in zip(sleeps, (1, 2, 4, 8), strict=True))


async def test_the_number_of_attempts_is_a_parameter(make_client, graph, sleeps):
    client = make_client(retries=dataclasses.replace(IN_THE_BACKGROUND, attempts=3))
    graph.fail_next(10, 503)

    with pytest.raises(GraphError):
        await skus(client)

    assert len(graph.requests) == 3 and len(sleeps) == 2


async def test_throttling_that_lasts_is_reported_as_throttling(client, graph, sleeps):
    graph.fail_next(5, 429, retry_after="2")

    with pytest.raises(GraphError) as throttled:
        await skus(client)

    assert throttled.value.throttled and throttled.value.transient
    assert sleeps == [2.0, 2.0, 2.0, 2.0]


async def test_for_a_turn_a_long_wait_is_not_waited(make_client, graph, sleeps):
    client = make_client(retries=FOR_A_TURN)
    graph.fail_next(1, 429, retry_after="3600")

    with pytest.raises(GraphError) as throttled:
        await skus(client)

    assert throttled.value.throttled and throttled.value.code == GAVE_UP
    assert sleeps == [] and len(graph.requests) == 1


async def test_in_the_background_a_long_wait_is_capped_and_waited(make_client, graph, sleeps):
    client = make_client(retries=IN_THE_BACKGROUND)
    graph.fail_next(1, 429, retry_after="3600")
    graph.fail_next(1, 429, retry_after="90")

    assert await skus(client) == {CREDITS, AUDIO, E5}

    assert sleeps == [120.0, 90.0]


def test_the_two_callers_differ_only_in_what_a_long_wait_means():
    assert dataclasses.replace(FOR_A_TURN, longest_wait=0, cap_long_waits=False) == (
        dataclasses.replace(IN_THE_BACKGROUND, longest_wait=0, cap_long_waits=False)
    )
    assert Retries(longest_wait=60).delay(1, "61") is None
    assert Retries(longest_wait=60, cap_long_waits=True).delay(1, "61") == 60
    assert Retries(attempts=2).delay(2, "1") is None


async def test_a_refusal_is_not_retried(client, graph, sleeps):
    graph.deny(TENANT, "users")

    with pytest.raises(GraphError) as refused:
        await client.get(TENANT, client.url("users", ALEX))

    error = refused.value
    assert (error.status, error.code, error.transient) == (
        403,
        "Authorization_RequestDenied",
        False,
    )
    assert "Insufficient privileges" in error.message
    assert len(graph.requests) == 1 and sleeps == []


async def test_a_read_that_times_out_is_retried(make_client, graph, sleeps):
    client = make_client(timeout=aiohttp.ClientTimeout(total=0.3))
    graph.hang_next(1, 2.0)

    assert (await client.get(TENANT, client.url("users", ALEX)))["id"] == ALEX
    assert len(sleeps) == 1 and len(graph.requests) == 2


async def test_a_post_that_times_out_is_not_repeated(make_client, graph, sleeps):
    # It may have been applied: a blind repeat could fail or double a change.
    client = make_client(timeout=aiohttp.ClientTimeout(total=0.3))
    graph.hang_next(1, 2.0)
    body = {"addLicenses": [{"skuId": CREDITS, "disabledPlans": []}], "removeLicenses": []}

    with pytest.raises(GraphError) as unknown:
        await client.post(TENANT, client.url("users", ALEX, "assignLicense"), body)

    assert unknown.value.transient and unknown.value.status is None
    assert len([s for s in graph.graph_requests() if s.method == "POST"]) == 1
    assert sleeps == []


async def test_a_post_throttled_is_retried(client, graph, sleeps):
    # A 429 is an answer: Graph did not apply the change, so it is asked again.
    graph.fail_next(2, 429, retry_after="0")
    body = {"addLicenses": [{"skuId": CREDITS, "disabledPlans": []}], "removeLicenses": []}

    await client.post(TENANT, client.url("users", ALEX, "assignLicense"), body)

    assert len([s for s in graph.graph_requests() if s.method == "POST"]) == 3
    assert graph.tenants[TENANT].skus[CREDITS].consumed == 2 and sleeps == [0.0, 0.0]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_refused_connection_is_retried_whatever_the_method(
    session, issued, sleep, sleeps, unused_tcp_port, method
):
    # Nothing listens: the request never left, so even a POST is safe to repeat.
    client = GraphClient(
        session, issued, base=f"https://127.0.0.1:{unused_tcp_port}/v1.0", sleep=sleep
    )

    with pytest.raises(GraphError) as down:
        if method == "GET":
            await client.get(TENANT, client.url("users", ALEX))
        else:
            await client.post(TENANT, client.url("users", ALEX, "assignLicense"), {})

    assert down.value.transient and down.value.status is None
    assert len(sleeps) == 4


async def test_a_redirect_is_not_followed(client, graph):
    graph.answer_next(302, b"", {"Location": f"{graph.url}/v1.0/subscribedSkus"})

    with pytest.raises(GraphError) as refused:
        await client.get(TENANT, client.url("users", ALEX))

    assert refused.value.status == 302 and not refused.value.transient
    assert len(graph.requests) == 1


# --- bodies -------------------------------------------------------------------------------------


async def test_a_body_past_the_bound_is_refused_not_held(make_client, graph):
    client = make_client(max_body_bytes=10_000)
    graph.add_users(TENANT, 300)

    with pytest.raises(GraphError) as refused:
        await client.get(TENANT, client.url("users"), {"$top": "300"})

    assert (refused.value.status, refused.value.code) == (200, TOO_LARGE)
    assert len(graph.requests) == 1
    # The same answer within the bound is read.
    body = await make_client(max_body_bytes=1 << 20).get(TENANT, client.url("users"))
    assert len(body["value"]) == 100


async def test_numbers_with_a_fraction_are_decimals(client, graph):
    graph.answer_next(200, b'{"value": [{"charge": 0.1, "connectionCharge": 0.20, "n": 3}]}')

    (item,) = (await client.get(TENANT, client.url("users")))["value"]

    assert item["charge"] == Decimal("0.1") and isinstance(item["charge"], Decimal)
    assert str(item["connectionCharge"]) == "0.20"
    assert item["n"] == 3 and isinstance(item["n"], int)


@pytest.mark.parametrize(
    "body",
    [b'{"value": [{"charge": NaN}]}', b'{"charge": -Infinity}', b"[1]", b"\xff\xfe{", b"<html>"],
)
async def test_a_success_that_is_not_a_json_object_is_refused(client, graph, body):
    graph.answer_next(200, body)

    with pytest.raises(GraphError) as refused:
        await client.get(TENANT, client.url("users"))

    assert (refused.value.status, refused.value.code) == (200, NOT_JSON)


async def test_an_empty_success_is_an_empty_object(client, graph):
    graph.answer_next(204, b"")

    assert await client.get(TENANT, client.url("users", ALEX)) == {}


async def test_an_error_that_is_not_json_keeps_its_text(client, graph):
    graph.answer_next(400, b"<html>Bad Request</html>")

    with pytest.raises(GraphError) as refused:
        await client.get(TENANT, client.url("users", ALEX))

    assert (refused.value.code, refused.value.message) == ("", "<html>Bad Request</html>")


# --- URLs, tokens and logs ----------------------------------------------------------------------


async def test_an_id_cannot_change_the_path(client, graph):
    for user_id in ("../subscribedSkus", "..", "."):
        with pytest.raises(GraphError) as missing:
            await client.get(TENANT, client.url("users", user_id))
        assert missing.value.status == 404

    raw = [seen.url.removeprefix(graph.url) for seen in graph.requests]
    assert raw == ["/v1.0/users/..%2FsubscribedSkus", "/v1.0/users/%2E%2E", "/v1.0/users/%2E"]


async def test_every_call_carries_its_tenants_token(client, graph):
    await client.get(TENANT, client.url("users", ALEX))
    others = await client.get(OTHER_TENANT, client.url("users"))

    assert [user["id"] for user in others["value"]] == [OLGA]  # the fake answers per token
    assert [seen.tenant_id for seen in graph.graph_requests()] == [TENANT, OTHER_TENANT]


async def test_no_token_is_logged(client, graph, caplog):
    caplog.set_level(logging.DEBUG)
    graph.fail_next(1, 429, retry_after="0")
    graph.deny(TENANT, "users")

    with pytest.raises(GraphError):
        await client.get(TENANT, client.url("users", ALEX))

    issued = {seen.authorization.removeprefix("Bearer ") for seen in graph.graph_requests()}
    assert issued and len(caplog.records) >= 2
    for record in caplog.records:
        assert not any(token in record.getMessage() for token in issued)


async def test_an_owned_session_is_closed_and_a_shared_one_left_open(session, issued, graph):
    owned = GraphClient(None, issued, base=f"{graph.url}/v1.0")
    shared = GraphClient(session, issued, base=f"{graph.url}/v1.0")

    await owned.close()
    await shared.close()

    assert owned.closed and not session.closed
