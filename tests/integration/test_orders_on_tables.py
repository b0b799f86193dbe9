"""Placing orders against Azurite: conservation under retries, concurrency and timeouts.

The gateway is the embedded sandbox (the product's own adapter, persisting in its table); the
ledger is the real Table repository. Nothing here is mocked.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from credits import ledger
from credits.model import (
    Account,
    EntryKind,
    MethodKind,
    Order,
    OrderStatus,
    PaymentMethod,
    SavedCard,
)
from credits.money import Money
from credits.orders import OrderRejected, OrderService
from credits.payments import ChargeRequest, Payment, PaymentState
from storage.credits_repository import TableCreditsRepository
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords

TENANT = "tenant-" + uuid.uuid4().hex[:8]
SUCCESS = "4242424242424242"
EXPIRED = "4000000000000069"
DECLINED = "4000000000000002"


@pytest.fixture
def records(table_store):
    return TableSandboxRecords(table_store.table(table_store.names.sandbox_payments))


@pytest.fixture
def gateway(records):
    # Generous: 50 concurrent charges on a shared machine must not time out by accident.
    return SandboxGateway(records, timeout=10.0)


@pytest.fixture
def repo(table_store):
    return TableCreditsRepository(table_store.table(table_store.names.credits))


@pytest.fixture
def service(repo, gateway):
    return OrderService(repo, gateway, clock=lambda: datetime.now(UTC))


async def _account_with_card(repo, gateway, number=SUCCESS, tenant=TENANT) -> Account:
    held = await gateway.seed_card(tenant, number)
    card = SavedCard(
        "card-1", held.reference, held.brand, held.last4, held.expiry_month, held.expiry_year
    )
    account = Account(
        tenant, "USD", cards=(card,), agreements=("EA-1001", "EA-2002"), default_method_id="card-1"
    )
    return (await repo.create_account(account)).value


async def _books(repo, tenant=TENANT):
    account = (await repo.get_account(tenant)).value
    lots = await repo.list_lots(tenant)
    entries = await repo.all_entries(tenant)
    ledger.check_invariant(account, lots, entries)
    return account, lots, entries


CARD = PaymentMethod(MethodKind.CARD, card_id="card-1")


async def test_a_purchase_books_one_lot_and_one_entry(repo, gateway, service):
    await _account_with_card(repo, gateway)
    outcome = await service.place(TENANT, "key-1", Money(50000, "USD"), CARD, actor="alex")
    assert outcome.status == OrderStatus.SUCCEEDED
    assert outcome.account.balance_minor == 50000
    account, lots, entries = await _books(repo)
    assert account.balance_minor == 50000
    assert [lot.amount_minor for lot in lots] == [50000]
    assert lots[0].expires_at == ledger.expiry_of(lots[0].purchased_at)
    assert [(e.kind.value, e.amount_minor, e.reference) for e in entries] == [
        ("purchase", 50000, "key-1")
    ]


async def test_fifty_concurrent_orders_with_distinct_keys_all_count(repo, gateway, service):
    await _account_with_card(repo, gateway)
    amounts = [5000 + i * 100 for i in range(50)]
    outcomes = await asyncio.gather(
        *(
            service.place(TENANT, f"key-{i}", Money(a, "USD"), CARD, actor="alex")
            for i, a in enumerate(amounts)
        )
    )
    assert all(o.status == OrderStatus.SUCCEEDED for o in outcomes)
    account, lots, entries = await _books(repo)
    assert account.balance_minor == sum(amounts)
    assert len(lots) == 50 and len(entries) == 50


async def test_one_key_twenty_times_concurrently_is_one_order(repo, gateway, service, records):
    await _account_with_card(repo, gateway)
    outcomes = await asyncio.gather(
        *(
            service.place(TENANT, "same-key", Money(70000, "USD"), CARD, actor="alex")
            for _ in range(20)
        )
    )
    assert {o.status for o in outcomes} == {OrderStatus.SUCCEEDED}
    assert {o.order.gateway_reference for o in outcomes} != {""}
    assert len({o.order.gateway_reference for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    account, lots, entries = await _books(repo)
    assert account.balance_minor == 70000
    assert len(lots) == 1 and len(entries) == 1
    charges = [r for r in await records.list(TENANT, "charge:")]
    assert len(charges) == 1


async def test_the_same_key_with_another_amount_is_refused(repo, gateway, service):
    await _account_with_card(repo, gateway)
    await service.place(TENANT, "key-x", Money(50000, "USD"), CARD, actor="alex")
    with pytest.raises(OrderRejected):
        await service.place(TENANT, "key-x", Money(60000, "USD"), CARD, actor="alex")
    account, _, _ = await _books(repo)
    assert account.balance_minor == 50000


@pytest.mark.parametrize("number", [EXPIRED, DECLINED])
async def test_a_declined_card_changes_no_balance(repo, gateway, service, number):
    await _account_with_card(repo, gateway, number=number)
    outcome = await service.place(TENANT, "key-d", Money(50000, "USD"), CARD, actor="alex")
    assert outcome.status == OrderStatus.FAILED
    assert outcome.order.failure_reason in ("expired_card", "declined")
    account, lots, entries = await _books(repo)
    assert (account.balance_minor, lots, entries) == (0, [], [])
    # Placing it again answers the same failure, and still moves nothing.
    again = await service.place(TENANT, "key-d", Money(50000, "USD"), CARD, actor="alex")
    assert again.status == OrderStatus.FAILED and again.replayed
    assert (await _books(repo))[0].balance_minor == 0


async def test_a_gateway_timeout_leaves_a_pending_order_that_recovery_books_once(repo, records):
    hang = "4000000000000259"
    # A client timeout short enough for the test; the hang card answers later than any.
    gateway = SandboxGateway(records, timeout=0.3)
    service = OrderService(repo, gateway, clock=lambda: datetime.now(UTC))
    await _account_with_card(repo, gateway, number=hang)
    outcome = await service.place(TENANT, "key-t", Money(50000, "USD"), CARD, actor="alex")
    assert outcome.status == OrderStatus.PENDING
    assert (await _books(repo))[0].balance_minor == 0

    recovered = await asyncio.gather(
        service.recover(TENANT, older_than=timedelta(0)),
        service.recover(TENANT, older_than=timedelta(0)),
    )
    statuses = [o.status for batch in recovered for o in batch]
    assert statuses and set(statuses) == {OrderStatus.SUCCEEDED}
    account, lots, entries = await _books(repo)
    assert account.balance_minor == 50000 and len(lots) == 1 and len(entries) == 1
    assert len(await records.list(TENANT, "charge:")) == 1
    assert await service.recover(TENANT, older_than=timedelta(0)) == []


async def test_agreements_must_belong_to_the_tenant(repo, gateway, service):
    await _account_with_card(repo, gateway)
    ea = PaymentMethod(MethodKind.AGREEMENT, agreement_number="EA-1001", purchase_order="PO-7")
    outcome = await service.place(TENANT, "key-ea", Money(100000, "USD"), ea, actor="alex")
    assert outcome.status == OrderStatus.SUCCEEDED
    with pytest.raises(OrderRejected):
        await service.place(
            TENANT,
            "key-ea2",
            Money(100000, "USD"),
            PaymentMethod(MethodKind.AGREEMENT, agreement_number="EA-9999"),
            actor="alex",
        )
    assert (await _books(repo))[0].balance_minor == 100000


async def test_tenants_never_see_each_others_money(repo, gateway, service):
    other = TENANT + "-other"
    await _account_with_card(repo, gateway)
    await _account_with_card(repo, gateway, tenant=other)
    await service.place(TENANT, "k", Money(50000, "USD"), CARD, actor="alex")
    await service.place(other, "k", Money(90000, "USD"), CARD, actor="bob")
    assert (await _books(repo))[0].balance_minor == 50000
    assert (await _books(repo, other))[0].balance_minor == 90000


# --- hosted pages, and what the recovery job does with them -----------------------------------

AUTHENTICATE = "4000002760003184"
NEW_CARD = PaymentMethod(MethodKind.NEW_CARD, save_card=True)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(repo, records, clock):
    """The sandbox and the orders on one clock the test moves."""
    gateway = SandboxGateway(records, now=clock)
    return gateway, OrderService(repo, gateway, clock=clock)


async def test_a_new_card_order_waits_for_its_page_and_the_same_key_gives_the_same_page(
    repo, timed, records
):
    gateway, service = timed
    await _account_with_card(repo, gateway)

    first = await service.place(TENANT, "key-n", Money(50000, "USD"), NEW_CARD, actor="alex")
    again = await service.place(TENANT, "key-n", Money(50000, "USD"), NEW_CARD, actor="alex")

    assert first.status == again.status == OrderStatus.PENDING and again.replayed
    assert first.checkout is not None and again.checkout == first.checkout
    stored = (await repo.get_order(TENANT, "key-n")).value
    assert stored.checkout_reference == first.checkout.reference
    assert len(await records.list(TENANT, "session:")) == 1
    assert (await _books(repo))[0].balance_minor == 0


async def test_a_saved_card_whose_bank_wants_its_cardholder_gets_a_page_for_the_same_order(
    repo, timed
):
    gateway, service = timed
    await _account_with_card(repo, gateway, number=AUTHENTICATE)

    outcome = await service.place(TENANT, "key-a", Money(50000, "USD"), CARD, actor="alex")

    assert outcome.status == OrderStatus.PENDING and outcome.checkout is not None
    page = await gateway.complete(
        TENANT, outcome.checkout.reference, number=AUTHENTICATE, expiry_month=12,
        expiry_year=2034, cvc="123", holder_name="Alex",
    )  # fmt: skip
    order = await repo.get_order(TENANT, "key-a")
    booked = await service.settle(
        order, Payment(PaymentState.SUCCEEDED, page.event.reference, 50000, "USD")
    )
    assert booked.status == OrderStatus.SUCCEEDED
    assert (await _books(repo))[0].balance_minor == 50000


async def test_recovery_never_opens_a_page_nobody_would_see(repo, timed, records, clock):
    gateway, service = timed
    await _account_with_card(repo, gateway, number=AUTHENTICATE)
    await _pending(repo, "key-r", CARD, clock)  # its charge timed out, or never left

    [outcome] = await service.recover(TENANT, older_than=timedelta(0))

    assert (outcome.status, outcome.order.failure_reason) == (
        OrderStatus.FAILED,
        "authentication_required",
    )
    assert await records.list(TENANT, "session:") == []


async def test_a_new_card_order_whose_page_was_never_made_fails_on_recovery(
    repo, timed, records, clock
):
    gateway, service = timed
    await _account_with_card(repo, gateway)
    await _pending(repo, "key-p", NEW_CARD, clock)

    [outcome] = await service.recover(TENANT, older_than=timedelta(0))

    assert (outcome.status, outcome.order.failure_reason) == (
        OrderStatus.FAILED,
        "checkout_expired",
    )
    assert await records.list(TENANT, "session:") == []


async def test_a_page_left_open_until_it_expires_fails_its_order(repo, timed, clock):
    gateway, service = timed
    await _account_with_card(repo, gateway)
    await service.place(TENANT, "key-e", Money(50000, "USD"), NEW_CARD, actor="alex")
    [waiting] = await service.recover(TENANT, older_than=timedelta(0))  # its page is still open
    assert waiting.status == OrderStatus.PENDING and waiting.checkout is not None

    clock.now += timedelta(hours=1, seconds=1)
    [outcome] = await service.recover(TENANT, older_than=timedelta(0))

    assert (outcome.status, outcome.order.failure_reason) == (
        OrderStatus.FAILED,
        "checkout_expired",
    )


@pytest.mark.parametrize("charged", [True, False])
async def test_a_charge_pending_for_more_than_a_day_is_looked_up_never_replayed(
    repo, timed, records, clock, charged
):
    gateway, service = timed
    account = await _account_with_card(repo, gateway)
    await _pending(repo, "key-old", CARD, clock)
    if charged:  # the charge went through, its answer was lost
        await gateway.charge_saved_card(
            ChargeRequest(
                TENANT, "", account.card("card-1").token, "key-old", 50000, "USD",
                "Communications Credits purchase",
            )
        )  # fmt: skip
    clock.now += timedelta(hours=24)

    [outcome] = await service.recover(TENANT, older_than=timedelta(0))

    expected = OrderStatus.SUCCEEDED if charged else OrderStatus.FAILED
    assert outcome.status == expected
    assert len(await records.list(TENANT, "charge:")) == (1 if charged else 0)
    assert (await _books(repo))[0].balance_minor == (50000 if charged else 0)


async def _pending(repo, key: str, method: PaymentMethod, clock: Clock) -> None:
    now = clock.now - timedelta(minutes=5)
    await repo.insert_order(
        Order(
            TENANT, key, 50000, "USD", method, EntryKind.PURCHASE, "alex", OrderStatus.PENDING,
            now, now,
        )
    )  # fmt: skip
