"""Properties of usage charging on Azurite: overlapping imports, in any order, from two
importers at once (each its own Table client, as two App Service instances would be).

Buckets hold 3 ids, a look-ahead a few rows and a transaction a few ids here, so that a handful
of calls fills buckets, spans transactions and makes the two importers collide on the same
days' buckets. Each example is a new tenant in the same tables.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credits import ledger
from credits.model import Account, EntryKind
from credits.usage_charging import UsageCharger
from credits.usage_days import ID_BYTES
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.support.usage_books import assert_charged_once, spend_by_day

FIRST_DAY = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Call:
    usage_id: str
    minor: int
    start: datetime

    def amount_minor(self) -> int:
        return self.minor


calls = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3_000),  # minor units; free calls too
        st.integers(min_value=0, max_value=3),  # day
        st.integers(min_value=0, max_value=86_399),  # second of the day
    ),
    min_size=1,
    max_size=30,
)


@st.composite
def scenarios(draw):
    # Distinct UsageIds: Microsoft never gives one UsageId two start times.
    base = draw(st.integers(0, 2**128 - 1))
    universe = [
        Call(str(uuid.UUID(int=(base + n) % 2**128)), minor, _at(day, second))
        for n, (minor, day, second) in enumerate(draw(calls))
    ]
    indexes = st.integers(min_value=0, max_value=len(universe) - 1)
    imports = draw(
        st.lists(
            st.tuples(st.booleans(), st.lists(indexes, min_size=1, max_size=40)),
            min_size=1,
            max_size=4,
        )
    )
    total = sum(call.minor for call in universe)
    funds = draw(st.sampled_from([10**9, 0]) | st.integers(min_value=0, max_value=total))
    tuning = draw(
        st.fixed_dictionaries(
            {
                "lookahead_rows": st.integers(min_value=1, max_value=12),
                "max_bucket_bytes": st.integers(min_value=1, max_value=8).map(
                    lambda ids: ids * ID_BYTES
                ),
            }
        )
    )
    return universe, imports, funds, tuning


def _at(day: int, second: int) -> datetime:
    return FIRST_DAY + timedelta(days=day, seconds=second)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_overlapping_imports_from_two_importers_charge_each_call_once(azurite, scenario):
    asyncio.run(_check(azurite.connection_string, *scenario))


async def _check(connection_string, universe, imports, funds, tuning):
    tenant = "prop-" + uuid.uuid4().hex[:12]
    stores = [
        TableStore.from_settings(
            connection_string=connection_string, account_url="", prefix="tusageprops"
        )
        for _ in range(2)
    ]
    try:
        await stores[0].create_tables()
        repos = [TableCreditsRepository(store.table(store.names.credits)) for store in stores]
        await _fund(repos[0], tenant, funds)
        chargers = [
            UsageCharger(repo, clock=lambda: datetime.now(UTC), bucket_ids=3, **tuning)
            for repo in repos
        ]

        async def importer(which: int):
            reports = []
            for second, picks in imports:
                if int(second) == which:
                    rows = [universe[index] for index in picks]
                    reports.append(await chargers[which].charge(tenant, rows, source=f"i{which}"))
            return reports

        reports = [r for rs in await asyncio.gather(importer(0), importer(1)) for r in rs]
        imported = {
            universe[index].usage_id: universe[index] for _, picks in imports for index in picks
        }
        repo = repos[0]

        # Each call imported is kept once, whoever imported it and however often.
        await assert_charged_once(repo, tenant, imported)
        assert sum(report.charged for report in reports) == len(imported)
        assert sum(r.charged + r.already_charged for r in reports) == sum(
            len(picks) for _, picks in imports
        )

        # The books balance, and the day totals are what was charged, per day of call start.
        account = (await repo.get_account(tenant)).value
        lots = await repo.list_lots(tenant)
        entries = await repo.all_entries(tenant)
        ledger.check_invariant(account, lots, entries)
        usage = [entry for entry in entries if entry.kind == EntryKind.USAGE]
        spend = await spend_by_day(repo, tenant)
        by_day: dict[date, list[Call]] = defaultdict(list)
        for call in imported.values():
            by_day[call.start.date()].append(call)
        assert {day: (s.calls, s.amount_minor) for day, s in spend.items()} == {
            day: (len(day_calls), sum(c.minor for c in day_calls))
            for day, day_calls in by_day.items()
        }
        charged = sum(s.charged_minor for s in spend.values())
        assert (
            charged == -sum(entry.amount_minor for entry in usage) == funds - account.balance_minor
        )
        assert sum(report.debited_minor for report in reports) == charged
        assert all(s.charged_minor <= s.amount_minor for s in spend.values())
        if funds >= sum(call.minor for call in imported.values()):
            assert all(s.charged_minor == s.amount_minor for s in spend.values())
            assert sum(report.uncovered for report in reports) == 0
            # Each line counts the calls drawn from its lot (a call split over two counts twice).
            paid = sum(1 for call in imported.values() if call.minor)
            assert sum(entry.calls for entry in usage) >= paid
        for entry in usage:
            assert entry.calls > 0 and entry.first_call <= entry.last_call
    finally:
        for store in stores:
            await store.close()


async def _fund(repo: TableCreditsRepository, tenant: str, funds: int) -> None:
    created = await repo.create_account(Account(tenant, "USD"))
    if funds:
        change = ledger.credit(
            created.value,
            funds,
            kind=EntryKind.PURCHASE,
            actor="test",
            reference="fund",
            at=datetime.now(UTC),
        )
        await repo.commit(created.etag, change)
