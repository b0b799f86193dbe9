"""A period of the books on Azurite: found by binary search on the sequence, read by key range,
and tied to the ledger (its amounts sum to its balance change), whatever the period.

The books are written by the real services with moved clocks (tests/support/history_books.py):
purchases by agreement and by card, calls every month, a lot's expiry and a refund.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from azure.data.tables import UpdateMode

from credits import ledger
from credits.history import History, OrderLookup, Period
from credits.model import Account, EntryKind, LedgerEntry, MethodKind
from storage.audit import AuditLog
from storage.credits_repository import TableCreditsRepository, _account_entity, _entry_entity
from storage.tables import TableStore
from tests.support.history_books import HOSTILE_PO, a_year_and_more, month_start

TODAY = date(2026, 11, 30)


def tenant() -> str:
    return "tenant-" + uuid.uuid4().hex[:8]


def expected_in(entries: list[LedgerEntry], period: Period) -> list[LedgerEntry]:
    return [e for e in entries if period.start <= e.at < period.end]


def balance_before(entries: list[LedgerEntry], seq: int) -> int:
    before = [e for e in entries if e.seq < seq]
    return before[-1].balance_after_minor if before else 0


async def test_each_month_holds_its_entries_and_its_amounts_sum_to_its_balance_change(
    table_store,
):
    tenant_id = tenant()
    books, the_month = await a_year_and_more(table_store, tenant_id, TODAY)
    entries = await books.entries()
    account = (await books.repo.get_account(tenant_id)).value
    history = History(books.repo)
    months = [Period.month_of(month_start(TODAY, back)) for back in range(16, -2, -1)]

    spans = [await history.locate(account, month) for month in months]

    for month, span in zip(months, spans, strict=True):
        inside = expected_in(entries, month)
        assert [e.seq for e in inside] == list(range(span.first, span.last + 1)), month
        assert span.opening_minor == balance_before(entries, span.first)
        assert sum(e.amount_minor for e in inside) == span.change_minor, month
    # Consecutive months tile the books: each starts where the one before ended.
    assert all(a.last + 1 == b.first for a, b in zip(spans, spans[1:], strict=False))
    assert (spans[0].opening_minor, spans[-1].closing_minor) == (0, account.balance_minor)
    # The month of every kind of entry: a purchase, calls, an expiry and a refund.
    span = spans[months.index(the_month)]
    kinds = [e.kind for e in expected_in(entries, the_month)]
    assert kinds == [EntryKind.PURCHASE, EntryKind.EXPIRY, EntryKind.USAGE, EntryKind.REFUND]
    forfeited = -next(e.amount_minor for e in entries if e.kind == EntryKind.EXPIRY)
    calls = 12_345 + 678 + 9
    assert forfeited > 0 and span.change_minor == 50_000 - forfeited - calls - 20_000


async def test_chosen_days_pages_and_chunks(table_store):
    tenant_id = tenant()
    books, the_month = await a_year_and_more(table_store, tenant_id, TODAY)
    entries = await books.entries()
    account = (await books.repo.get_account(tenant_id)).value
    history = History(books.repo)
    days = Period(the_month.first + timedelta(days=1), the_month.first + timedelta(days=4))

    span = await history.locate(account, days)

    inside = expected_in(entries, days)
    assert [e.kind for e in inside] == [EntryKind.EXPIRY, EntryKind.USAGE]
    assert sum(e.amount_minor for e in inside) == span.change_minor
    everything = await history.locate(account, Period(date(2000, 1, 1), TODAY))
    assert everything.count == len(entries)
    # Pages are newest first; chunks oldest first; both cover every entry once.
    pages = [
        await history.page(tenant_id, everything, p, 7) for p in range(math.ceil(len(entries) / 7))
    ]
    assert [e.seq for page in pages for e in page] == [e.seq for e in reversed(entries)]
    assert await history.page(tenant_id, everything, len(pages), 7) == []
    chunks = [chunk async for chunk in history.chunks(tenant_id, everything, size=5)]
    assert [e for chunk in chunks for e in chunk] == entries
    assert max(len(chunk) for chunk in chunks) == 5
    # The orders behind the entries: the purchase by agreement keeps its PO as typed.
    orders = await OrderLookup(books.repo, tenant_id).of(entries)
    assert sorted((o.method.kind, o.method.purchase_order) for o in orders.values()) == [
        (MethodKind.AGREEMENT, HOSTILE_PO),
        (MethodKind.AGREEMENT, "PO-1234"),
        (MethodKind.CARD, ""),
    ]
    assert {e.reference for e in entries if e.kind == EntryKind.PURCHASE} == set(orders)


async def committed(repo: TableCreditsRepository, tenant_id: str, at: datetime) -> None:
    """A credit of 1.00 dated `at`, whatever the entries before it say (a clock behind)."""
    current = await repo.get_account(tenant_id)
    change = ledger.credit(
        current.value, 100, kind=EntryKind.PURCHASE, actor="t", reference="r", at=at
    )
    await repo.commit(current.etag, change)


async def test_an_instance_a_moment_behind_leaves_every_entry_in_exactly_one_day(table_store):
    """Dates come from the clock of the instance that commits: one a few seconds behind dates
    an entry before the one it follows. Such an entry falls in one day or the other, never
    both nor neither, and the next day starts exactly where the day before ends, however the
    ledger grows afterwards."""
    tenant_id = tenant()
    repo = TableCreditsRepository(table_store.table(table_store.names.credits))
    await repo.create_account(Account(tenant_id, "USD"))
    midnight = datetime(2026, 11, 2, tzinfo=UTC)
    offsets = [-50, -3, 2, -1, 4, -2, 30, 6]  # seconds from midnight, in commit order
    for offset in offsets:
        await committed(repo, tenant_id, midnight + timedelta(seconds=offset))
    history = History(repo)
    before, after = (
        Period(date(2026, 11, 1), date(2026, 11, 1)),
        Period(date(2026, 11, 2), date(2026, 11, 2)),
    )

    def spans_of(account):
        return history.locate(account, before), history.locate(account, after)

    account = (await repo.get_account(tenant_id)).value
    first, second = [await s for s in spans_of(account)]
    assert first.last + 1 == second.first
    assert first.count + second.count == len(offsets)
    assert (first.change_minor, second.change_minor) == (100 * first.count, 100 * second.count)
    # The ledger grows (later entries, one more from behind): the edge stays where it was.
    for offset in (3_600, 7_200, 5, 10_800):
        await committed(repo, tenant_id, midnight + timedelta(seconds=offset))
    account = (await repo.get_account(tenant_id)).value
    again = [await s for s in spans_of(account)]
    assert (again[0].first, again[0].last, again[1].first) == (
        first.first,
        first.last,
        second.first,
    )
    assert again[1].last == account.ledger_seq


async def test_finding_a_period_in_a_long_ledger_reads_a_few_entries(azurite, table_prefix):
    """About log2(entries) point reads for each edge of a period, whatever its length."""
    reads: list[str] = []

    def hook(request) -> None:
        if request.http_request.method == "GET":
            reads.append(request.http_request.url)

    store = TableStore.from_settings(
        connection_string=azurite.connection_string,
        account_url="",
        prefix=table_prefix,
        request_hook=hook,
    )
    await store.create_tables()
    try:
        tenant_id = tenant()
        table = store.table(store.names.credits)
        count = 5_000
        start = datetime(2026, 1, 1, tzinfo=UTC)
        # Written straight into the table: one entry an hour, 100 per transaction.
        balance = 0
        for low in range(1, count + 1, 100):
            batch = []
            for seq in range(low, min(low + 100, count + 1)):
                balance += 100
                entry = LedgerEntry(
                    seq, EntryKind.PURCHASE, 100, balance, "lot", "t", "r",
                    start + timedelta(hours=seq),
                )  # fmt: skip
                batch.append(("create", _entry_entity(tenant_id, entry)))
            await table.submit_transaction(batch)
        account = Account(tenant_id, "USD", balance_minor=balance, ledger_seq=count)
        await table.upsert_entity(_account_entity(account), mode=UpdateMode.REPLACE)
        history = History(TableCreditsRepository(table))
        reads.clear()

        span = await history.locate(account, Period(date(2026, 3, 1), date(2026, 3, 31)))

        assert span.count == 31 * 24
        assert span.first == (datetime(2026, 3, 1, tzinfo=UTC) - start) // timedelta(hours=1)
        assert len(reads) <= 2 * (math.ceil(math.log2(count)) + 1) + 2, len(reads)
        assert sum(1 for _ in await history.page(tenant_id, span, 0, 10)) == 10
    finally:
        await store.close()


@pytest.mark.parametrize("limit", [2, 50])
async def test_the_audit_log_of_a_period_newest_first(table_store, limit):
    moments = [datetime(2026, 10, 31, 23, 59, tzinfo=UTC) + timedelta(minutes=m) for m in range(6)]
    clock = iter(moments)
    audit = AuditLog(table_store.table(table_store.names.audit), clock=lambda: next(clock))
    from credits.audit import AuditAction
    from credits.licence_service import Outcome, UserResult

    await audit.record("t", "a", AuditAction.AUTO_RECHARGE, {"enabled": False})  # Oct 31
    await audit.write_licence_change("t", "a", "assign", [UserResult("u", "Ann", Outcome.ASSIGNED)])
    for _ in range(4):
        await audit.record("t", "b", AuditAction.ALERT_SETTINGS, {"kinds_off": []})
    november = Period(date(2026, 11, 1), date(2026, 11, 1))

    found = await audit.between("t", november.start, november.end, limit)

    assert [e.at for e in found] == list(reversed(moments[1:]))[:limit]
    if limit > 5:
        licence = found[-1]
        assert (licence.action, licence.details["results"][0]["display_name"]) == (
            "licence.assign",
            "Ann",
        )
    assert await audit.between("other", november.start, november.end, limit) == []
