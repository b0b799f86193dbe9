"""Planning on an account and lots read in two requests, with a commit landing in between.

The account and the lots are separate rows read by separate requests; another instance can
commit between the two reads, and the planner then sees an account and lots that never existed
together. Each test opens that window deterministically: a repository wrapper runs the other
instance's commit right before the lots are read. Storage is Azurite, the gateway the sandbox.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from azure.data.tables import UpdateMode

from credits import ledger
from credits.accounts import AccountService
from credits.auto_recharge import AutoRecharger
from credits.expiry import ExpiryJob
from credits.model import (
    Account,
    AutoRecharge,
    EntryKind,
    MethodKind,
    OrderStatus,
    PaymentMethod,
    SavedCard,
)
from credits.money import Money
from credits.orders import OrderService
from credits.usage_charging import UsageCharger
from credits.usage_import import UsageImporter
from storage.credits_repository import TableCreditsRepository
from storage.keys import escape_key
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from tests.support.usage_books import Row, assert_charged_once, spend_by_day
from tests.support.usage_files import export

TENANT = "tenant-torn"
CARD = PaymentMethod(MethodKind.CARD, card_id="card-1")


class BetweenReads(TableCreditsRepository):
    """The repository of an instance that reads the account, then the lots, while another
    instance commits in between: `meanwhile` runs once, right before the next lots read."""

    meanwhile: Callable[[], Awaitable[object]] | None = None
    lot_reads = 0

    async def list_lots(self, tenant_id: str):
        self.lot_reads += 1
        other, self.meanwhile = self.meanwhile, None
        if other is not None:
            await other()
        return await super().list_lots(tenant_id)


@dataclass
class World:
    store: TableStore
    torn: BetweenReads
    """The instance under test: its lots reads can be preceded by another's commit."""
    other: TableCreditsRepository
    orders: OrderService
    """The other instance's order service (a purchase is its commit)."""
    other_charger: UsageCharger
    """The other instance's usage charger (a competing import is its commit)."""
    gateway: SandboxGateway


@pytest.fixture
async def world(table_store) -> World:
    credits = table_store.table(table_store.names.credits)
    gateway = SandboxGateway(
        TableSandboxRecords(table_store.table(table_store.names.sandbox_payments)), timeout=10.0
    )
    other = TableCreditsRepository(credits)
    orders = OrderService(other, gateway, clock=lambda: datetime.now(UTC))
    return World(
        table_store,
        BetweenReads(credits),
        other,
        orders,
        UsageCharger(other, clock=lambda: datetime.now(UTC)),
        gateway,
    )


async def _fund(world: World, minor: int, auto: AutoRecharge | None = None) -> None:
    held = await world.gateway.seed_card(TENANT, "4242424242424242")
    card = SavedCard("card-1", held.reference, held.brand, held.last4, 12, held.expiry_year)
    await world.other.create_account(
        Account(
            TENANT,
            "USD",
            cards=(card,),
            default_method_id="card-1",
            auto_recharge=auto or AutoRecharge(),
        )
    )
    await _buy(world, minor)


async def _buy(world: World, minor: int) -> None:
    outcome = await world.orders.place(
        TENANT, f"buy-{uuid.uuid4().hex}", Money(minor, "USD"), CARD, actor="alex"
    )
    assert outcome.status == OrderStatus.SUCCEEDED


async def _books(repo: TableCreditsRepository):
    account = (await repo.get_account(TENANT)).value
    lots = await repo.list_lots(TENANT)
    entries = await repo.all_entries(TENANT)
    ledger.check_invariant(account, lots, entries)
    return account, lots, entries


def _usage_by_import(entries) -> dict[str, tuple[int, int]]:
    """(calls, minor units) charged by each import (its actor), from its "Calls" lines."""
    charged: dict[str, tuple[int, int]] = {}
    for entry in entries:
        if entry.kind == EntryKind.USAGE:
            calls, minor = charged.get(entry.actor, (0, 0))
            charged[entry.actor] = (calls + entry.calls, minor - entry.amount_minor)
    return charged


async def test_a_competing_import_between_the_reads_is_a_torn_view_not_corruption(world):
    """The issue's crash: the other import's debit lands between the account read and the lots
    read, so the lots hold less than the (older) balance says; planning on them used to raise
    InvariantViolation and stop the import part-way."""
    await _fund(world, 10_000)
    other_rows = [Row(f"other-{i}", 1_500) for i in range(4)]  # $60 of the $100
    world.torn.meanwhile = lambda: world.other_charger.charge(TENANT, other_rows, source="b")
    mine = [Row(f"mine-{i}", 1_000) for i in range(6)]  # $60: more than the $40 left

    report = await UsageCharger(world.torn, clock=lambda: datetime.now(UTC)).charge(
        TENANT, mine, source="a"
    )

    assert world.torn.lot_reads >= 2  # it read again after the torn view
    assert report.charged == 6 and report.debited_minor == 4_000 and report.uncovered == 2
    account, _, entries = await _books(world.other)
    assert account.balance_minor == 0
    # The other import's 4 calls, then 4 of mine in full; my last two found the balance at zero.
    assert _usage_by_import(entries) == {"b": (4, 6_000), "a": (4, 4_000)}
    [spend] = (await spend_by_day(world.other, TENANT)).values()
    assert (spend.calls, spend.amount_minor, spend.charged_minor) == (10, 12_000, 10_000)
    await assert_charged_once(world.other, TENANT, [row.usage_id for row in other_rows + mine])


