"""App-only tokens from azure-identity's ClientSecretCredential, for real, against the fake
Entra token endpoint (tests/fakes/graph.py) over TLS on loopback: azure-identity accepts only
https authorities, and trusts the fake's throwaway CA through the session it is given."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from graph.errors import TokenError
from graph.tokens import GraphTokens
from tests.graph.seed import ALEX, CLIENT_ID, MEGAN, NOWHERE, OLGA, OTHER_TENANT, SECRET, TENANT


async def test_a_token_per_tenant_through_client_credentials(tokens, graph, session):
    first = await tokens.token(TENANT)
    other = await tokens.token(OTHER_TENANT)

    # Graph sees each tenant's own users with each token.
    users = {}
    for token in (first, other):
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(f"{graph.url}/v1.0/users", headers=headers) as response:
            users[token] = {user["id"] for user in (await response.json())["value"]}
    assert users == {first: {ALEX, MEGAN, NOWHERE}, other: {OLGA}}
    assert graph.token_requests == {TENANT: 1, OTHER_TENANT: 1}
    (seen,) = [s for s in graph.requests if s.path == f"/{TENANT}/oauth2/v2.0/token"]
    assert seen.method == "POST" and seen.authorization is None


async def test_a_token_is_asked_for_once_per_tenant_even_in_a_burst(tokens, graph):
    burst = await asyncio.gather(*(tokens.token(TENANT) for _ in range(10)))
    for _ in range(5):
        await tokens.token(TENANT)
        await tokens.token(OTHER_TENANT)

    assert len(set(burst)) == 1
    assert graph.token_requests == {TENANT: 1, OTHER_TENANT: 1}


async def test_an_expired_token_is_not_used(tokens, graph):
    graph.token_lifetime = 1

    first = await tokens.token(TENANT)
    await asyncio.sleep(1.05)
    second = await tokens.token(TENANT)

    assert first != second and graph.token_requests[TENANT] == 2


async def test_credentials_are_kept_for_the_most_recent_tenants_only(graph, session):
    tokens = GraphTokens(CLIENT_ID, SECRET, session, authority=graph.url, max_tenants=1)
    graph.tenant("third.example")
    try:
        await tokens.token(TENANT)
        await tokens.token(TENANT)
        await tokens.token(OTHER_TENANT)  # evicts TENANT's credential and its cached token
        await tokens.token(TENANT)
    finally:
        await tokens.close()

    assert graph.token_requests == {TENANT: 2, OTHER_TENANT: 1}


@pytest.mark.parametrize(
    ("client_id", "secret", "code", "status"),
    [
        (CLIENT_ID, "wrong", "invalid_client", 401),
        ("99999999-0000-0000-0000-000000000000", SECRET, "unauthorized_client", 400),
    ],
)
async def test_a_refused_app_is_refused_not_passing(
    graph, session, client_id, secret, code, status
):
    tokens = GraphTokens(client_id, secret, session, authority=graph.url)
    try:
        with pytest.raises(TokenError) as refused:
            await tokens.token(TENANT)
    finally:
        await tokens.close()

    assert (refused.value.status, refused.value.code) == (status, code)
    assert not refused.value.transient and refused.value.message.startswith("AADSTS")


async def test_an_unknown_tenant_is_refused(tokens, graph):
    with pytest.raises(TokenError) as refused:
        await tokens.token("no-such-tenant.example")

    assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    assert "AADSTS90002" in refused.value.message and not refused.value.transient


@pytest.mark.parametrize("tenant_id", ["../common", "tenant\n", "", ".hidden", "a/b", "x" * 300])
async def test_a_tenant_id_cannot_change_the_authority(tokens, graph, tenant_id):
    with pytest.raises(TokenError) as refused:
        await tokens.token(tenant_id)

    assert refused.value.code == "not_a_tenant_id"
    assert graph.requests == []


async def test_a_passing_refusal_is_transient_and_not_waited(tokens, graph):
    # azure-core would sleep on Entra's Retry-After (however long) and ask again; a chat turn
    # must not wait on it, so answers are not retried there.
    graph.fail_token_next(1, 503, "temporarily_unavailable", retry_after="1")

    with pytest.raises(TokenError) as passing:
        await tokens.token(TENANT)

    assert passing.value.transient and passing.value.code == "temporarily_unavailable"
    assert graph.token_requests[TENANT] == 1
    assert await tokens.token(TENANT)  # the next call asks again, and gets one


async def test_an_unreachable_authority_is_transient(session, unused_tcp_port):
    tokens = GraphTokens(
        CLIENT_ID, SECRET, session, authority=f"https://127.0.0.1:{unused_tcp_port}"
    )
    try:
        with pytest.raises(TokenError) as down:
            await tokens.token(TENANT)
    finally:
        await tokens.close()

    assert (down.value.status, down.value.code, down.value.transient) == (None, "unreachable", True)


async def test_an_authority_with_an_untrusted_certificate_is_not_trusted(graph):
    # The session decides what to trust: without the fake's CA, the fake is a stranger.
    async with aiohttp.ClientSession() as untrusting:
        tokens = GraphTokens(CLIENT_ID, SECRET, untrusting, authority=graph.url)
        try:
            with pytest.raises(TokenError) as refused:
                await tokens.token(TENANT)
        finally:
            await tokens.close()

    assert refused.value.code == "unreachable"
    assert graph.token_requests == {}


async def test_only_an_https_authority_is_accepted(session):
    with pytest.raises(ValueError, match="https"):
        GraphTokens(CLIENT_ID, SECRET, session, authority="http://127.0.0.1:1")


async def test_no_secret_or_token_is_logged(graph, session, caplog):
    caplog.set_level(logging.DEBUG)
    tokens = GraphTokens(CLIENT_ID, SECRET, session, authority=graph.url)
    wrong = GraphTokens(CLIENT_ID, "wrong-secret-also-not-logged", session, authority=graph.url)
    try:
        token = await tokens.token(TENANT)
        with pytest.raises(TokenError):
            await wrong.token(TENANT)
    finally:
        await tokens.close()
        await wrong.close()

    assert caplog.records  # azure-core's request logs and our refusal are there
    for record in caplog.records:
        text = record.getMessage() + " ".join(map(str, record.args or ()))
        assert SECRET not in text and "wrong-secret-also-not-logged" not in text
        assert token not in text


async def test_close_leaves_the_shared_session_open(graph, session):
    tokens = GraphTokens(CLIENT_ID, SECRET, session, authority=graph.url)
    await tokens.token(TENANT)

    await tokens.close()

    assert not session.closed
    again = GraphTokens(CLIENT_ID, SECRET, session, authority=graph.url)
    assert await again.token(TENANT)
    await again.close()
