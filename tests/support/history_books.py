"""A tenant's books written over more than a year on Azurite, for the history tests.

The real domain services (orders, usage charging, expiry, processor events) on the real Table
repository, each with a clock the test moves, so that every kind of ledger entry lands on a
chosen day: purchases by Enterprise Agreement (with a PO number) and by a saved card, calls,
the expiry of a year-old lot, and a partial refund.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from credits.expiry import ExpiryJob
from credits.history import Period
from credits.model import (
    Account,
    EntryKind,
    LedgerEntry,
    MethodKind,
    OrderStatus,
    PaymentMethod,
    SavedCard,
)
from credits.money import Money
from credits.orders import OrderService
from credits.payment_events import PaymentEvents
from credits.payments import PaymentEvent, PaymentEventKind
from credits.usage_charging import UsageCharger
from storage.credits_repository import TableCreditsRepository
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from tests.support.usage_books import Row

CUSTOMER = "cus_history_test"
AGREEMENT = "EA-4471-2210"
# What an admin may type as a PO number: a spreadsheet would run it as a formula.
HOSTILE_PO = "=cmd|' /C calc'!A0"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Books:
    """One tenant's books and the services that write them, all on one clock."""

    tenant_id: str
    repo: TableCreditsRepository
    gateway: SandboxGateway
    clock: Clock
    orders: OrderService = field(init=False)
    charger: UsageCharger = field(init=False)
    events: PaymentEvents = field(init=False)
    expiry: ExpiryJob = field(init=False)

    def __post_init__(self) -> None:
        self.orders = OrderService(self.repo, self.gateway, clock=self.clock)
        self.charger = UsageCharger(self.repo, clock=self.clock)
        self.events = PaymentEvents(self.repo, self.orders, clock=self.clock)
        self.expiry = ExpiryJob(self.repo, clock=self.clock)

    @classmethod
    async def open(cls, store: TableStore, tenant_id: str, on: datetime) -> Books:
        clock = Clock(on)
        repo = TableCreditsRepository(store.table(store.names.credits))
        gateway = SandboxGateway(
            TableSandboxRecords(store.table(store.names.sandbox_payments)), now=clock
        )
        held = await gateway.seed_card(tenant_id, "4242424242424242", expiry_year=on.year + 5)
        card = SavedCard("card-1", held.reference, held.brand, held.last4, 12, held.expiry_year)
        await repo.create_account(
            Account(
                tenant_id,
                "USD",
                cards=(card,),
                agreements=(AGREEMENT,),
                default_method_id="card-1",
                payment_customer=CUSTOMER,
            )
        )
        return cls(tenant_id, repo, gateway, clock)

    def at(self, moment: datetime) -> None:
        self.clock.now = moment

    async def buy_by_agreement(self, minor: int, po: str = "") -> str:
        method = PaymentMethod(MethodKind.AGREEMENT, agreement_number=AGREEMENT, purchase_order=po)
        return await self._buy(minor, method)

    async def buy_by_card(self, minor: int) -> str:
        return await self._buy(minor, PaymentMethod(MethodKind.CARD, card_id="card-1"))

    async def _buy(self, minor: int, method: PaymentMethod) -> str:
        key = uuid.uuid4().hex
        outcome = await self.orders.place(
            self.tenant_id, key, Money(minor, "USD"), method, actor="alex"
        )
        assert outcome.status == OrderStatus.SUCCEEDED
        return key

    async def calls(self, *minors: int) -> None:
        rows = [Row(uuid.uuid4().hex, minor, self.clock.now) for minor in minors]
        await self.charger.charge(self.tenant_id, rows, source="csv")

    async def refund(self, key: str, total_minor: int) -> None:
        event = PaymentEvent(
            PaymentEventKind.REFUNDED,
            "evt_" + uuid.uuid4().hex,
            self.tenant_id,
            key,
            customer=CUSTOMER,
            amount_minor=total_minor,
            currency="USD",
            reference="pi_history",
        )
        await self.events.apply(event)

    async def entries(self) -> list[LedgerEntry]:
        return await self.repo.all_entries(self.tenant_id)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def month_start(day: date, months_back: int) -> date:
    """The first day of the month `months_back` months before `day`'s."""
    month = day.year * 12 + day.month - 1 - months_back
    return date(month // 12, month % 12 + 1, 1)


async def a_year_and_more(store: TableStore, tenant_id: str, today: date) -> tuple[Books, Period]:
    """Books from fourteen months ago to last month; the month two months ago ("the month")
    holds a purchase by card, calls, the expiry of a lot bought a year before, and a refund.
    Returns the books and that month."""
    first = month_start(today, 14)
    the_month = Period.month_of(month_start(today, 2))
    books = await Books.open(store, tenant_id, noon(first))
    # Fourteen months ago: funds by agreement, with a PO a spreadsheet would run.
    await books.buy_by_agreement(100_000, po=HOSTILE_PO)
    books.at(noon(first + timedelta(days=3)))
    await books.calls(1_250, 990, 4_321)
    # Every month after: some calls.
    for back in range(13, 2, -1):
        books.at(noon(month_start(today, back) + timedelta(days=9)))
        await books.calls(700 + back, 333)
    # The month: a purchase by card, calls, the first lot's expiry, a partial refund.
    start = the_month.first
    books.at(datetime.combine(start, time(9), UTC))
    card_key = await books.buy_by_card(50_000)
    # A year and a day or two after the first purchase (a leap day or not), early morning.
    books.at(datetime.combine(first + timedelta(days=365 + 2), time(1), UTC))
    assert the_month.start <= books.clock.now < noon(start + timedelta(days=4))
    report = await books.expiry.run(tenant_id)
    assert report.expired_lots == 1
    books.at(noon(start + timedelta(days=4)))
    await books.calls(12_345, 678, 9)
    books.at(noon(start + timedelta(days=20)))
    await books.refund(card_key, 20_000)
    # Last month: a purchase by agreement and calls.
    books.at(noon(month_start(today, 1) + timedelta(days=2)))
    await books.buy_by_agreement(30_000, po="PO-1234")
    await books.calls(2_500)
    kinds = {e.kind for e in await books.entries() if the_month.start <= e.at < the_month.end}
    assert kinds == {EntryKind.PURCHASE, EntryKind.USAGE, EntryKind.EXPIRY, EntryKind.REFUND}
    return books, the_month
