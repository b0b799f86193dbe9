"""What the day buckets hold, read back through the repository, for the usage tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

from credits.repository import CreditsRepository
from credits.usage_days import ID_BYTES, DaySpend, usage_key

EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
CALLED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    """A usage row as the charger needs it (credits.usage_charging.ChargeableRow)."""

    usage_id: str
    minor: int
    start: datetime = CALLED

    def amount_minor(self) -> int:
        return self.minor


async def charged_ids(repo: CreditsRepository, tenant_id: str) -> Counter[bytes]:
    """How many times each id is kept across every day's buckets (1 each, in good books)."""
    counts: Counter[bytes] = Counter()
    for usage in (await repo.usage_days(tenant_id, EARLIEST, LATEST)).values():
        for bucket in usage.buckets:
            ids = bucket.ids
            counts.update(ids[i : i + ID_BYTES] for i in range(0, len(ids), ID_BYTES))
    return counts


async def assert_charged_once(repo: CreditsRepository, tenant_id: str, usage_ids) -> None:
    """Exactly these UsageIds are kept, each once."""
    counts = await charged_ids(repo, tenant_id)
    assert counts == Counter({usage_key(usage_id): 1 for usage_id in set(usage_ids)})


async def spend_by_day(repo: CreditsRepository, tenant_id: str) -> dict[date, DaySpend]:
    days = await repo.usage_days(tenant_id, EARLIEST, LATEST)
    return {day: usage.spend for day, usage in days.items()}
