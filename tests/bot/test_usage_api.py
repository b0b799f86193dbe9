"""The usage upload endpoint through the real app: per-tenant keys, signatures, idempotency."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bot.usage_api import tenant_key
from tests.support.usage_files import ROWS, SECRET, TENANT, balance, bearer, export


async def test_a_keyed_upload_is_charged_once(api, api_settings):
    body = export(ROWS)
    response = await api.post(f"/api/tenants/{TENANT}/usage", data=body, headers=bearer())
    assert response.status == 200
    report = await response.json()
    expected = sum(int(n) * 100 + 25 + 10 for n in range(1, 6))
    assert (report["rows_read"], report["charged"], report["debited_minor"]) == (6, 5, expected)
    assert report["skipped"] == {"not_communications_credits": 1}
    assert report["balance_after_minor"] == 50_000 - expected == await balance(api_settings)

    again = await (
        await api.post(f"/api/tenants/{TENANT}/usage", data=body, headers=bearer())
    ).json()
    assert (again["charged"], again["already_charged"], again["debited_minor"]) == (0, 5, 0)
    assert await balance(api_settings) == 50_000 - expected


async def test_a_signed_upload_is_accepted(api):
    body = export(ROWS[:1])
    signature = hmac.new(tenant_key(SECRET, TENANT).encode(), body, hashlib.sha256).hexdigest()
    response = await api.post(
        f"/api/tenants/{TENANT}/usage",
        data=body,
        headers={"X-Usage-Signature": f"sha256={signature}"},
    )
    assert response.status == 200 and (await response.json())["charged"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {tenant_key(SECRET, 'another-tenant')}"},
        {"Authorization": f"Bearer {tenant_key('x' * 40, TENANT)}"},
        {"X-Usage-Signature": "sha256=" + "0" * 64},
    ],
)
async def test_wrong_credentials_are_refused_and_nothing_is_charged(api, api_settings, headers):
    response = await api.post(f"/api/tenants/{TENANT}/usage", data=export(ROWS), headers=headers)
    assert response.status == 401
    assert await balance(api_settings) == 50_000


async def test_without_a_secret_the_endpoint_is_disabled(client):
    response = await client.post(f"/api/tenants/{TENANT}/usage", data=b"x", headers=bearer())
    assert response.status == 403


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"UsageId,Charge\r\nabc,1.00\r\n", "missing_columns"),
        (b"\x00\x01\x02\x03binary" * 100, "not_text"),
        (b"", "empty"),
    ],
)
async def test_a_broken_file_is_refused_clearly(api, api_settings, body, problem):
    response = await api.post(f"/api/tenants/{TENANT}/usage", data=body, headers=bearer())
    assert response.status == 400
    assert (await response.json())["error"] == problem
    assert await balance(api_settings) == 50_000
