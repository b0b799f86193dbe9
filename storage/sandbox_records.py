"""The sandbox gateway's records (tokens and charges) on Azure Tables.

One partition per tenant, one row per record key ("token:…", "charge:…"), the record as JSON text
in one property. Inserts never overwrite: `create_entity` fails with 409 when the row exists,
which is how the sandbox detects a second charge with the same idempotency key, even from
another process.
"""

from __future__ import annotations

import json

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from storage.keys import escape_key

RECORD = "Record"


class TableSandboxRecords:
    """`storage.sandbox_gateway.SandboxRecords` on one Azure Table."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def get(self, tenant_id: str, key: str) -> dict | None:
        try:
            entity = await self._table.get_entity(escape_key(tenant_id), escape_key(key))
        except ResourceNotFoundError:
            return None
        return json.loads(entity[RECORD])

    async def insert(self, tenant_id: str, key: str, record: dict) -> bool:
        entity = {
            "PartitionKey": escape_key(tenant_id),
            "RowKey": escape_key(key),
            RECORD: json.dumps(record, separators=(",", ":"), sort_keys=True),
        }
        try:
            await self._table.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    async def list(self, tenant_id: str, prefix: str) -> list[dict]:
        # A RowKey range rather than a client-side filter: only the prefix's rows travel.
        # Escaping works character by character, so an escaped prefix (shorter than the point
        # where escape_key cuts long keys) is a prefix of every escaped key that starts with it.
        low = escape_key(prefix)
        query = "PartitionKey eq @pk and RowKey ge @low"
        parameters = {"pk": escape_key(tenant_id), "low": low}
        if low:
            query += " and RowKey lt @high"
            parameters["high"] = low[:-1] + chr(ord(low[-1]) + 1)
        return [
            json.loads(entity[RECORD])
            async for entity in self._table.query_entities(query, parameters=parameters)
        ]
