"""Property tests of the pure ledger: any sequence of credits, debits and reversals (refunds and
disputes of a purchase) keeps the books."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credits import ledger
from credits.model import Account, EntryKind, LedgerEntry, Lot

START = datetime(2026, 1, 1, tzinfo=UTC)

operations = st.lists(
    st.tuples(
        st.sampled_from(["credit", "debit", "reverse"]),
        st.integers(min_value=1, max_value=10**12),
        st.integers(min_value=0, max_value=800),  # days after START
    ),
    max_size=60,
)


def _apply(ops):
    account = Account("tenant", "USD")
    lots: dict[str, Lot] = {}
    entries: list[LedgerEntry] = []
    reversed_of: dict[str, int] = {}  # what each purchase has had reversed so far
    owed = 0
    for kind, amount, day in ops:
        at = START + timedelta(days=day)
        if kind == "credit":
            change = ledger.credit(
                account, amount, kind=EntryKind.PURCHASE, actor="a", reference="r", at=at
            )
        elif kind == "reverse":
            # A refund or dispute of one purchase (chosen by the amount), never more than it.
            if not lots:
                continue
            lot = sorted(lots.values(), key=lambda lot: lot.lot_id)[amount % len(lots)]
            amount = min(amount, lot.amount_minor - reversed_of.get(lot.lot_id, 0))
            if amount == 0:
                continue
            reversal = ledger.reverse(
                account,
                lot,
                amount,
                kind=EntryKind.REFUND if day % 2 else EntryKind.DISPUTE,
                actor="processor",
                reference="r",
                at=at,
            )
            # What is left of the lot is taken back; the rest was spent, and is owed.
            assert reversal.taken_minor == min(lot.remaining_minor, amount)
            assert reversal.taken_minor + reversal.owed_minor == amount
            reversed_of[lot.lot_id] = reversed_of.get(lot.lot_id, 0) + amount
            owed += reversal.owed_minor
            change = reversal.change
        else:
            amount = min(amount, account.balance_minor)
            if amount == 0:
                continue
            change = ledger.debit(
                account,
                list(lots.values()),
                amount,
                kind=EntryKind.USAGE,
                actor="a",
                reference="r",
                at=at,
            )
        account = change.account
        lots.update({lot.lot_id: lot for lot in change.lots})
        entries.extend(change.entries)
        ledger.check_invariant(account, list(lots.values()), entries)
        assert account.owed_minor == owed and account.balance_minor >= 0
    return account, lots, entries


@given(operations)
def test_any_sequence_keeps_the_invariant(ops):
    account, lots, entries = _apply(ops)
    ledger.check_invariant(account, list(lots.values()), entries)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


@given(operations, st.integers(min_value=1, max_value=10**12))
def test_debits_draw_earliest_expiry_first(ops, amount):
    account, lots, _ = _apply(ops)
    amount = min(amount, account.balance_minor)
    if amount == 0:
        return
    change = ledger.debit(
        account,
        list(lots.values()),
        amount,
        kind=EntryKind.USAGE,
        actor="a",
        reference="r",
        at=START,
    )
    touched = {lot.lot_id for lot in change.lots}
    ordered = ledger.draw_order(list(lots.values()))
    # Every lot that expires before a touched lot is emptied by the debit.
    last_touched = max(i for i, lot in enumerate(ordered) if lot.lot_id in touched)
    after = {lot.lot_id: lot for lot in change.lots}
    for lot in ordered[:last_touched]:
        assert after.get(lot.lot_id, lot).remaining_minor == 0
    assert -sum(e.amount_minor for e in change.entries) == amount
    assert len(change.entries) == len(change.lots)


def test_a_reversal_takes_back_the_rest_of_its_lot_and_records_the_spent_part_as_owed():
    bought = ledger.credit(
        Account("t", "USD"), 10_000, kind=EntryKind.PURCHASE, actor="a", reference="r", at=START
    )
    [lot] = bought.lots
    spent = ledger.debit(
        bought.account, [lot], 7_000, kind=EntryKind.USAGE, actor="a", reference="u", at=START
    )
    [left] = spent.lots

    reversal = ledger.reverse(
        spent.account, left, 10_000, kind=EntryKind.DISPUTE, actor="p", reference="r", at=START
    )

    assert (reversal.taken_minor, reversal.owed_minor) == (3_000, 7_000)
    account = reversal.change.account
    assert (account.balance_minor, account.owed_minor) == (0, 7_000)
    assert [lot.remaining_minor for lot in reversal.change.lots] == [0]
    [entry] = reversal.change.entries
    assert (entry.kind, entry.amount_minor, entry.balance_after_minor) == (
        EntryKind.DISPUTE,
        -3_000,
        0,
    )
    entries = [*bought.entries, *spent.entries, entry]
    ledger.check_invariant(account, list(reversal.change.lots), entries)
    # All of it spent: nothing to take back, no ledger entry, all of it owed.
    again = ledger.reverse(
        account, reversal.change.lots[0], 500, kind=EntryKind.REFUND, actor="p", reference="r",
        at=START,
    )  # fmt: skip
    assert (again.change.entries, again.owed_minor, again.change.account.owed_minor) == (
        (),
        500,
        7_500,
    )
    with pytest.raises(ValueError):
        ledger.reverse(
            account, lot, 10_001, kind=EntryKind.REFUND, actor="p", reference="r", at=START
        )


def test_overdraw_is_refused():
    account = ledger.credit(
        Account("t", "USD"), 100, kind=EntryKind.PURCHASE, actor="a", reference="r", at=START
    ).account
    with pytest.raises(ledger.InsufficientBalance):
        ledger.debit(account, [], 101, kind=EntryKind.USAGE, actor="a", reference="r", at=START)


def test_broken_books_are_detected():
    change = ledger.credit(
        Account("t", "USD"), 100, kind=EntryKind.PURCHASE, actor="a", reference="r", at=START
    )
    ledger.check_invariant(change.account, list(change.lots), list(change.entries))
    with pytest.raises(ledger.InvariantViolation):
        ledger.check_invariant(change.account, [], list(change.entries))


@pytest.mark.parametrize(
    ("purchased", "expires"),
    [
        (datetime(2026, 3, 15, 10, 30, tzinfo=UTC), datetime(2027, 3, 15, 10, 30, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), datetime(2029, 2, 28, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_funds_expire_twelve_calendar_months_after_purchase(purchased, expires):
    assert ledger.expiry_of(purchased) == expires
