"""Usage charging, auto-recharge and expiry against Azurite, with two "instances" at once.

An instance here is its own Table client, repository, gateway client and services over the same
tables, as two App Service instances would be. The gateway is the embedded sandbox.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from credits import ledger
from credits.auto_recharge import AutoRecharger
from credits.expiry import ExpiryJob
from credits.model import (
    Account,
    AutoRecharge,
    EntryKind,
    EventKind,
    MethodKind,
    OrderStatus,
    PaymentMethod,
    SavedCard,
)
from credits.money import Money
from credits.orders import OrderService
from credits.payments import ChargeRequest
from credits.usage_charging import UsageCharger
from credits.usage_days import ID_BYTES
from storage.credits_repository import TableCreditsRepository
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from tests.support.usage_books import Row, assert_charged_once, spend_by_day

TENANT = "tenant-usage"
SUCCESS = "4242424242424242"
DECLINED = "4000000000000002"


CALLED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Instance:
    store: TableStore
    repo: TableCreditsRepository
    gateway: SandboxGateway
    orders: OrderService
    charger: UsageCharger
    recharger: AutoRecharger
    expiry: ExpiryJob


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def instances(azurite, table_prefix, table_store, clock):
    made = []
    for _ in range(2):
        store = TableStore.from_settings(
            connection_string=azurite.connection_string, account_url="", prefix=table_prefix
        )
        repo = TableCreditsRepository(store.table(store.names.credits))
        gateway = SandboxGateway(
            TableSandboxRecords(store.table(store.names.sandbox_payments)), timeout=10.0
        )
        orders = OrderService(repo, gateway, clock=clock)
        made.append(
            Instance(
                store,
                repo,
                gateway,
                orders,
                UsageCharger(repo, clock=clock),
                AutoRecharger(repo, orders, clock=clock),
                ExpiryJob(repo, clock=clock),
            )
        )
    yield made
    for instance in made:
        await instance.store.close()


async def _fund(
    one: Instance, clock: Clock, minor: int, *, number=SUCCESS, auto=None, tenant=TENANT
):
    held = await one.gateway.seed_card(tenant, number, expiry_year=clock.now.year + 2)
    card = SavedCard("card-1", held.reference, held.brand, held.last4, 12, clock.now.year + 2)
    account = Account(
        tenant,
        "USD",
        cards=(card,),
        default_method_id="card-1",
        auto_recharge=auto or AutoRecharge(),
    )
    await one.repo.create_account(account)
    if minor:
        outcome = await one.orders.place(
            tenant,
            f"fund-{uuid.uuid4().hex}",
            Money(minor, "USD"),
            PaymentMethod(MethodKind.CARD, card_id="card-1"),
            actor="alex",
        )
        assert outcome.status == OrderStatus.SUCCEEDED


async def _books(repo, tenant=TENANT):
    account = (await repo.get_account(tenant)).value
    lots = await repo.list_lots(tenant)
    entries = await repo.all_entries(tenant)
    ledger.check_invariant(account, lots, entries)
    return account, lots, entries


def _rows(n, minor=100, prefix="u"):
    return [Row(f"{prefix}-{i:05d}", minor) for i in range(n)]


async def test_usage_is_charged_once_across_imports(instances, clock):
    one, _ = instances
    await _fund(one, clock, 100_000)
    first = await one.charger.charge(TENANT, _rows(150), source="csv")
    assert (first.charged, first.already_charged, first.debited_minor) == (150, 0, 15_000)
    again = await one.charger.charge(TENANT, _rows(150) + _rows(10, prefix="new"), source="graph")
    assert (again.charged, again.already_charged, again.debited_minor) == (10, 150, 1_000)
    account, _, entries = await _books(one.repo)
    assert account.balance_minor == 100_000 - 16_000
    # One ledger line per import (one lot each), counting its calls; each call kept once.
    lines = [(e.calls, e.amount_minor) for e in entries if e.kind == EntryKind.USAGE]
    assert lines == [(150, -15_000), (10, -1_000)]
    await assert_charged_once(
        one.repo, TENANT, [r.usage_id for r in _rows(150) + _rows(10, prefix="new")]
    )
    [spend] = (await spend_by_day(one.repo, TENANT)).values()
    assert (spend.day, spend.calls, spend.charged_minor) == (CALLED.date(), 160, 16_000)


async def test_usage_draws_earliest_expiry_first_one_entry_per_lot(instances, clock):
    one, _ = instances
    await _fund(one, clock, 5_000)
    clock.now += timedelta(days=10)
    await one.orders.place(
        TENANT,
        "second",
        Money(5_000, "USD"),
        PaymentMethod(MethodKind.CARD, card_id="card-1"),
        actor="alex",
    )
    await one.charger.charge(TENANT, [Row("big", 7_000)], source="csv")
    account, lots, entries = await _books(one.repo)
    usage = [e for e in entries if e.kind == EntryKind.USAGE]
    assert [e.amount_minor for e in usage] == [-5_000, -2_000]
    oldest = min(lots, key=lambda lot: lot.expires_at)
    assert oldest.remaining_minor == 0 and usage[0].lot_id == oldest.lot_id


async def test_usage_beyond_the_balance_stops_at_zero_once(instances, clock):
    one, _ = instances
    await _fund(one, clock, 5_000)
    report = await one.charger.charge(TENANT, _rows(60), source="csv")
    assert (report.charged, report.uncovered, report.debited_minor) == (60, 10, 5_000)
    account, lots, _ = await _books(one.repo)
    assert account.balance_minor == 0 and all(lot.remaining_minor >= 0 for lot in lots)
    kinds = [e.kind for e in await one.repo.outbox(TENANT)]
    assert kinds.count(EventKind.BALANCE_ZERO) == 1


async def test_two_instances_importing_overlapping_files(instances, clock):
    one, two = instances
    auto = AutoRecharge(
        enabled=True, recharge_with_minor=50_000, trigger_minor=20_000, method_id="card-1"
    )
    await _fund(one, clock, 30_000, auto=auto)
    file_a = _rows(120, minor=150)
    file_b = _rows(120, minor=150)[60:] + _rows(60, minor=150, prefix="b")
    a, b = await asyncio.gather(
        one.charger.charge(TENANT, file_a, source="a"),
        two.charger.charge(TENANT, file_b, source="b"),
    )
    assert a.charged + b.charged == 180
    assert a.debited_minor + b.debited_minor == 180 * 150
    await assert_charged_once(one.repo, TENANT, [row.usage_id for row in file_a + file_b])
    account, _, _ = await _books(one.repo)
    assert account.balance_minor == 30_000 - 27_000
    assert account.recharge.due_key  # one crossing recorded

    results = await asyncio.gather(
        one.recharger.run(TENANT), two.recharger.run(TENANT), one.recharger.run(TENANT)
    )
    assert [r.status for r in results].count("succeeded") >= 1
    account, lots, entries = await _books(one.repo)
    recharges = [e for e in entries if e.kind == EntryKind.RECHARGE]
    assert len(recharges) == 1 and recharges[0].amount_minor == 50_000
    assert account.balance_minor == 3_000 + 50_000 and account.recharge.due_key == ""
    events = await one.repo.outbox(TENANT)
    assert [e.kind for e in events].count(EventKind.RECHARGE_SUCCEEDED) == 1
    # The crossing that started the recharge is announced by the recharge, not as a low balance.
    assert [e.kind for e in events].count(EventKind.BALANCE_LOW) == 0
    # Nothing more is due: running again does nothing.
    assert (await two.recharger.run(TENANT)).status == "none"


async def test_failed_recharges_back_off_then_disable(instances, clock):
    one, _ = instances
    auto = AutoRecharge(
        enabled=True, recharge_with_minor=10_000, trigger_minor=5_000, method_id="card-1"
    )
    await _fund(one, clock, 0, number=DECLINED, auto=auto)
    # Give the tenant money through an agreement so a debit can cross the trigger.
    account = await one.repo.get_account(TENANT)
    await one.repo.save_account(account, replace(account.value, agreements=("EA-1",)))
    await one.orders.place(
        TENANT,
        "ea",
        Money(6_000, "USD"),
        PaymentMethod(MethodKind.AGREEMENT, agreement_number="EA-1"),
        actor="alex",
    )
    await one.charger.charge(TENANT, [Row("x", 2_000)], source="csv")

    assert (await one.recharger.run(TENANT)).status == "failed"
    assert (await one.recharger.run(TENANT)).status == "waiting"
    clock.now += timedelta(hours=1, seconds=1)
    assert (await one.recharger.run(TENANT)).status == "failed"
    clock.now += timedelta(hours=23, seconds=1)
    assert (await one.recharger.run(TENANT)).status == "disabled"
    account, _, entries = await _books(one.repo)
    assert not account.auto_recharge.enabled and account.balance_minor == 4_000
    assert not [e for e in entries if e.kind == EntryKind.RECHARGE]
    events = await one.repo.outbox(TENANT)
    failed = [e for e in events if e.kind == EventKind.RECHARGE_FAILED]
    assert sorted(e.data["attempt"] for e in failed) == [1, 2, 3]
    assert all(e.data["reason"] == "declined" for e in failed)
    assert [e.kind for e in events].count(EventKind.AUTO_RECHARGE_DISABLED) == 1


async def test_a_manual_purchase_clears_the_failure_state(instances, clock):
    one, _ = instances
    auto = AutoRecharge(
        enabled=True, recharge_with_minor=10_000, trigger_minor=5_000, method_id="card-1"
    )
    await _fund(one, clock, 0, number=DECLINED, auto=auto)
    account = await one.repo.get_account(TENANT)
    await one.repo.save_account(account, replace(account.value, agreements=("EA-1",)))
    ea = PaymentMethod(MethodKind.AGREEMENT, agreement_number="EA-1")
    await one.orders.place(TENANT, "ea", Money(6_000, "USD"), ea, actor="alex")
    await one.charger.charge(TENANT, [Row("x", 2_000)], source="csv")
    assert (await one.recharger.run(TENANT)).status == "failed"
    await one.orders.place(TENANT, "ea-2", Money(500, "USD"), ea, actor="alex")
    account = (await one.repo.get_account(TENANT)).value
    assert (account.recharge.attempts, account.recharge.last_failure) == (0, "")


@pytest.mark.parametrize("crash", ["before_gateway", "after_gateway"])
async def test_a_crash_mid_recharge_recovers_to_one_charge(instances, clock, crash):
    one, two = instances
    auto = AutoRecharge(
        enabled=True, recharge_with_minor=10_000, trigger_minor=5_000, method_id="card-1"
    )
    await _fund(one, clock, 6_000, auto=auto)
    await one.charger.charge(TENANT, [Row("x", 2_000)], source="csv")
    account = (await one.repo.get_account(TENANT)).value
    key = f"{account.recharge.due_key}-a1"
    from credits.model import Order

    # What the crashed instance left behind: the pending order, and maybe the charge.
    pending = Order(
        TENANT,
        key,
        10_000,
        "USD",
        PaymentMethod(MethodKind.CARD, card_id="card-1"),
        EntryKind.RECHARGE,
        "auto-recharge",
        OrderStatus.PENDING,
        clock.now,
        clock.now,
    )
    await one.repo.insert_order(pending)
    if crash == "after_gateway":
        await one.gateway.charge_saved_card(
            ChargeRequest(
                tenant_id=TENANT,
                customer="",
                card=account.card("card-1").token,
                key=key,
                amount_minor=10_000,
                currency="USD",
                description="Communications Credits recharge",
            )
        )
    results = await asyncio.gather(two.recharger.run(TENANT), one.recharger.run(TENANT))
    assert "succeeded" in [r.status for r in results]
    account, _, entries = await _books(one.repo)
    assert [e.amount_minor for e in entries if e.kind == EntryKind.RECHARGE] == [10_000]
    records = TableSandboxRecords(one.store.table(one.store.names.sandbox_payments))
    assert len(await records.list(TENANT, f"charge:{key}")) == 1


async def test_expiry_forfeits_once_at_the_right_time(instances, clock):
    one, two = instances
    await _fund(one, clock, 10_000)
    await one.charger.charge(TENANT, [Row("x", 2_500)], source="csv")
    [lot] = await one.repo.list_lots(TENANT)

    clock.now = lot.expires_at - timedelta(days=31)
    assert (await one.expiry.run(TENANT)).warnings == []
    clock.now = lot.expires_at - timedelta(days=29)
    assert (await one.expiry.run(TENANT)).warnings == [f"funds_expiring-30-{lot.lot_id}"]
    assert (await one.expiry.run(TENANT)).warnings == []
    clock.now = lot.expires_at - timedelta(days=6)
    assert (await one.expiry.run(TENANT)).warnings == [f"funds_expiring-7-{lot.lot_id}"]
    clock.now = lot.expires_at - timedelta(seconds=1)
    assert (await one.expiry.run(TENANT)).forfeited_minor == 0

    clock.now = lot.expires_at
    reports = await asyncio.gather(one.expiry.run(TENANT), two.expiry.run(TENANT))
    assert sum(r.forfeited_minor for r in reports) == 7_500
    assert (await one.expiry.run(TENANT)).forfeited_minor == 0
    account, lots, entries = await _books(one.repo)
    assert account.balance_minor == 0
    assert [e.amount_minor for e in entries if e.kind == EntryKind.EXPIRY] == [-7_500]
    kinds = [e.kind for e in await one.repo.outbox(TENANT)]
    assert kinds.count(EventKind.FUNDS_EXPIRED) == 1 and kinds.count(EventKind.FUNDS_EXPIRING) == 2


async def test_a_new_method_after_a_failure_is_tried_with_a_new_key(instances, clock):
    """Clearing the failure state must not reuse the failed attempt's key (found in review:
    the order with that key exists with the old card, so the new card was never charged)."""
    one, _ = instances
    auto = AutoRecharge(
        enabled=True, recharge_with_minor=10_000, trigger_minor=5_000, method_id="card-1"
    )
    await _fund(one, clock, 0, number=DECLINED, auto=auto)
    account = await one.repo.get_account(TENANT)
    await one.repo.save_account(account, replace(account.value, agreements=("EA-1",)))
    ea = PaymentMethod(MethodKind.AGREEMENT, agreement_number="EA-1")
    await one.orders.place(TENANT, "ea", Money(6_000, "USD"), ea, actor="alex")
    await one.charger.charge(TENANT, [Row("x", 2_000)], source="csv")
    assert (await one.recharger.run(TENANT)).status == "failed"

    # The admin switches auto-recharge to the agreement, which clears the failure state.
    current = await one.repo.get_account(TENANT)
    cleared = replace(
        current.value,
        auto_recharge=replace(current.value.auto_recharge, method_id="agreement:EA-1"),
        recharge=replace(current.value.recharge, attempts=0, next_attempt_at="", last_failure=""),
    )
    await one.repo.save_account(current, cleared)
    result = await one.recharger.run(TENANT)
    assert result.status == "succeeded"
    account, _, entries = await _books(one.repo)
    assert [e.amount_minor for e in entries if e.kind == EntryKind.RECHARGE] == [10_000]
    assert account.recharge.due_key == ""


class OtherCommitsFirst(TableCreditsRepository):
    """An instance whose next usage commit is preceded by another instance's commit."""

    meanwhile = None

    async def commit_usage(self, *args, **kwargs):
        other, self.meanwhile = self.meanwhile, None
        if other is not None:
            await other()
        return await super().commit_usage(*args, **kwargs)


async def test_a_call_charged_by_another_import_during_a_conflict_is_not_charged_again(
    instances, clock
):
    """Found by the property test: this import reads calls x and y ahead (both new then) and
    commits them in two batches. Another import charges y before the first batch commits: the
    first batch conflicts and reads the day again, which now holds y. The second batch must
    drop y, though its own commit would find the day's ETags current."""
    one, two = instances
    await _fund(one, clock, 10_000)
    torn = OtherCommitsFirst(one.store.table(one.store.names.credits))
    torn.meanwhile = lambda: two.charger.charge(TENANT, [Row("y", 300)], source="b")
    # One id per transaction, so that x and y go in two batches.
    charger = UsageCharger(torn, clock=clock, max_bucket_bytes=ID_BYTES)

    report = await charger.charge(TENANT, [Row("x", 100), Row("y", 300)], source="a")

    assert (report.charged, report.already_charged, report.debited_minor) == (1, 1, 100)
    await assert_charged_once(one.repo, TENANT, ["x", "y"])
    account, _, _ = await _books(one.repo)
    assert account.balance_minor == 10_000 - 400
