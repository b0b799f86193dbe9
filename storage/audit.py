"""The audit log: who did what to which users, and with what result. Append-only.

One partition per tenant; row keys count down from a ceiling of the time, so the newest entry
comes first in a plain query.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

from azure.data.tables.aio import TableClient

from credits.licence_service import UserResult
from storage.keys import escape_key

_CEILING_US = 10**17


class AuditLog:
    def __init__(self, table: TableClient, clock: Callable[[], datetime] | None = None) -> None:
        self._table = table
        self._clock = clock or (lambda: datetime.now(UTC))

    async def write_licence_change(
        self, tenant_id: str, actor: str, action: str, results: list[UserResult]
    ) -> None:
        now = self._clock()
        micros = int(now.timestamp() * 1_000_000)
        await self._table.create_entity(
            {
                "PartitionKey": escape_key(tenant_id),
                "RowKey": f"{_CEILING_US - micros:018d}-{uuid.uuid4().hex[:8]}",
                "At": now,
                "Actor": actor,
                "Action": f"licence.{action}",
                "Users": json.dumps([r.user_id for r in results]),
                "Results": json.dumps([asdict(r) for r in results]),
            }
        )

    async def recent(self, tenant_id: str, limit: int = 20) -> list[dict]:
        query = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": escape_key(tenant_id)}, results_per_page=limit
        )
        entries = []
        async for entity in query:
            entries.append(
                {
                    "at": entity["At"],
                    "actor": entity["Actor"],
                    "action": entity["Action"],
                    "results": json.loads(entity["Results"]),
                }
            )
            if len(entries) >= limit:
                break
        return entries
