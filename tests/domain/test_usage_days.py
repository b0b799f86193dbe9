"""The packed day buckets and the plan of a batch of calls, pure (no storage)."""

from __future__ import annotations

import uuid
from array import array
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credits import ledger
from credits.model import Account, EntryKind
from credits.usage_charging import DayRows, plan_calls
from credits.usage_days import (
    ID_BYTES,
    ConsistencyError,
    DayCache,
    DayUsage,
    IdBucket,
    IdTable,
    append,
    most_ids_within,
    read_days,
    runs,
    usage_key,
    write_cost,
)

DAY = date(2026, 11, 1)
NOON = int(datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp())

ids16 = st.binary(min_size=ID_BYTES, max_size=ID_BYTES)


def test_a_guid_is_kept_as_its_own_16_bytes_in_either_case():
    guid = uuid.uuid4()
    assert usage_key(str(guid)) == guid.bytes
    assert usage_key(str(guid).upper()) == guid.bytes


def test_other_ids_are_hashed_to_16_bytes_without_colliding_with_guids():
    keys = {usage_key(text) for text in ("u-00001", "u-00002", "x", "", "0" * 36, "g" * 36)}
    assert len(keys) == 6 and all(len(key) == ID_BYTES for key in keys)
    almost = "0123456789abcdef0123456789abcdef0123"  # 36 characters, not a GUID
    assert usage_key(almost) != bytes.fromhex(almost[:32])


@given(st.lists(ids16, max_size=300), st.lists(ids16, max_size=50))
def test_the_id_table_is_a_set(added, probed):
    table = IdTable()
    model: set[bytes] = set()
    for key in added:
        table.add(key)
        model.add(key)
        assert key in table
    assert len(table) == len(model)
    for key in [*probed, *added, bytes(ID_BYTES)]:
        assert (key in table) == (key in model)


def test_the_all_zero_id_is_an_id_like_any_other():
    table = IdTable()
    assert bytes(ID_BYTES) not in table
    table.add(bytes(ID_BYTES))
    assert bytes(ID_BYTES) in table and len(table) == 1


def _packed(count: int, seed: int = 0) -> bytes:
    return b"".join(usage_key(f"id-{seed}-{n}") for n in range(count))


def test_append_fills_the_last_bucket_then_opens_new_ones():
    day = DayUsage.empty(DAY)
    first = append(day, _packed(3), amount_minor=30, charged_minor=20, capacity=4)
    assert [(b.index, b.count, b.etag) for b in first.buckets] == [(0, 3, "")]
    assert (first.spend.calls, first.spend.amount_minor, first.spend.charged_minor) == (3, 30, 20)

    stored = DayUsage(
        DAY, (IdBucket(DAY, 0, first.buckets[0].ids, "e0"),), first.spend.__class__(DAY, 3, 30, 20)
    )
    second = append(stored, _packed(6, seed=1), amount_minor=60, charged_minor=60, capacity=4)
    # The last bucket (read with ETag e0) takes one more; two new buckets take the rest.
    assert [(b.index, b.count, b.etag) for b in second.buckets] == [
        (0, 4, "e0"),
        (1, 4, ""),
        (2, 1, ""),
    ]
    assert b"".join(b.ids for b in second.buckets) == first.buckets[0].ids + _packed(6, seed=1)
    assert (second.spend.calls, second.spend.amount_minor, second.spend.charged_minor) == (
        9,
        90,
        80,
    )


@given(
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=9),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=2, max_value=12),
)
def test_write_cost_and_fit_agree_with_append(full_buckets, tail, new, capacity):
    tail = min(tail, capacity)
    buckets = tuple(
        IdBucket(DAY, index, _packed(capacity, seed=index), f"e{index}")
        for index in range(full_buckets)
    )
    if tail:
        buckets += (IdBucket(DAY, full_buckets, _packed(tail, seed=99), "tail"),)
    day = DayUsage(DAY, buckets, DayUsage.empty(DAY).spend)
    write = append(day, _packed(new, seed=7), amount_minor=0, charged_minor=0, capacity=capacity)
    assert write_cost(day, new, capacity) == (write.operations, write.payload)
    fits = most_ids_within(day, write.operations, write.payload, capacity)
    assert fits >= new  # the budget of a write always admits that write


def test_runs_of_consecutive_days_are_one_query_each():
    days = [DAY + timedelta(days=n) for n in (5, 0, 1, 2, 9, 10, 2)]
    assert runs(days) == [
        (DAY, DAY + timedelta(days=2)),
        (DAY + timedelta(days=5), DAY + timedelta(days=5)),
        (DAY + timedelta(days=9), DAY + timedelta(days=10)),
    ]


