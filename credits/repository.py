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

T = TypeVar("T")


class ConcurrencyConflict(Exception):
    """Something this change was based on changed meanwhile; reload and decide again."""


class DuplicateRecord(Exception):
    """A record inserted with the change exists already (a usage row charged before)."""

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
        inserts: Sequence[UsageMarker | OutboxEvent] = (),
    ) -> Versioned[Account]:
        """Apply a change in one transaction; ConcurrencyConflict when any ETag is stale,
        DuplicateRecord when an inserted record exists already."""

    async def existing_usage(self, tenant_id: str, usage_ids: Sequence[str]) -> set[str]: ...

    async def outbox(self, tenant_id: str) -> list[OutboxEvent]: ...

    async def daily_spend(self, tenant_id: str, since: datetime) -> dict[date, int]:
        """Charged minor units per day of call start, from `since` on."""

    async def insert_event(self, tenant_id: str, event: OutboxEvent) -> bool:
        """False when an event with this id exists already."""
