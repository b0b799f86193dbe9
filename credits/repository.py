"""The storage port of the credits domain; `storage/credits_repository.py` implements it.

Every change to money is one `commit`: the account (guarded by the ETag it was read with), the
lots and ledger entries the change produced, and the order it books, together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, Protocol, TypeVar

from credits.ledger import Change
from credits.model import Account, LedgerEntry, Lot, Order, OutboxEvent, UsageMarker
from credits.usage_days import DayUsage, DayWrite

T = TypeVar("T")


class ConcurrencyConflict(Exception):
    """Something this change was based on changed meanwhile; reload and decide again."""


class DuplicateRecord(Exception):
    """A record inserted with the change exists already (an alert written before)."""

    def __init__(self, record: object) -> None:
        super().__init__(repr(record))
        self.record = record


@dataclass(frozen=True)
class Versioned(Generic[T]):
    value: T
    etag: str


class CreditsRepository(Protocol):
    async def get_account(self, tenant_id: str) -> Versioned[Account] | None: ...

    async def create_account(self, account: Account) -> Versioned[Account]:
        """Create the account, or return the one another request created first."""

    async def save_account(self, current: Versioned[Account], new: Account) -> Versioned[Account]:
        """Settings only (cards, agreements, auto-recharge); money moves through `commit`."""

    async def list_lots(self, tenant_id: str) -> list[Lot]: ...

    async def recent_entries(self, tenant_id: str, limit: int) -> list[LedgerEntry]:
        """Newest first."""

    async def all_entries(self, tenant_id: str) -> list[LedgerEntry]:
        """Oldest first."""

    async def ledger_entry(self, tenant_id: str, seq: int) -> LedgerEntry | None:
        """One entry by its sequence number (a point read)."""

    async def ledger_entries(self, tenant_id: str, first: int, last: int) -> list[LedgerEntry]:
        """The entries numbered `first` to `last`, newest first (one range read)."""

    async def insert_order(self, order: Order) -> Versioned[Order] | None:
        """None when an order with this key exists: the insert is the duplicate detector."""

    async def get_order(self, tenant_id: str, key: str) -> Versioned[Order] | None: ...

    async def update_order(self, current: Versioned[Order], new: Order) -> Versioned[Order]:
        """Raises ConcurrencyConflict when the order changed since it was read."""

    async def pending_orders(self, tenant_id: str) -> list[Versioned[Order]]: ...

    async def commit(
        self,
        account_etag: str,
        change: Change,
        order: tuple[Versioned[Order], Order] | None = None,
        inserts: Sequence[OutboxEvent] = (),
    ) -> Versioned[Account]:
        """Apply a change in one transaction; ConcurrencyConflict when any ETag is stale,
        DuplicateRecord when an inserted record exists already."""

    async def commit_usage(
        self,
        account_etag: str,
        change: Change,
        days: Sequence[DayWrite],
        inserts: Sequence[OutboxEvent] = (),
    ) -> tuple[Versioned[Account], tuple[DayWrite, ...]]:
        """A batch of calls in one transaction: the change, each day's buckets and spend (under
        the ETag each was read with, or inserted when it has none) and the alerts. Returns the
        account and the days as written, with their new ETags. ConcurrencyConflict when
        anything changed meanwhile, DuplicateRecord when an alert exists already."""

    async def usage_days(self, tenant_id: str, first: date, last: date) -> dict[date, DayUsage]:
        """The charged ids and the spend of the days from `first` to `last` that have any; the
        buckets are read before the spend rows (credits.usage_days.read_days relies on it)."""

    async def legacy_usage(self, tenant_id: str, limit: int) -> list[Versioned[UsageMarker]]:
        """Up to `limit` per-call markers of the layout before day buckets."""

    async def migrate_usage(
        self,
        tenant_id: str,
        days: Sequence[DayWrite],
        markers: Sequence[Versioned[UsageMarker]],
    ) -> tuple[DayWrite, ...]:
        """In one transaction, write the days and delete the markers (each under its ETag);
        ConcurrencyConflict when any of them changed or went meanwhile."""

    async def outbox(self, tenant_id: str) -> list[OutboxEvent]: ...

    async def daily_spend(self, tenant_id: str, since: datetime) -> dict[date, int]:
        """Charged minor units per day of call start, from `since` on (one small row a day)."""

    async def insert_event(self, tenant_id: str, event: OutboxEvent) -> bool:
        """False when an event with this id exists already."""
