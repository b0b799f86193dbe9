"""Charging usage rows against the ledger: idempotent by UsageId, batched per transaction.

Each batch is one entity-group transaction: the account (If-Match), the lots it draws, one
ledger entry per lot per row, a marker per row (RowKey = its UsageId, so a row charged before
makes the insert fail), and the alerts and auto-recharge state the debit causes. Rows stream
through: memory holds one batch, whatever the size of the import.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from credits import ledger
from credits.alerts import THRESHOLD_DEFAULT, default_thresholds
from credits.model import (
    Account,
    EntryKind,
    EventKind,
    LedgerEntry,
    Lot,
    OutboxEvent,
    RechargeState,
    UsageMarker,
)
from credits.repository import (
    ConcurrencyConflict,
    CreditsRepository,
    DuplicateRecord,
    Versioned,
)

logger = logging.getLogger(__name__)

MAX_OPERATIONS = 100
# Rows per batch before the operation count is checked; most rows touch one lot (two ops).
BATCH_ROWS = 40
MAX_ATTEMPTS = 20


class ChargeableRow(Protocol):
    """What charging needs of a usage row (credits.usage.UsageRow has it)."""

    usage_id: str

    def amount_minor(self) -> int: ...


@dataclass
class ChargeReport:
    charged: int = 0
    """Rows charged now."""
    already_charged: int = 0
    """Rows whose UsageId was charged by an earlier import: charged nothing."""
    uncovered: int = 0
    """Rows the balance could not cover in full (calls stop at zero; the rest is not owed)."""
    debited_minor: int = 0
    balance_after_minor: int = 0
    events: list[str] = field(default_factory=list)


class UsageCharger:
    def __init__(
        self,
        repository: CreditsRepository,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self._repo = repository
        self._clock = clock
        self._sleep = sleep

    async def charge(
        self,
        tenant_id: str,
        rows: Iterable[ChargeableRow] | AsyncIterable[ChargeableRow],
        *,
        source: str,
    ) -> ChargeReport:
        report = ChargeReport()
        known = _Known()
        batch: list[ChargeableRow] = []
        async for row in _aiter(rows):
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                await self._charge_batch(tenant_id, batch, source, report, known)
                batch = []
        if batch:
            await self._charge_batch(tenant_id, batch, source, report, known)
        account = await self._repo.get_account(tenant_id)
        report.balance_after_minor = account.value.balance_minor if account else 0
        return report

    async def _charge_batch(
        self,
        tenant_id: str,
        rows: list[ChargeableRow],
        source: str,
        report: ChargeReport,
        known: _Known,
    ) -> None:
        unique = list({row.usage_id: row for row in rows}.values())
        report.already_charged += len(rows) - len(unique)  # repeats inside the batch
        pending = unique
        for attempt in range(MAX_ATTEMPTS):
            if attempt > 0:
                # Asked only after a failed commit: new usage (the common case) costs no reads,
                # and a competing import's rows drop out all at once before planning again.
                done = await self._repo.existing_usage(tenant_id, [row.usage_id for row in pending])
                report.already_charged += len(done)
                pending = [row for row in pending if row.usage_id not in done]
            if not pending:
                return
            if attempt == 0 and known.account is not None:
                current, lots = known.account, known.lots
            else:
                loaded = await self._repo.get_account(tenant_id)
                if loaded is None:
                    raise LookupError(f"tenant {tenant_id} has no account")
                current, lots = loaded, await self._repo.list_lots(tenant_id)
            try:
                plan = plan_debit(current.value, lots, pending, source=source, at=self._clock())
            except ledger.InvariantViolation:
                if not await self._torn(tenant_id, current):
                    raise
                known.account = None
                continue
            if plan.operations > MAX_OPERATIONS:
                # Rows that each touch many small lots: commit in halves instead.
                half = len(pending) // 2 or 1
                await self._charge_batch(tenant_id, pending[:half], source, report, known)
                await self._charge_batch(tenant_id, pending[half:], source, report, known)
                return
            try:
                saved = await self._repo.commit(current.etag, plan.change, inserts=plan.inserts)
            except (ConcurrencyConflict, DuplicateRecord):
                known.account = None
                await self._sleep(random.uniform(0, 0.02 * 2 ** min(attempt, 5)))
                continue
            changed = {lot.lot_id: lot for lot in plan.change.lots}
            known.account = saved
            known.lots = [changed.get(lot.lot_id, lot) for lot in lots]
            report.charged += len(pending)
            report.uncovered += plan.uncovered_rows
            report.debited_minor += plan.debited_minor
            report.events += [event.event_id for event in plan.events]
            return
        raise ConcurrencyConflict(f"usage batch for {tenant_id} kept conflicting")

    async def _torn(self, tenant_id: str, planned_on: Versioned[Account]) -> bool:
        """Whether books that did not add up were a torn view rather than broken books.

        The account and the lots are read by two requests, and another instance may commit in
        between: the lots are then newer than the account (a competing debit leaves them short
        of its balance). Every commit moves the account's ETag, so an account unchanged since
        it was read means nothing committed while the lots were read: the lots belong to it,
        and the books really are broken.
        """
        now = await self._repo.get_account(tenant_id)
        if now is None or now.etag == planned_on.etag:
            return False
        logger.info("usage batch for tenant %s planned on a torn read; reading again", tenant_id)
        return True


@dataclass
class _Known:
    """The account and lots as this import's last commit left them, so the next batch plans on
    them without reading again; another writer in between fails the ETag and forces a reload.
    One per import: never shared between imports, whose tenants may differ."""

    account: Versioned[Account] | None = None
    lots: list[Lot] = field(default_factory=list)


@dataclass(frozen=True)
class DebitPlan:
    change: ledger.Change
    inserts: list[UsageMarker | OutboxEvent]
    events: list[OutboxEvent]
    debited_minor: int
    uncovered_rows: int

    @property
    def operations(self) -> int:
        return 1 + len(self.change.lots) + len(self.change.entries) + len(self.inserts)


def plan_debit(
    account: Account,
    lots: list[Lot],
    rows: list[ChargeableRow],
    *,
    source: str,
    at: datetime,
) -> DebitPlan:
    """The debit of a batch of rows, with the alerts and recharge state it causes. Pure."""
    before = account.balance_minor
    current = account
    lots_by_id = {lot.lot_id: lot for lot in lots}
    entries: list[LedgerEntry] = []
    markers: list[UsageMarker] = []
    uncovered = 0
    for row in rows:
        amount = row.amount_minor()
        charge = min(amount, current.balance_minor)
        if charge < amount:
            uncovered += 1
        if charge > 0:
            change = ledger.debit(
                current,
                list(lots_by_id.values()),
                charge,
                kind=EntryKind.USAGE,
                actor=source,
                reference=row.usage_id,
                at=at,
            )
            current = change.account
            lots_by_id.update({lot.lot_id: lot for lot in change.lots})
            entries += change.entries
        started = getattr(row, "start", None)
        markers.append(UsageMarker(row.usage_id, amount, charge, source, at, started))
    touched = {entry.lot_id for entry in entries}
    recharging = plan_recharge_due(current, account)
    if recharging.recharge.due_key != current.recharge.due_key:
        # This crossing starts a recharge: its success or failure is the news, not a low (or
        # zero) balance that the recharge is about to lift.
        events = []
    else:
        events = _balance_events(account, before, current.balance_minor, current.ledger_seq, at)
    current = recharging
    change = ledger.Change(current, tuple(lots_by_id[lot_id] for lot_id in touched), tuple(entries))
    return DebitPlan(
        change=change,
        inserts=[*markers, *events],
        events=events,
        debited_minor=before - current.balance_minor,
        uncovered_rows=uncovered,
    )


def _balance_events(
    account: Account, before: int, after: int, seq: int, at: datetime
) -> list[OutboxEvent]:
    """Low-balance alerts once per crossing of each threshold, and the zero alert."""
    events = []
    defaults = default_thresholds(account)
    for threshold in alert_thresholds(account):
        if before >= threshold > after:
            events.append(
                OutboxEvent(
                    f"balance_low-{threshold}-{seq}",
                    EventKind.BALANCE_LOW,
                    at,
                    {
                        "threshold_minor": threshold,
                        "balance_minor": after,
                        # Who hears it is decided from this, not from the default at fan-out,
                        # which the next purchase moves.
                        THRESHOLD_DEFAULT: threshold in defaults,
                    },
                )
            )
    if before > 0 and after == 0:
        events.append(OutboxEvent(f"balance_zero-{seq}", EventKind.BALANCE_ZERO, at, {}))
    return events


def alert_thresholds(account: Account) -> tuple[int, ...]:
    """Every admin's chosen thresholds and the default one (for admins who chose none)."""
    chosen = set(account.low_balance_thresholds) | set(default_thresholds(account))
    return tuple(sorted((t for t in chosen if t > 0), reverse=True))


def plan_recharge_due(account: Account, before: Account) -> Account:
    """Below the trigger with no recharge in flight: this debit starts exactly one recharge.

    `account` is the account after a debit or expiry, `before` the one it started from. The key
    names the ledger position of the change, so every instance that looks at the same crossing
    derives the same key, and the gateway charges it once.
    """
    settings = account.auto_recharge
    if (
        account.ledger_seq > before.ledger_seq
        and settings.enabled
        and account.balance_minor < settings.trigger_minor
        and not account.recharge.due_key
    ):
        return replace(
            account,
            recharge=RechargeState(due_key=f"recharge-{account.ledger_seq}", attempts=0),
        )
    return account


async def _aiter(rows):
    if hasattr(rows, "__aiter__"):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row
