"""Processor events applied to the books on Azurite, by two instances at once.

Each instance is its own Table client, repository, sandbox gateway and services over the same
tables, as two App Service instances would be. Events are built as the gateways build them
(`PaymentEvent`); the books are checked for conservation after every scenario: balance = lot
remainders = ledger sum, and what was reversed = what was taken back + what is owed.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from credits import ledger
from credits.model import (
    Account,
    EntryKind,
    EventKind,
    MethodKind,
    OrderStatus,
    PaymentMethod,
    SavedCard,
)
from credits.money import Money
from credits.orders import OrderService
from credits.payment_events import PaymentEvents, Settled
from credits.payments import PaymentEvent, PaymentEventKind
from credits.usage_charging import UsageCharger
from storage.credits_repository import TableCreditsRepository
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from tests.support.usage_books import Row

TENANT = "tenant-" + uuid.uuid4().hex[:8]
CUSTOMER = "cus_sandbox_test"
CARD = PaymentMethod(MethodKind.CARD, card_id="card-1")
NEW_CARD = PaymentMethod(MethodKind.NEW_CARD, save_card=True)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Instance:
    store: TableStore
    repo: TableCreditsRepository
    gateway: SandboxGateway
    orders: OrderService
    events: PaymentEvents
    charger: UsageCharger


@pytest.fixture
async def instances(azurite, table_prefix, table_store):
    made = []
    for _ in range(2):
        store = TableStore.from_settings(
            connection_string=azurite.connection_string, account_url="", prefix=table_prefix
        )
        repo = TableCreditsRepository(store.table(store.names.credits))
        gateway = SandboxGateway(TableSandboxRecords(store.table(store.names.sandbox_payments)))
        orders = OrderService(repo, gateway, clock=now)
        made.append(
            Instance(
                store,
                repo,
                gateway,
                orders,
                PaymentEvents(repo, orders, clock=now),
                UsageCharger(repo, clock=now),
            )
        )
    yield made
    for instance in made:
        await instance.store.close()


async def open_account(one: Instance) -> None:
    held = await one.gateway.seed_card(TENANT, "4242424242424242")
    card = SavedCard("card-1", held.reference, held.brand, held.last4, 12, held.expiry_year)
    await one.repo.create_account(
        Account(TENANT, "USD", cards=(card,), default_method_id="card-1", payment_customer=CUSTOMER)
    )


async def buy(one: Instance, minor: int, key: str | None = None) -> str:
    key = key or uuid.uuid4().hex
    outcome = await one.orders.place(TENANT, key, Money(minor, "USD"), CARD, actor="alex")
    assert outcome.status == OrderStatus.SUCCEEDED
    return key


def reversal(kind: PaymentEventKind, key: str, minor: int) -> PaymentEvent:
    return PaymentEvent(
        kind, "evt_" + uuid.uuid4().hex, TENANT, key, customer=CUSTOMER, amount_minor=minor,
        currency="USD", reference="pi_x",
    )  # fmt: skip


async def books(repo: TableCreditsRepository):
    account = (await repo.get_account(TENANT)).value
    lots = await repo.list_lots(TENANT)
    entries = await repo.all_entries(TENANT)
    ledger.check_invariant(account, lots, entries)
    return account, lots, entries


async def test_one_refund_delivered_ten_times_to_two_instances_reverses_once(instances):
    one, two = instances
    await open_account(one)
    key = await buy(one, 10_000)
    event = reversal(PaymentEventKind.REFUNDED, key, 4_000)

    results = await asyncio.gather(*((one, two)[i % 2].events.apply(event) for i in range(10)))

    assert sorted(r.result for r in results).count(Settled.REVERSED) == 1
    assert {r.result for r in results} == {Settled.REVERSED, Settled.UNCHANGED}
    account, lots, entries = await books(one.repo)
    assert (account.balance_minor, account.owed_minor) == (6_000, 0)
    assert [(e.kind, e.amount_minor) for e in entries] == [
        (EntryKind.PURCHASE, 10_000),
        (EntryKind.REFUND, -4_000),
    ]
    order = (await one.repo.get_order(TENANT, key)).value
    assert (order.status, order.refunded_minor) == (OrderStatus.SUCCEEDED, 4_000)
    alerts = [e for e in await one.repo.outbox(TENANT) if e.kind == EventKind.PAYMENT_REVERSED]
    assert [(a.data["taken_minor"], a.data["owed_minor"]) for a in alerts] == [(4_000, 0)]


async def test_refunds_out_of_order_end_at_the_latest_total(instances):
    one, two = instances
    await open_account(one)
    key = await buy(one, 10_000)
    # Stripe's charge.refunded carries the running total: 1,000 then 3,000, delivered reversed.
    assert (await two.events.apply(reversal(PaymentEventKind.REFUNDED, key, 3_000))).result == (
        Settled.REVERSED
    )
    late = await one.events.apply(reversal(PaymentEventKind.REFUNDED, key, 1_000))
    assert late.result == Settled.UNCHANGED
    account, _, _ = await books(one.repo)
    assert account.balance_minor == 7_000


async def test_reversals_usage_and_purchases_at_once_keep_the_books(instances):
    one, two = instances
    await open_account(one)
    spent_key = await buy(one, 5_000)
    kept_key = await buy(one, 8_000)
    await one.charger.charge(TENANT, [Row("early-call", 4_000)], source="csv")  # from spent_key

    await asyncio.gather(
        one.events.apply(reversal(PaymentEventKind.DISPUTED, spent_key, 5_000)),
        two.events.apply(reversal(PaymentEventKind.REFUNDED, kept_key, 2_500)),
        one.charger.charge(TENANT, [Row(f"call-{i}", 300) for i in range(5)], source="csv"),
        two.charger.charge(TENANT, [Row(f"other-{i}", 200) for i in range(5)], source="csv"),
        buy(two, 1_000),
        buy(one, 1_200),
        two.events.apply(reversal(PaymentEventKind.DISPUTED, spent_key, 5_000)),  # a repeat
    )

    account, lots, entries = await books(two.repo)
    reversed_total = 5_000 + 2_500
    taken = -sum(e.amount_minor for e in entries if e.kind in (EntryKind.REFUND, EntryKind.DISPUTE))
    assert taken + account.owed_minor == reversed_total
    charged = -sum(e.amount_minor for e in entries if e.kind == EntryKind.USAGE)
    assert account.balance_minor == 5_000 + 8_000 + 1_000 + 1_200 - charged - taken
    orders = {key: (await two.repo.get_order(TENANT, key)).value for key in (spent_key, kept_key)}
    assert (orders[spent_key].disputed_minor, orders[kept_key].refunded_minor) == (5_000, 2_500)
    alerts = [e for e in await two.repo.outbox(TENANT) if e.kind == EventKind.PAYMENT_REVERSED]
    assert len(alerts) == 2


async def test_a_payment_event_ten_times_on_two_instances_books_a_hosted_page_once(instances):
    one, two = instances
    await open_account(one)
    placed = await one.orders.place(TENANT, "order-p", Money(7_000, "USD"), NEW_CARD, actor="alex")
    assert placed.status == OrderStatus.PENDING and placed.checkout is not None
    session = placed.checkout.reference
    page = await one.gateway.complete(
        TENANT, session, number="5555555555554444", expiry_month=12, expiry_year=2034,
        cvc="123", holder_name="Alex",
    )  # fmt: skip
    assert page.event is not None

    results = await asyncio.gather(*((one, two)[i % 2].events.apply(page.event) for i in range(10)))

    assert [r.result for r in results].count(Settled.BOOKED) == 1
    account, lots, entries = await books(one.repo)
    assert (account.balance_minor, len(lots), len(entries)) == (7_000, 1, 1)
    assert [c.last4 for c in account.cards] == ["4242", "4444"]  # the new card was kept
    order = (await one.repo.get_order(TENANT, "order-p")).value
    assert order.method.card_id == account.cards[1].id and order.checkout_reference == session
    # The recovery job afterwards finds nothing pending, and asking again books nothing.
    assert await two.orders.recover(TENANT, older_than=timedelta(0)) == []


def event(kind=PaymentEventKind.PAID, tenant=TENANT, key="pending", **fields) -> PaymentEvent:
    return PaymentEvent(
        kind,
        "evt_" + uuid.uuid4().hex,
        tenant,
        key,
        **{"amount_minor": 5_000, "currency": "USD", **fields},
    )


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (event(tenant="tenant-unknown"), "unknown tenant"),
        (event(key="never-placed"), "never placed"),
        (event(customer="cus_another_tenants"), "not the tenant's"),
        (event(PaymentEventKind.REFUNDED, customer=CUSTOMER), "not booked"),
        (event(amount_minor=9_999), "not the order's"),
        (event(currency="EUR"), "not the order's"),
        (
            event(PaymentEventKind.CHECKOUT_EXPIRED, checkout="cs_sandbox_another"),
            "not the order's",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else value.kind.value,
)
async def test_events_that_are_not_believable_change_nothing(instances, event, why):
    one, _ = instances
    await open_account(one)
    await one.orders.place(TENANT, "pending", Money(5_000, "USD"), NEW_CARD, actor="alex")
    before = await books(one.repo)

    settlement = await one.events.apply(event)

    assert settlement.result == Settled.IGNORED and why in settlement.why
    assert await books(one.repo) == before
    assert (await one.repo.get_order(TENANT, "pending")).value.status == OrderStatus.PENDING
