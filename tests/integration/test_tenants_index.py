"""The tenants index on Azurite: the jobs find every tenant without scanning the Credits table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from credits.model import Account
from storage.credits_repository import TableCreditsRepository
from storage.tenants_index import TableTenantsIndex


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class CountedScans(TableCreditsRepository):
    scans = 0

    async def scan_accounts(self) -> list[str]:
        self.scans += 1
        return await super().scan_accounts()


def _repos(table_store, clock):
    credits = table_store.table(table_store.names.credits)
    index = TableTenantsIndex(table_store.table(table_store.names.tenants), clock)
    return CountedScans(credits, tenants=index), TableCreditsRepository(credits)


async def test_accounts_are_indexed_when_created_and_listed_without_a_scan(table_store):
    repo, _ = _repos(table_store, Clock())
    assert await repo.tenants_with_accounts() == []  # the first listing fills the index once
    assert repo.scans == 1
    await asyncio.gather(*(repo.create_account(Account(f"tenant/{n}", "USD")) for n in range(3)))
    await repo.create_account(Account("tenant/1", "USD"))  # again: still one row

    assert sorted(await repo.tenants_with_accounts()) == ["tenant/0", "tenant/1", "tenant/2"]
    assert repo.scans == 1


async def test_accounts_from_before_the_index_are_found_once_then_daily(table_store):
    clock = Clock()
    repo, before = _repos(table_store, clock)
    # Accounts written by the previous version (no index) and by an old instance later on.
    for tenant in ("old-a", "old-b"):
        await before.create_account(Account(tenant, "USD"))

    assert sorted(await repo.tenants_with_accounts()) == ["old-a", "old-b"]
    await before.create_account(Account("straggler", "USD"))
    assert sorted(await repo.tenants_with_accounts()) == ["old-a", "old-b"]
    assert repo.scans == 1

    clock.now += timedelta(days=1, minutes=1)
    assert sorted(await repo.tenants_with_accounts()) == ["old-a", "old-b", "straggler"]
    assert repo.scans == 2


async def test_jobs_of_one_instance_listing_at_once_scan_once(table_store):
    repo, before = _repos(table_store, Clock())
    await before.create_account(Account("old", "USD"))
    listings = await asyncio.gather(*(repo.tenants_with_accounts() for _ in range(5)))
    assert listings == [["old"]] * 5 and repo.scans == 1


async def test_the_service_indexes_the_accounts_it_creates(settings, table_store):
    from app import build_credits

    credits = build_credits(settings, table_store)
    await credits.accounts.get_or_create("tenant-of-the-app")
    index = table_store.table(table_store.names.tenants)
    rows = [entity["TenantId"] async for entity in index.query_entities("PartitionKey eq 'tenant'")]
    assert rows == ["tenant-of-the-app"]
