"""Moving per-call usage markers (the layout before day buckets) into the buckets, once.

Before UsageIds were packed per day, each charged call had its own entity, `usage-<UsageId>`,
holding what it cost, what was charged and when it started. They are honoured by moving them:
each transaction adds a group of markers' ids to their days' buckets and spend (under the
ETags they were read with) and deletes those markers (under theirs). A call is therefore, at
every moment, either a marker or an id in a bucket, never neither and never both; an id the
buckets hold already (a concurrent migration of the same marker lost its race) is deleted
without counting its spend twice.

The charger runs this before charging a tenant (one empty query once nothing is left), and a
leased job runs it for every tenant after a deployment, so imports rarely wait for it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import UTC, date

from credits.model import UsageMarker
from credits.repository import ConcurrencyConflict, CreditsRepository, Versioned
from credits.usage_days import (
    BUCKET_IDS,
    DayCache,
    DayUsage,
    DayWrite,
    append,
    read_days,
    usage_key,
)

logger = logging.getLogger(__name__)

PAGE = 1000
"""Markers read at a time."""
MAX_OPERATIONS = 100
MARKERS_PER_DAY = 40
"""Markers of one day moved by one transaction (each is one delete)."""
MAX_CONFLICTS = 20


@dataclass
class MigrationReport:
    moved: int = 0
    """Markers whose id went into a bucket (and whose spend was counted)."""
    dropped: int = 0
    """Markers whose id a bucket held already: deleted, nothing counted."""


class UsageMigration:
    def __init__(
        self,
        repository: CreditsRepository,
        *,
        sleep: Callable[[float], object] = asyncio.sleep,
        bucket_ids: int = BUCKET_IDS,
        page: int = PAGE,
    ) -> None:
        self._repo = repository
        self._sleep = sleep
        self._capacity = bucket_ids
        self._page = page

    async def run(self, tenant_id: str) -> MigrationReport:
        report = MigrationReport()
        days = DayCache()
        conflicts = 0
        while True:
            markers = await self._repo.legacy_usage(tenant_id, self._page)
            if not markers:
                if report.moved or report.dropped:
                    logger.info(
                        "usage markers of tenant %s moved into day buckets: %d moved, %d dropped",
                        tenant_id,
                        report.moved,
                        report.dropped,
                    )
                return report
            try:
                await self._move(tenant_id, markers, days, report)
                conflicts = 0
            except ConcurrencyConflict:
                # Another migration (or an import) wrote the same days: read them again.
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise
                days = DayCache()
                await self._sleep(random.uniform(0, 0.02 * 2 ** min(conflicts, 5)))

    async def _move(
        self,
        tenant_id: str,
        markers: list[Versioned[UsageMarker]],
        days: DayCache,
        report: MigrationReport,
    ) -> None:
        by_day: dict[date, list[Versioned[UsageMarker]]] = defaultdict(list)
        for marker in markers:
            by_day[_day(marker.value)].append(marker)
        read = functools.partial(self._repo.usage_days, tenant_id)
        for usage in await read_days(read, days.missing(by_day)):
            days.put(usage)
        while by_day:
            writes: list[tuple[DayWrite | None, DayUsage, list[bytes]]] = []
            deletes: list[Versioned[UsageMarker]] = []
            operations = 0
            for day in list(by_day):
                take = by_day[day][:MARKERS_PER_DAY]
                if day not in days:  # dropped to bound memory since it was read
                    [usage] = await read_days(read, [day])
                    days.put(usage)
                usage = days.usage(day)
                write, keys = self._write(usage, take, days.members(day))
                cost = len(take) + (write.operations if write is not None else 0)
                if operations + cost > MAX_OPERATIONS:
                    break
                operations += cost
                writes.append((write, usage, keys))
                deletes += take
                rest = by_day[day][len(take) :]
                if rest:
                    by_day[day] = rest
                else:
                    del by_day[day]
            written = await self._repo.migrate_usage(
                tenant_id, [write for write, _, _ in writes if write is not None], deletes
            )
            done = iter(written)
            for write, before, keys in writes:
                if write is not None:
                    days.committed(next(done), before, b"".join(keys))
                report.moved += len(keys)
            report.dropped += len(deletes) - sum(len(keys) for _, _, keys in writes)

    def _write(
        self, usage: DayUsage, markers: list[Versioned[UsageMarker]], known: Container[bytes]
    ) -> tuple[DayWrite | None, list[bytes]]:
        keys: list[bytes] = []
        amount = charged = 0
        for marker in markers:
            key = usage_key(marker.value.usage_id)
            if key in known or key in keys:
                continue
            keys.append(key)
            amount += marker.value.amount_minor
            charged += marker.value.charged_minor
        if not keys:
            return None, keys
        write = append(
            usage,
            b"".join(keys),
            amount_minor=amount,
            charged_minor=charged,
            capacity=self._capacity,
        )
        return write, keys


def _day(marker: UsageMarker) -> date:
    return (marker.started_at or marker.at).astimezone(UTC).date()
