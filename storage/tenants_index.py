"""The tenants index: one row per tenant with an account, in a table of its own.

The background jobs and the 30-second alert sweep visit every tenant. Finding them with a
query across every partition of the Credits table (`RowKey eq 'account'`) makes the service
scan every entity of every tenant each time; the index is one partition to read instead.

A tenant's row is written before its account is created (idempotently, so a retry or a race
writes it again harmlessly): every account is indexed. Accounts created before the index
existed, or by an instance of an older version during a rolling upgrade, are found by a scan
of the accounts that runs when the index has never been filled, and again at most once a day.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from storage.keys import escape_key

logger = logging.getLogger(__name__)

TENANTS = "tenant"
"""The one partition of the index rows."""
META = "index"
BACKFILL = "backfill"
BACKFILL_EVERY = timedelta(days=1)
BATCH = 100


class TableTenantsIndex:
    def __init__(
        self, table: TableClient, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._table = table
        self._clock = clock
        self._lock = asyncio.Lock()

    async def add(self, tenant_id: str) -> None:
        await self._table.upsert_entity(_row(tenant_id), mode=UpdateMode.REPLACE)

    async def tenants(self, scan: Callable[[], Awaitable[list[str]]]) -> list[str]:
        """Every indexed tenant, after adding what `scan` (every account) finds when the index
        was never filled or was last reconciled more than a day ago."""
        async with self._lock:  # the jobs of one instance would otherwise all scan at once
            if await self._backfill_due():
                await self._backfill(await scan())
        query = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": TENANTS}, select=["TenantId"]
        )
        return [entity["TenantId"] async for entity in query]

    async def _backfill_due(self) -> bool:
        try:
            marker = await self._table.get_entity(META, BACKFILL)
        except ResourceNotFoundError:
            return True
        return marker["At"] <= self._clock() - BACKFILL_EVERY

    async def _backfill(self, tenant_ids: list[str]) -> None:
        for start in range(0, len(tenant_ids), BATCH):
            chunk = tenant_ids[start : start + BATCH]
            await self._table.submit_transaction(
                [("upsert", _row(tenant), {"mode": UpdateMode.REPLACE}) for tenant in chunk]
            )
        await self._table.upsert_entity(
            {"PartitionKey": META, "RowKey": BACKFILL, "At": self._clock()},
            mode=UpdateMode.REPLACE,
        )
        logger.info("tenants index reconciled with %d accounts", len(tenant_ids))


def _row(tenant_id: str) -> dict[str, str]:
    return {"PartitionKey": TENANTS, "RowKey": escape_key(tenant_id), "TenantId": tenant_id}
