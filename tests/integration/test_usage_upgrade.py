"""The upgrade from per-call usage markers to day buckets, on Azurite.

Before day buckets, each charged call had its own entity `usage-<UsageId>` (written in the
same transaction as its own ledger line). `old_import` writes exactly that layout, as the
previous version did; the tests then import the same calls with the new code.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime, timedelta

from azure.data.tables import EdmType, EntityProperty

from credits import ledger
from credits.accounts import AccountService
from credits.auto_recharge import AutoRecharger
from credits.model import Account, EntryKind
from credits.orders import OrderService
from credits.usage_charging import UsageCharger
from credits.usage_days import ID_BYTES, DayUsage, IdBucket, append, usage_key
from credits.usage_import import UsageImporter
from credits.usage_migration import UsageMigration
from storage.credits_repository import TableCreditsRepository
from storage.keys import escape_key
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from tests.support.usage_books import assert_charged_once, spend_by_day
from tests.support.usage_files import export

TENANT = "tenant-upgrade"
EXPORTED = datetime(
    2026, 11, 1, 10, 0, tzinfo=UTC
)  # the start time tests.support.usage_files writes
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class Call:
    def __init__(self, usage_id: str, minor: int, start: datetime = EXPORTED) -> None:
        self.usage_id, self.minor, self.start = usage_id, minor, start

    def amount_minor(self) -> int:
        return self.minor


async def _funded(repo: TableCreditsRepository, minor: int) -> None:
    created = await repo.create_account(Account(TENANT, "USD"))
    change = ledger.credit(
        created.value, minor, kind=EntryKind.PURCHASE, actor="t", reference="fund", at=NOW
    )
    await repo.commit(created.etag, change)


async def old_import(repo: TableCreditsRepository, table, calls: list[Call]) -> None:
    """What the previous version left: a ledger line per call and a marker per call."""
    for call in calls:
        current = await repo.get_account(TENANT)
        change = ledger.debit(
            current.value,
            await repo.list_lots(TENANT),
            call.minor,
            kind=EntryKind.USAGE,
            actor="csv",
            reference=call.usage_id,
            at=NOW - timedelta(days=10),
        )
        await repo.commit(current.etag, change)
        await table.create_entity(
            {
                "PartitionKey": escape_key(TENANT),
                "RowKey": "usage-" + escape_key(call.usage_id),
                "UsageId": call.usage_id,
                "AmountMinor": EntityProperty(call.minor, EdmType.INT64),
                "ChargedMinor": EntityProperty(call.minor, EdmType.INT64),
                "Source": "csv",
                "At": NOW - timedelta(days=10),
                "StartedAt": call.start,
            }
        )


async def _markers(table) -> list[str]:
    query = table.query_entities(
        "PartitionKey eq @pk and RowKey ge 'usage-' and RowKey lt 'usage.'",
        parameters={"pk": escape_key(TENANT)},
    )
    return [entity["UsageId"] async for entity in query]


async def _books(repo):
    account = (await repo.get_account(TENANT)).value
    entries = await repo.all_entries(TENANT)
    ledger.check_invariant(account, await repo.list_lots(TENANT), entries)
    return account, entries


def _guids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def test_calls_charged_before_the_upgrade_are_not_charged_again(table_store):
    table = table_store.table(table_store.names.credits)
    repo = TableCreditsRepository(table)
    await _funded(repo, 100_000)
    old = [Call(usage_id, 250) for usage_id in _guids(12)]
    await old_import(repo, table, old)

    new = [Call(usage_id, 100) for usage_id in _guids(5)]
    charger = UsageCharger(repo, clock=lambda: NOW, bucket_ids=4)
    report = await charger.charge(TENANT, [*old, *new], source="csv")

    assert (report.charged, report.already_charged, report.debited_minor) == (5, 12, 500)
    assert await _markers(table) == []  # moved into the day's buckets
    await assert_charged_once(repo, TENANT, [call.usage_id for call in old + new])
    [spend] = (await spend_by_day(repo, TENANT)).values()
    assert (spend.day, spend.calls, spend.charged_minor) == (EXPORTED.date(), 17, 3_500)
    assert await repo.daily_spend(TENANT, NOW - timedelta(days=90)) == {EXPORTED.date(): 3_500}
    account, _ = await _books(repo)
    assert account.balance_minor == 100_000 - 3_500

    again = await charger.charge(TENANT, [*old, *new], source="graph")
    assert (again.charged, again.already_charged) == (0, 17)


async def test_an_export_of_calls_charged_before_the_upgrade_through_the_importer(table_store):
    """The CLI's, the endpoint's and the chat's path: UsageIds in the export's own case."""
    table = table_store.table(table_store.names.credits)
    repo = TableCreditsRepository(table)
    await _funded(repo, 100_000)
    ids = _guids(4)
    await old_import(repo, table, [Call(usage_id, 210) for usage_id in ids[:3]])

    gateway = SandboxGateway(
        TableSandboxRecords(table_store.table(table_store.names.sandbox_payments))
    )
    importer = UsageImporter(
        AccountService(repo, gateway, default_currency="USD"),
        UsageCharger(repo, clock=lambda: NOW),
        AutoRecharger(repo, OrderService(repo, gateway, clock=lambda: NOW), clock=lambda: NOW),
    )
    rows = [(usage_id.upper(), "2.00", "0.10", "MCOPSTNPP") for usage_id in ids]
    report = await importer.import_file(TENANT, io.BytesIO(export(rows)), origin="cli")

    assert (report.charged, report.already_charged, report.debited_minor) == (1, 3, 210)
    await assert_charged_once(repo, TENANT, ids)
    account, _ = await _books(repo)
    assert account.balance_minor == 100_000 - 4 * 210


async def test_the_migration_job_and_an_import_at_once_charge_nothing_twice(table_store):
    """Two instances after a deployment: one runs the leased migration job, the other imports
    the same calls (and a few new ones) at the same moment."""
    table = table_store.table(table_store.names.credits)
    repo = TableCreditsRepository(table)
    await _funded(repo, 1_000_000)
    days = [EXPORTED + timedelta(days=n % 3, minutes=n) for n in range(60)]
    old = [Call(usage_id, 300, start) for usage_id, start in zip(_guids(60), days, strict=True)]
    await old_import(repo, table, old)
    new = [Call(usage_id, 100, EXPORTED + timedelta(days=1)) for usage_id in _guids(7)]

    other = TableCreditsRepository(table_store.table(table_store.names.credits))
    migrated, report = await asyncio.gather(
        UsageMigration(other, bucket_ids=4, page=9).run(TENANT),
        UsageCharger(repo, clock=lambda: NOW, bucket_ids=4).charge(
            TENANT, [*new, *old], source="csv"
        ),
    )

    assert (report.charged, report.already_charged, report.debited_minor) == (7, 60, 700)
    assert await _markers(table) == []
    await assert_charged_once(repo, TENANT, [call.usage_id for call in old + new])
    spend = await spend_by_day(repo, TENANT)
    assert sum(s.calls for s in spend.values()) == 67
    assert sum(s.charged_minor for s in spend.values()) == 60 * 300 + 700
    account, _ = await _books(repo)
    assert account.balance_minor == 1_000_000 - 60 * 300 - 700


async def test_a_marker_whose_call_a_bucket_holds_already_is_deleted_and_counted_once(table_store):
    """A marker left beside its id in a bucket (as two migrations racing could leave it for a
    moment) counts its call's spend once."""
    table = table_store.table(table_store.names.credits)
    repo = TableCreditsRepository(table)
    await _funded(repo, 10_000)
    call = Call(str(uuid.uuid4()), 400)
    await old_import(repo, table, [call])
    # The bucket and the spend as a migration that got there first wrote them.
    day = EXPORTED.date()
    account = await repo.get_account(TENANT)
    await repo.commit_usage(
        account.etag,
        ledger.Change(account.value, (), ()),
        [
            append(
                DayUsage.empty(day), usage_key(call.usage_id), amount_minor=400, charged_minor=400
            )
        ],
    )

    report = await UsageMigration(repo).run(TENANT)

    assert (report.moved, report.dropped) == (0, 1)
    assert await _markers(table) == []
    [spend] = (await spend_by_day(repo, TENANT)).values()
    assert (spend.calls, spend.charged_minor) == (1, 400)
    usage = await repo.usage_days(TENANT, day, day)
    assert usage[day].buckets == (
        IdBucket(day, 0, usage_key(call.usage_id), usage[day].buckets[0].etag),
    )
    assert len(usage[day].buckets[0].ids) == ID_BYTES
