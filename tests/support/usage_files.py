"""Small PSTN usage exports for the app tests, and the usage API's key for a tenant."""

from __future__ import annotations

import csv
import io
import uuid

from bot.usage_api import tenant_key
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.support import activities

SECRET = "usage-api-test-secret-0123456789-abcdefXYZ"
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
