"""Pure ledger arithmetic: credits create lots, debits draw lots earliest-expiry first, and a
reversal (a refund or dispute) takes back what is left of one purchase's lot.

Each function takes the current account and lots and returns the new records; the caller
commits them in one transaction. Nothing here performs I/O, so every rule is testable alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from credits.model import Account, EntryKind, LedgerEntry, Lot

FUNDS_LIFETIME_MONTHS = 12


class InsufficientBalance(ValueError):
    """A debit larger than the balance."""


class InvariantViolation(AssertionError):
    """The books do not balance: a bug, never a user error."""


@dataclass(frozen=True)
class Change:
    account: Account
    lots: tuple[Lot, ...]
    """The lots created or changed by this change (not untouched ones)."""
    entries: tuple[LedgerEntry, ...]


def expiry_of(purchased_at: datetime) -> datetime:
    """Twelve calendar months after purchase; 29 February expires on 28 February."""
    year = purchased_at.year + FUNDS_LIFETIME_MONTHS // 12
    try:
        return purchased_at.replace(year=year)
    except ValueError:
        return purchased_at.replace(year=year, day=28)


def credit(
    account: Account,
    amount_minor: int,
    *,
    kind: EntryKind,
    actor: str,
    reference: str,
    at: datetime,
    order_key: str = "",
    lot_id: str | None = None,
) -> Change:
    if amount_minor <= 0:
        raise ValueError("a credit is positive")
    lot = Lot(
        lot_id=lot_id or uuid.uuid4().hex,
        amount_minor=amount_minor,
        remaining_minor=amount_minor,
        purchased_at=at,
        expires_at=expiry_of(at),
        order_key=order_key,
    )
    balance = account.balance_minor + amount_minor
    seq = account.ledger_seq + 1
    entry = LedgerEntry(seq, kind, amount_minor, balance, lot.lot_id, actor, reference, at)
    updated = replace(account.with_balance(balance, seq), last_purchase_minor=amount_minor)
    return Change(updated, (lot,), (entry,))


def debit(
    account: Account,
    lots: list[Lot] | tuple[Lot, ...],
    amount_minor: int,
    *,
    kind: EntryKind,
    actor: str,
    reference: str,
    at: datetime,
) -> Change:
    """Draw `amount_minor` from the lots that expire first; one ledger entry per lot touched."""
    if amount_minor <= 0:
        raise ValueError("a debit is positive")
    if amount_minor > account.balance_minor:
        raise InsufficientBalance(f"{amount_minor} > balance {account.balance_minor}")
    remaining = amount_minor
    balance = account.balance_minor
    seq = account.ledger_seq
    changed: list[Lot] = []
    entries: list[LedgerEntry] = []
    for lot in draw_order(lots):
        if remaining == 0:
            break
        if lot.remaining_minor == 0:
            continue
        take = min(lot.remaining_minor, remaining)
        remaining -= take
        balance -= take
        seq += 1
        changed.append(replace(lot, remaining_minor=lot.remaining_minor - take))
        entries.append(LedgerEntry(seq, kind, -take, balance, lot.lot_id, actor, reference, at))
    if remaining:
        # The balance said there was enough, the lots disagree: the books are broken.
        raise InvariantViolation(f"lots are {remaining} short of the balance")
    return Change(account.with_balance(balance, seq), tuple(changed), tuple(entries))


@dataclass(frozen=True)
class Reversal:
    change: Change
    taken_minor: int
    """Taken back from the purchase's lot (a ledger entry)."""
    owed_minor: int
    """Already spent from the lot: recorded as owed on the account, outside the balance."""


def reverse(
    account: Account,
    lot: Lot,
    amount_minor: int,
    *,
    kind: EntryKind,
    actor: str,
    reference: str,
    at: datetime,
) -> Reversal:
    """Take back `amount_minor` of the purchase that made `lot` (a refund or a dispute).

    What is left of the lot is taken back (one ledger entry); what was already spent from it
    cannot be, and is owed. The balance never goes below zero, so the books still balance:
    balance = lot remainders = ledger sum, with the owed amount kept beside them.
    """
    if amount_minor <= 0:
        raise ValueError("a reversal is positive")
    if amount_minor > lot.amount_minor:
        raise ValueError("a reversal cannot exceed the purchase")
    taken = min(lot.remaining_minor, amount_minor)
    owed = amount_minor - taken
    balance = account.balance_minor - taken
    seq = account.ledger_seq
    lots: tuple[Lot, ...] = ()
    entries: tuple[LedgerEntry, ...] = ()
    if taken:
        if taken > account.balance_minor:
            raise InvariantViolation(f"lot {lot.lot_id} holds more than the balance")
        seq += 1
        lots = (replace(lot, remaining_minor=lot.remaining_minor - taken),)
        entries = (LedgerEntry(seq, kind, -taken, balance, lot.lot_id, actor, reference, at),)
    updated = replace(account.with_balance(balance, seq), owed_minor=account.owed_minor + owed)
    return Reversal(Change(updated, lots, entries), taken, owed)


def draw_order(lots: list[Lot] | tuple[Lot, ...]) -> list[Lot]:
    """Earliest expiry first; ties by purchase time, then id, so the order is deterministic."""
    return sorted(lots, key=lambda lot: (lot.expires_at, lot.purchased_at, lot.lot_id))


def check_invariant(
    account: Account, lots: list[Lot] | tuple[Lot, ...], entries: list[LedgerEntry]
) -> None:
    """balance = sum of lot remainders = sum of ledger amounts; 0 <= remainder <= amount."""
    lot_total = sum(lot.remaining_minor for lot in lots)
    ledger_total = sum(entry.amount_minor for entry in entries)
    bad_lots = [lot.lot_id for lot in lots if not 0 <= lot.remaining_minor <= lot.amount_minor]
    if bad_lots or not account.balance_minor == lot_total == ledger_total:
        raise InvariantViolation(
            f"balance {account.balance_minor}, lots {lot_total}, ledger {ledger_total}, "
            f"lots out of range {bad_lots}"
        )
    if entries and entries[-1].balance_after_minor != account.balance_minor:
        raise InvariantViolation("the last ledger entry disagrees with the balance")


def forfeit(account: Account, lots: list[Lot] | tuple[Lot, ...], *, at: datetime) -> Change:
    """Book the remainder of every lot expired by `at` as an expiry entry of that lot."""
    balance = account.balance_minor
    seq = account.ledger_seq
    changed: list[Lot] = []
    entries: list[LedgerEntry] = []
    for lot in draw_order(lots):
        if lot.remaining_minor == 0 or lot.expires_at > at:
            continue
        balance -= lot.remaining_minor
        seq += 1
        entries.append(
            LedgerEntry(
                seq,
                EntryKind.EXPIRY,
                -lot.remaining_minor,
                balance,
                lot.lot_id,
                "expiry",
                lot.lot_id,
                at,
            )
        )
        changed.append(replace(lot, remaining_minor=0))
    return Change(account.with_balance(balance, seq), tuple(changed), tuple(entries))
