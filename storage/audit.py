"""The audit log: who changed what (licences, auto-recharge, alert settings), and when.
Append-only.

One partition per tenant; row keys count down from a ceiling of the time in microseconds, so
the newest entry comes first in a plain query and a period is one key range.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from azure.data.tables.aio import TableClient

from credits.audit import AuditAction, AuditEntry
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
        await self._write(
            tenant_id,
            actor,
            f"licence.{action}",
            {
                "Users": json.dumps([r.user_id for r in results]),
                "Results": json.dumps([asdict(r) for r in results]),
            },
        )

    async def record(
        self, tenant_id: str, actor: str, action: AuditAction, details: dict[str, Any]
    ) -> None:
        await self._write(tenant_id, actor, action.value, {"Details": json.dumps(details)})

    async def _write(
        self, tenant_id: str, actor: str, action: str, properties: dict[str, str]
    ) -> None:
        now = self._clock()
        await self._table.create_entity(
            {
                "PartitionKey": escape_key(tenant_id),
                "RowKey": f"{_CEILING_US - _micros(now):018d}-{uuid.uuid4().hex[:8]}",
                "At": now,
                "Actor": actor,
                "Action": action,
                **properties,
            }
        )

    async def between(
        self, tenant_id: str, start: datetime, end: datetime, limit: int
    ) -> list[AuditEntry]:
        # An entry at `t` has the key prefix ceiling - t: [start, end) is (ceiling - end,
        # ceiling - start] of the prefixes.
        query = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={
                "pk": escape_key(tenant_id),
                "lo": f"{_CEILING_US - _micros(end) + 1:018d}",
                "hi": f"{_CEILING_US - _micros(start) + 1:018d}",
            },
            results_per_page=min(limit, 1000),
        )
        entries: list[AuditEntry] = []
        async for entity in query:
            entries.append(_entry_from(entity))
            if len(entries) >= limit:
                break
        return entries

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
                    "results": json.loads(entity.get("Results") or "[]"),
                }
            )
            if len(entries) >= limit:
                break
        return entries


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _entry_from(entity: dict[str, Any]) -> AuditEntry:
    if "Details" in entity:
        details = json.loads(entity["Details"] or "{}")
    else:  # a licence change: the result for each user
        details = {"results": json.loads(entity.get("Results") or "[]")}
    return AuditEntry(
        at=entity["At"], actor=entity["Actor"], action=entity["Action"], details=details
    )