async def test_a_purchase_and_an_import_between_the_reads_of_a_whole_import(world):
    """The brief's interleaving through the importer the CLI, the endpoint and the chat use:
    a purchase and a competing import commit between the account read and the lots read; the
    import completes, charges each row once, and its end-of-import recharge still runs."""
    auto = AutoRecharge(enabled=True, recharge_with_minor=5_000, trigger_minor=2_000)
    await _fund(world, 10_000, auto)

    async def meanwhile() -> None:
        await _buy(world, 5_000)
        await world.other_charger.charge(TENANT, [Row("other", 14_500)], source="b")

    mine = [str(uuid.uuid4()) for _ in range(4)]  # UsageIds are GUIDs in the export
    rows = [(usage_id, "2.00", "0.00", "MCOPSTNPP") for usage_id in mine]  # $8
    world.torn.meanwhile = meanwhile
    clock = lambda: datetime.now(UTC)  # noqa: E731 - a clock, as the services take it
    gateway = world.gateway
    orders = OrderService(world.torn, gateway, clock=clock)
    importer = UsageImporter(
        AccountService(world.torn, gateway, default_currency="USD"),
        UsageCharger(world.torn, clock=clock),
        AutoRecharger(world.torn, orders, clock=clock),
    )
    report = await importer.import_file(TENANT, io.BytesIO(export(rows)), origin="cli")

    assert report.charged == 4 and report.debited_minor == 500 and report.uncovered == 2
    assert report.recharge == "succeeded"
    account, _, entries = await _books(world.other)
    # $2 + $2 + the last $1 of the balance; the fourth call found it at zero (still recorded).
    assert _usage_by_import(entries) == {"b": (2, 14_500), "cli": (3, 500)}  # b drew two lots
    spend = await spend_by_day(world.other, TENANT)
    exported = spend[datetime(2026, 11, 1).date()]
    assert (exported.calls, exported.amount_minor, exported.charged_minor) == (4, 800, 500)
    await assert_charged_once(world.other, TENANT, [*mine, "other"])
    assert [e.amount_minor for e in entries if e.kind == EntryKind.RECHARGE] == [5_000]
    assert account.balance_minor == 5_000 and account.recharge.due_key == ""


async def test_corrupt_books_still_raise_invariant_violation(world):
    """A lot that really holds less than the balance says (no commit in between) is
    corruption: the import stops with InvariantViolation instead of retrying forever."""
    await _fund(world, 10_000)
    [lot] = await world.other.list_lots(TENANT)
    table = world.store.table(world.store.names.credits)
    await table.update_entity(
        {"PartitionKey": escape_key(TENANT), "RowKey": "lot-" + lot.lot_id, "RemainingMinor": 10},
        mode=UpdateMode.MERGE,
    )
    charger = UsageCharger(world.torn, clock=lambda: datetime.now(UTC))
    with pytest.raises(ledger.InvariantViolation):
        await charger.charge(TENANT, [Row("x", 5_000)], source="a")
    assert world.torn.lot_reads == 1  # decided on the first read: nothing had moved


async def test_expiry_on_a_torn_view_forfeits_what_is_expired_once(world):
    """Expiry also plans on the account and the lots read apart. A commit in between makes its
    plan stale, never impossible (forfeiting takes what the lots hold), and the account's
    ETag refuses the stale commit: the job reads again and forfeits exactly the expired rest."""
    await _fund(world, 10_000)
    [lot] = await world.other.list_lots(TENANT)
    later = lot.expires_at  # the purchase below expires a moment after it

    async def meanwhile() -> None:
        await _buy(world, 5_000)  # not expired: must survive
        await world.other_charger.charge(TENANT, [Row("spent", 2_500)], source="b")

    world.torn.meanwhile = meanwhile
    report = await ExpiryJob(world.torn, clock=lambda: later).run(TENANT)

    assert report.forfeited_minor == 7_500 and report.expired_lots == 1
    account, _, entries = await _books(world.other)
    assert account.balance_minor == 5_000
    assert [e.amount_minor for e in entries if e.kind == EntryKind.EXPIRY] == [-7_500]


class PagesApart(TableCreditsRepository):
    """An instance whose read of a day's buckets takes two pages, with another instance's
    commit landing between them: the first page is from before it, the rest from after."""

    meanwhile: Callable[[], Awaitable[object]] | None = None

    async def usage_days(self, tenant_id, first, last):
        other, self.meanwhile = self.meanwhile, None
        if other is None:
            return await super().usage_days(tenant_id, first, last)
        early = await super().usage_days(tenant_id, first, last)
        await other()
        late = await super().usage_days(tenant_id, first, last)
        return {
            day: replace(usage, buckets=early[day].buckets[:1] + usage.buckets[1:])
            if day in early
            else usage
            for day, usage in late.items()
        }


async def test_a_day_read_in_pages_around_a_commit_is_read_again(world):
    """The first page holds the day's first bucket as it was; the other import then fills it
    (adding b) and opens a second bucket, which the next page returns. Planned on that view,
    b would look new and go into the second bucket, whose ETag is current: charged twice."""
    await _fund(world, 10_000)
    clock = lambda: datetime.now(UTC)  # noqa: E731 - a clock, as the services take it
    other = UsageCharger(world.other, clock=clock, bucket_ids=2)
    await other.charge(TENANT, [Row("a", 100)], source="b")
    torn = PagesApart(world.store.table(world.store.names.credits))
    torn.meanwhile = lambda: other.charge(TENANT, [Row("b", 100), Row("c", 100)], source="b")

    report = await UsageCharger(torn, clock=clock, bucket_ids=2).charge(
        TENANT, [Row("b", 100), Row("d", 100)], source="a"
    )

    assert (report.charged, report.already_charged) == (1, 1)
    await assert_charged_once(world.other, TENANT, ["a", "b", "c", "d"])
    account, _, _ = await _books(world.other)
    assert account.balance_minor == 10_000 - 400
