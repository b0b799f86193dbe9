"""Leases in Azure Tables: at most one instance runs a background job at a time.

A lease is an entity holding its owner and expiry; taking it is an insert (none yet) or an
ETag-guarded replace (expired, or already ours), so two instances can never both succeed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

PARTITION = "lease"


class TableLeases:
    def __init__(
        self, table: TableClient, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._table = table
        self._clock = clock

    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        now = self._clock()
        entity = {
            "PartitionKey": PARTITION,
            "RowKey": name,
            "Owner": owner,
            "ExpiresAt": now + ttl,
        }
        try:
            current = await self._table.get_entity(PARTITION, name)
        except ResourceNotFoundError:
            try:
                await self._table.create_entity(entity)
                return True
            except ResourceExistsError:
                return False  # another instance took it a moment ago
        if current["Owner"] != owner and current["ExpiresAt"] > now:
            return False
        try:
            await self._table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False
        return True

    async def release(self, name: str, owner: str) -> None:
        try:
            current = await self._table.get_entity(PARTITION, name)
        except ResourceNotFoundError:
            return
        if current["Owner"] != owner:
            return
        try:
            await self._table.delete_entity(
                PARTITION,
                name,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # taken over or gone: either way it is no longer ours to release
