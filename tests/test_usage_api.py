"""The usage upload endpoint through the real app: per-tenant keys, signatures, idempotency."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import uuid

import pytest

from app import create_app
from bot.settings import Settings
from bot.usage_api import tenant_key
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests import activities

SECRET = "s" * 40
TENANT = activities.TENANT
COLUMNS = [
    "UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
    "User Display Name", "Caller ID", "Call Type", "Number Type", "Domestic/International",
    "Destination Dialed", "Destination Number", "Start Time", "End Time", "Duration Seconds",
    "Connection Fee", "Charge", "Currency", "Capability",
]  # fmt: skip


def export(rows: list[tuple[str, str, str, str]]) -> bytes:
    """A PSTN usage export: (UsageId, charge, connection fee, capability) per row, in USD."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for usage_id, charge, fee, capability in rows:
        writer.writerow([
            usage_id, "call-1", "", "US", str(uuid.uuid4()), "zhang.wei@contoso.example",
            "Zhang, Wei (张伟)", "+14255550100", "user_out", "toll", "International",
            "France", "+33123***", "2026-11-01T10:00:00Z", "2026-11-01T10:05:00Z", "300",
            fee, charge, "USD", capability,
        ])  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


ROWS = [(str(uuid.uuid4()), f"{n}.25", "0.10", "MCOPSTNPP") for n in range(1, 6)]
ROWS += [(str(uuid.uuid4()), "9.99", "0.00", "MCOPSTN1")]  # a Calling Plan call: not charged


@pytest.fixture
def api_settings(settings):
    return Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
            "TABLE_PREFIX": settings.table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "USAGE_API_SECRET": SECRET,
        }
    )


@pytest.fixture
async def api(aiohttp_client, api_settings, connector):
    client = await aiohttp_client(create_app(api_settings))
    # The tenant's account exists and is funded (the demo card) through the chat.
    await client.post("/api/messages", json=activities.message(connector.url, "add funds 500"))
    place = next(
        a["data"]
        for block in connector.cards()[-1]["body"]
        if block.get("type") == "ActionSet"
        for a in block["actions"]
        if a["data"].get("action") == "place"
    )
    await client.post("/api/messages", json=activities.message(connector.url, value=place))
    return client


async def balance(settings) -> int:
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    try:
        repo = TableCreditsRepository(store.table(store.names.credits))
        return (await repo.get_account(TENANT)).value.balance_minor
    finally:
        await store.close()


def bearer(tenant: str = TENANT) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant_key(SECRET, tenant)}"}


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
