"""The runway job on Azurite: a pass under its lease evaluates only the tenants whose account
changed since their last evaluation (a crash between a charge and its evaluation) or whose
next-check day has come; every other tenant costs one read of its account.

Table requests are counted with the store's request hook (the figure the benchmarks use).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from credits.jobs import Job, JobRunner
from credits.model import Account, EventKind, MethodKind, OrderStatus, PaymentMethod, SavedCard
from credits.money import Money
from credits.orders import OrderService
from credits.repository import ConcurrencyConflict
from credits.runway import RunwayAlerts
from credits.usage_charging import UsageCharger
from storage.credits_repository import TableCreditsRepository
from storage.leases import TableLeases
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from tests.support.usage_books import Row

SUCCESS = "4242424242424242"
TODAY = date(2026, 11, 23)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Counted:
    """Every HTTP request the store's client sends (the `request_hook`)."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def __call__(self, request) -> None:
        self.requests.append(request.http_request.method)

    def during(self) -> int:
        return len(self.requests)


class Setup:
    def __init__(self, store: TableStore, counted: Counted, clock: Clock) -> None:
        self.store, self.counted, self.clock = store, counted, clock
        self.repo = TableCreditsRepository(store.table(store.names.credits))
        self.gateway = SandboxGateway(
            TableSandboxRecords(store.table(store.names.sandbox_payments)), timeout=10.0
        )
        self.orders = OrderService(self.repo, self.gateway, clock=clock)
        self.charger = UsageCharger(self.repo, clock=clock)
        self.runway = RunwayAlerts(self.repo, clock=clock)
        self.tenants: list[str] = []
        self.job = Job("runway", timedelta(hours=1), self.runway.check)
        self.runner = JobRunner(
            [self.job],
            TableLeases(store.table(store.names.leases), clock),
            self._tenants,
            owner="instance-1",
            errors=(ConcurrencyConflict,),
        )

    async def _tenants(self) -> list[str]:
        return self.tenants

    async def fund(self, tenant: str, dollars: int) -> None:
        held = await self.gateway.seed_card(tenant, SUCCESS, expiry_year=2028)
        card = SavedCard("card-1", held.reference, held.brand, held.last4, 12, 2028)
        await self.repo.create_account(
            Account(tenant, "USD", cards=(card,), default_method_id="card-1")
        )
        outcome = await self.orders.place(
            tenant,
            f"fund-{uuid.uuid4().hex}",
            Money(dollars * 100, "USD"),
            PaymentMethod(MethodKind.CARD, card_id="card-1"),
            actor="alex",
        )
        assert outcome.status == OrderStatus.SUCCEEDED
        self.tenants.append(tenant)

    async def spend(self, tenant: str, dollars: int, day: date) -> None:
        called = datetime(day.year, day.month, day.day, 9, 30, tzinfo=UTC)
        row = Row(f"call-{uuid.uuid4().hex}", dollars * 100, called)
        await self.charger.charge(tenant, [row], source="csv")

    async def requests_of(self, tenant: str) -> tuple[int, list[str]]:
        before = self.counted.during()
        raised = await self.runway.check(tenant)
        return self.counted.during() - before, raised

    async def runway_alerts(self, tenant: str) -> list[str]:
        return [
            e.event_id for e in await self.repo.outbox(tenant) if e.kind == EventKind.RUNWAY_LOW
        ]


@pytest.fixture
async def setup(azurite, table_prefix, table_store):
    counted, clock = Counted(), Clock()
    store = TableStore.from_settings(
        connection_string=azurite.connection_string,
        account_url="",
        prefix=table_prefix,
        request_hook=counted,
    )
    yield Setup(store, counted, clock)
    await store.close()


async def test_a_pass_evaluates_only_what_changed_or_is_due(setup: Setup):
    # Three tenants: one that will run low, one that spends slowly, one that never spends.
    for tenant, dollars in (("low", 500), ("slow", 1_000), ("idle", 500)):
        await setup.fund(tenant, dollars)
    for tenant in ("low", "slow"):
        await setup.spend(tenant, 1, TODAY - timedelta(days=30))
    await setup.spend("slow", 59, TODAY - timedelta(days=1))  # $940 at $2 a day
    # The first pass evaluates everyone once (nothing was evaluated yet).
    assert await setup.runner.run_once(setup.job) == 3
    assert await setup.runway_alerts("low") == []

    # A pass with nothing changed reads each account and stops there.
    for tenant in setup.tenants:
        assert await setup.requests_of(tenant) == (1, [])

    # Usage charged without its evaluation (the instance crashed right after): $140 left at
    # $12 a day. The next pass finds the account changed, and raises the alert once.
    await setup.spend("low", 359, TODAY - timedelta(days=1))
    cost, raised = await setup.requests_of("low")
    assert raised == ["runway_low-14-1"]
    # Read the account, its lots and 91 days of spend; write the account and the alert in
    # one transaction: a handful of requests, whatever the number of calls.
    assert 3 <= cost <= 6, cost
    assert await setup.runner.run_once(setup.job) == 3
    assert await setup.runway_alerts("low") == ["runway_low-14-1"]
    assert await setup.requests_of("low") == (1, [])

    # The next day: the crossed tenant is looked at again (its forecast may come back as busy
    # days leave the window), the others are one read until their next-check day.
    setup.clock.now += timedelta(days=1)
    low = (await setup.repo.get_account("low")).value.runway
    assert low.crossed == (14,) and low.next_check == (TODAY + timedelta(days=1)).isoformat()
    cost, raised = await setup.requests_of("low")
    assert raised == [] and cost > 1
    for tenant in ("slow", "idle"):
        assert await setup.requests_of(tenant) == (1, [])
    # At the latest MAX_DAYS_UNCHECKED later every account is evaluated again.
    idle = (await setup.repo.get_account("idle")).value.runway
    setup.clock.now = datetime.fromisoformat(idle.next_check).replace(tzinfo=UTC)
    cost, _ = await setup.requests_of("idle")
    assert cost > 1
    assert await setup.requests_of("idle") == (1, [])
