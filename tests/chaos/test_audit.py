"""The chaos audit can fail: sound books pass every check, and each kind of breach fails its own.

Books are made on Azurite by the real services (an order through the sandbox gateway, a usage
charge, an alert delivery), then one row is broken at a time, as a bug would break it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient

from credits.alerts import Delivery, DeliveryState
from credits.model import Account, EventKind, MethodKind, PaymentMethod, SavedCard
from credits.money import Money
from credits.orders import OrderService
from credits.usage_charging import UsageCharger
from storage.alerts import TableAlertStore, delivery_row_key
from storage.credits_repository import TableCreditsRepository
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from tests.chaos.audit import Evidence, Tables, audit
from tests.chaos.driver import ImportRun
from tests.support.usage_books import Row

TENANT = "tenant-audit"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@dataclass
class Books:
    tables: Tables
    credits: object
    sandbox: object
    alerts: object
    delivery: Delivery


@pytest.fixture
async def books(azurite, table_store, table_prefix):
    store = table_store
    repo = TableCreditsRepository(store.table(store.names.credits))
    records = TableSandboxRecords(store.table(store.names.sandbox_payments))
    gateway = SandboxGateway(records)
    held = await gateway.seed_card(TENANT, "4242424242424242", expiry_year=NOW.year + 3)
    card = SavedCard("card-1", held.reference, held.brand, held.last4, 12, NOW.year + 3)
    await repo.create_account(Account(TENANT, "USD", cards=(card,), default_method_id="card-1"))
    await OrderService(repo, gateway, clock=lambda: NOW).place(
        TENANT, "order-1", Money(10_000, "USD"), PaymentMethod(MethodKind.CARD, card_id="card-1"),
        actor="alex",
    )  # fmt: skip
    await UsageCharger(repo, clock=lambda: NOW).charge(TENANT, [Row("u-1", 2_500)], source="t")
    alerts = store.table(store.names.alerts)
    assert await repo.outbox(TENANT) == []  # no threshold crossed; the delivery stands for one
    delivery = Delivery(
        TENANT, "balance_zero-9", EventKind.BALANCE_ZERO, NOW, {}, "a:chat", "personal", "en",
        state=DeliveryState.DELIVERED,
    )  # fmt: skip
    await TableAlertStore(alerts).create_deliveries([delivery])
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    yield Books(
        Tables(service, table_prefix),
        store.table(store.names.credits),
        store.table(store.names.sandbox_payments),
        alerts,
        delivery,
    )
    await service.close()


def evidence(books: Books, **changes) -> Evidence:
    fields = {
        "tenants": [TENANT],
        "accepted": {books.delivery.message_id: 1},
        "killed_mid_send": set(),
        "imports": [],
        "pressed": [(TENANT, "order-1")],
        "removed": set(),
        "logs": [],
    }
    return Evidence(**{**fields, **changes})


async def failed(books: Books, seen: Evidence) -> list[str]:
    return [check.name.split(":")[0] for check in await audit(books.tables, seen, Counter())
            if not check.ok]  # fmt: skip


async def test_sound_books_pass_every_check(books):
    checks = await audit(books.tables, evidence(books), Counter())
    assert [c.problems for c in checks if not c.ok] == []
    assert len(checks) == 10


async def test_a_lot_that_lost_money_breaks_the_ledger(books):
    [lot] = [e async for e in books.credits.query_entities("RowKey ge 'lot-' and RowKey lt 'lot.'")]
    await books.credits.update_entity(
        {"PartitionKey": lot["PartitionKey"], "RowKey": lot["RowKey"], "RemainingMinor": 1},
        mode=UpdateMode.MERGE,
    )
    assert (await failed(books, evidence(books)))[0].startswith("ledger invariant")


async def test_a_charge_never_booked_is_found(books):
    charge = {"kind": "charge", "outcome": {"status": "succeeded", "gateway_reference": "ch"},
              "request": {"amount_minor": 5_000}}  # fmt: skip
    await TableSandboxRecords(books.sandbox).insert(TENANT, "charge:lost-order", charge)
    assert (await failed(books, evidence(books)))[0].startswith("each gateway charge")


async def test_a_call_charged_twice_is_found(books):
    [bucket] = [
        e async for e in books.credits.query_entities("RowKey ge 'ids-' and RowKey lt 'ids.'")
    ]
    day = bucket["RowKey"][:-4]
    await books.credits.create_entity(  # the same call kept again in a second bucket of its day
        {"PartitionKey": TENANT, "RowKey": f"{day}0001", "Ids": bytes(bucket["Ids"])}
    )
    assert (await failed(books, evidence(books)))[0].startswith("each UsageId")


async def test_a_day_charged_apart_from_the_ledger_is_found(books):
    [spend] = [
        e async for e in books.credits.query_entities("RowKey ge 'spend-' and RowKey lt 'spend.'")
    ]
    await books.credits.update_entity(
        {"PartitionKey": TENANT, "RowKey": spend["RowKey"], "ChargedMinor": 5_000},
        mode=UpdateMode.MERGE,
    )
    assert (await failed(books, evidence(books)))[0].startswith("each UsageId")


async def test_an_alert_posted_twice_or_unconfirmed_without_a_kill_is_found(books):
    twice = evidence(books, accepted={books.delivery.message_id: 2})
    assert (await failed(books, twice))[0].startswith("each alert message")
    row = {"PartitionKey": TENANT, "RowKey": delivery_row_key(books.delivery),
           "State": "unconfirmed"}  # fmt: skip
    await books.alerts.update_entity(row, mode=UpdateMode.MERGE)
    assert (await failed(books, evidence(books, accepted={})))[0].startswith("each alert")
    killed = evidence(books, accepted={}, killed_mid_send={books.delivery.message_id})
    assert await failed(books, killed) == []


async def test_a_failed_import_and_an_invariant_violation_in_a_log_are_found(books, tmp_path):
    body = b"UsageId\r\n"
    run = ImportRun("http", TENANT, "x.csv", body, "failed", "HTTP 500")
    assert (await failed(books, evidence(books, imports=[run])))[0].startswith("every import")
    log = tmp_path / "instance-a.log"
    log.write_text("credits.ledger.InvariantViolation: lots are 959 short of the balance\n")
    assert (await failed(books, evidence(books, logs=[log])))[0].startswith("no invariant")


def test_message_ids_come_back_from_row_keys():
    from tests.chaos.audit import _message_id

    delivery = Delivery(TENANT, "e", EventKind.BALANCE_ZERO, NOW, {}, "a:x", "personal", "en")
    assert _message_id({"RowKey": delivery_row_key(delivery)}) == delivery.message_id