def test_the_cache_forgets_the_least_recent_days_beyond_its_bound():
    cache = DayCache(resident_ids=10)
    for offset in range(4):
        day = DAY + timedelta(days=offset)
        cache.put(
            DayUsage(
                day, (IdBucket(day, 0, _packed(4, seed=offset), "e"),), DayUsage.empty(day).spend
            )
        )
    assert cache.missing([DAY + timedelta(days=n) for n in range(4)]) == [
        DAY,
        DAY + timedelta(days=1),
    ]
    last = DAY + timedelta(days=3)
    assert usage_key("id-3-2") in cache.members(last)
    assert cache.usage(last).buckets[0].count == 4


def _rows(amounts: list[int], *, day: date = DAY, first: int = 0) -> DayRows:
    keys = _packed(len(amounts), seed=first)
    starts = array("q", (NOON + 60 * (first + n) for n in range(len(amounts))))
    return DayRows(day, keys, array("q", amounts), starts)


def _funded(*lots_minor: int) -> tuple[Account, list]:
    account = Account("t", "USD")
    lots = []
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for n, minor in enumerate(lots_minor):
        change = ledger.credit(
            account, minor, kind=EntryKind.PURCHASE, actor="a", reference="r",
            at=at + timedelta(days=n), lot_id=f"lot-{n}",
        )  # fmt: skip
        account = change.account
        lots += change.lots
    return account, lots


def test_a_batch_is_one_line_per_lot_counting_its_calls_and_their_period():
    account, lots = _funded(1_000, 5_000)
    batch = [_rows([400, 400, 400]), _rows([100], day=DAY + timedelta(days=2), first=3)]
    days = {rows.day: DayUsage.empty(rows.day) for rows in batch}
    plan = plan_calls(
        account, lots, batch, days, source="csv", reference="imp", at=datetime.now(UTC)
    )
    lines = [(e.lot_id, e.amount_minor, e.calls) for e in plan.change.entries]
    # The third call costs 400: 200 from the first lot, 200 from the second; it counts on both.
    assert lines == [("lot-0", -1_000, 3), ("lot-1", -300, 2)]
    first, second = plan.change.entries
    assert first.first_call == datetime.fromtimestamp(NOON, UTC)
    assert second.last_call == datetime.fromtimestamp(NOON + 180, UTC)
    assert {e.reference for e in plan.change.entries} == {"imp"}
    assert [(w.day, w.spend.calls, w.spend.charged_minor) for w in plan.days] == [
        (DAY, 3, 1_200),
        (DAY + timedelta(days=2), 1, 100),
    ]
    assert plan.debited_minor == 1_300 and plan.uncovered_rows == 0
    assert (
        plan.change.account.balance_minor
        == 6_000 - 1_300
        == sum(lot.remaining_minor for lot in plan.change.lots)
    )


def test_calls_beyond_the_balance_stop_at_zero_and_are_still_recorded():
    account, lots = _funded(500)
    batch = [_rows([300, 300, 300, 0])]
    plan = plan_calls(
        account, lots, batch, {DAY: DayUsage.empty(DAY)}, source="csv", reference="r",
        at=datetime.now(UTC),
    )  # fmt: skip
    [line] = plan.change.entries
    assert (line.amount_minor, line.calls) == (-500, 2)
    [write] = plan.days
    assert (write.spend.calls, write.spend.amount_minor, write.spend.charged_minor) == (4, 900, 500)
    assert write.buckets[0].count == 4
    assert plan.uncovered_rows == 2  # the call that met zero, and the one after it
    assert [event.kind.value for event in plan.events] == ["balance_low", "balance_zero"]


def test_a_batch_of_free_calls_moves_no_money_but_records_them():
    account, lots = _funded(500)
    plan = plan_calls(
        account, lots, [_rows([0, 0])], {DAY: DayUsage.empty(DAY)}, source="csv",
        reference="r", at=datetime.now(UTC),
    )  # fmt: skip
    assert plan.change.entries == () and plan.change.account == account
    assert plan.days[0].spend.calls == 2 and plan.operations == 3  # account, bucket, spend


def _day(day: date, ids: int, calls: int) -> DayUsage:
    bucket = IdBucket(day, 0, _packed(ids, seed=day.day), "e")
    return DayUsage(day, (bucket,) if ids else (), DayUsage.empty(day).spend.__class__(day, calls))


async def test_days_read_while_a_commit_landed_are_read_again_alone():
    second = DAY + timedelta(days=1)
    reads = []
    answers = [
        {DAY: _day(DAY, 2, 2), second: _day(second, 1, 3)},  # the second day was torn
        {second: _day(second, 3, 3)},
    ]

    async def read(first, last):
        reads.append((first, last))
        return answers[len(reads) - 1]

    days = await read_days(read, [DAY, second])
    assert reads == [(DAY, second), (second, second)]
    assert [(usage.day, usage.count) for usage in days] == [(DAY, 2), (second, 3)]


async def test_a_day_that_never_adds_up_stops_the_import():
    async def read(first, last):
        return {DAY: _day(DAY, 1, 2)}

    with pytest.raises(ConsistencyError):
        await read_days(read, [DAY])
