"""Charging usage rows against the ledger: idempotent by UsageId, many calls per transaction.

Rows stream in and are grouped, a look-ahead of `LOOKAHEAD_ROWS` at a time, by the UTC day
their call started (credits/usage_days.py keeps the charged ids per day). Each day an import
touches is read once, lazily, and kept in memory, updated by the import's own commits; a row
whose UsageId is among its day's ids was charged before and costs nothing more.

The new rows become batches, each one entity-group transaction: the account (If-Match), the
lots it draws, one "Calls" ledger line per lot (with the count of calls and the period), each
touched day's buckets and spend (If-Match, or inserted when new), and the alerts and
auto-recharge state the debit causes. A batch holds as many calls as fit in one transaction:
at most 100 operations and `MAX_BUCKET_BYTES` of ids, far below the 4 MiB Azure allows.

Any conflict (another importer, a purchase, expiry) reloads the account, the lots and the
batch's days, drops the rows that meanwhile became charged, and plans again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import uuid
from array import array
from collections.abc import AsyncIterable, Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
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
)
from credits.repository import (
    ConcurrencyConflict,
    CreditsRepository,
    DuplicateRecord,
    Versioned,
)
from credits.usage_days import (
    BUCKET_IDS,
    ID_BYTES,
    DayCache,
    DayUsage,
    DayWrite,
    append,
    day_of,
    epoch_day,
    moment,
    most_ids_within,
    read_days,
    usage_key,
    write_cost,
)
from credits.usage_migration import UsageMigration

logger = logging.getLogger(__name__)

MAX_OPERATIONS = 100
# Operations kept for the account, the lots and ledger lines, and the alerts of one batch; the
# rest go to days. A batch that still needs more (many small lots) is halved.
RESERVED_OPERATIONS = 16
MAX_BUCKET_BYTES = 1 << 19
"""Ids one transaction may upload (base64 makes it 2.7 MB), within Azure's 4 MiB."""
LOOKAHEAD_ROWS = 1 << 16
"""Rows grouped by day before charging (32 bytes each): an export in no particular order still
fills each transaction with many calls of a few days."""
MAX_ATTEMPTS = 20


class ChargeableRow(Protocol):
    """What charging needs of a usage row (credits.usage.UsageRow has it)."""

    usage_id: str
    start: datetime
    """When the call started: its UsageId is kept with that day's (UTC)."""

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
        bucket_ids: int = BUCKET_IDS,
        lookahead_rows: int = LOOKAHEAD_ROWS,
        max_bucket_bytes: int = MAX_BUCKET_BYTES,
    ) -> None:
        """`bucket_ids`, `lookahead_rows` and `max_bucket_bytes` exist for tests, which make
        them small so that a few rows fill buckets and span transactions."""
        self._repo = repository
        self._clock = clock
        self._sleep = sleep
        self._capacity = bucket_ids
        self._lookahead = lookahead_rows
        self._max_bytes = max_bucket_bytes
        self._migration = UsageMigration(repository, sleep=sleep, bucket_ids=bucket_ids)

    async def charge(
        self,
        tenant_id: str,
        rows: Iterable[ChargeableRow] | AsyncIterable[ChargeableRow],
        *,
        source: str,
    ) -> ChargeReport:
        # Per-call markers of the layout before buckets are moved into them first (a single
        # empty query once they are), so that a call charged then is never charged again.
        await self._migration.run(tenant_id)
        report = ChargeReport()
        run = _Import(tenant_id, source, uuid.uuid4().hex[:16])
        ahead = _Lookahead()
        if isinstance(rows, AsyncIterable):
            async for row in rows:
                ahead.add(usage_key(row.usage_id), row.amount_minor(), int(row.start.timestamp()))
                if ahead.rows >= self._lookahead:
                    await self._flush(run, ahead, report)
                    ahead = _Lookahead()
        else:
            for row in rows:
                ahead.add(usage_key(row.usage_id), row.amount_minor(), int(row.start.timestamp()))
                if ahead.rows >= self._lookahead:
                    await self._flush(run, ahead, report)
                    ahead = _Lookahead()
        await self._flush(run, ahead, report)
        account = await self._repo.get_account(tenant_id)
        report.balance_after_minor = account.value.balance_minor if account else 0
        return report

    async def _flush(self, run: _Import, ahead: _Lookahead, report: ChargeReport) -> None:
        """Charge the rows read ahead: the new ones of each day, in as few batches as fit."""
        if not ahead.rows:
            return
        days = {epoch: day_of(epoch) for epoch in ahead.groups}
        await self._load(run, run.days.missing(days.values()))
        pending: list[DayRows] = []
        for epoch in sorted(ahead.groups):
            day = days[epoch]
            if day not in run.days:  # dropped to bound memory since it was read
                await self._load(run, [day])
            fresh = ahead.groups[epoch].new_rows(day, run.days.members(day))
            report.already_charged += len(ahead.groups[epoch]) - len(fresh)
            if len(fresh):
                pending.append(fresh)
        while pending:
            batch, pending = await self._next_batch(run, pending)
            await self._charge_batch(run, batch, report)

    async def _load(self, run: _Import, days: Sequence[date]) -> None:
        read = functools.partial(self._repo.usage_days, run.tenant_id)
        for usage in await read_days(read, days):
            run.days.put(usage)

    async def _day(self, run: _Import, day: date) -> DayUsage:
        if day not in run.days:
            await self._load(run, [day])
        return run.days.usage(day)

    async def _ids(self, run: _Import, rows: DayRows) -> Container[bytes]:
        if rows.day not in run.days:
            await self._load(run, [rows.day])
        return run.days.members(rows.day)

    async def _next_batch(
        self, run: _Import, pending: list[DayRows]
    ) -> tuple[list[DayRows], list[DayRows]]:
        """As many of the pending rows as one transaction holds, at most one part of a day."""
        operations = MAX_OPERATIONS - RESERVED_OPERATIONS
        size = self._max_bytes
        batch: list[DayRows] = []
        rest = list(pending)
        while rest:
            rows = rest[0]
            usage = await self._day(run, rows.day)
            fits = min(len(rows), most_ids_within(usage, operations, size, self._capacity))
            if fits == 0:
                if batch:
                    break
                fits = 1  # one call always gets a transaction of its own
            part, remainder = rows.split(fits)
            cost, payload = write_cost(usage, fits, self._capacity)
            operations -= cost
            size -= payload
            batch.append(part)
            if remainder is not None:
                rest[0] = remainder
                break  # the rest of this day goes on its last bucket as this batch left it
            rest.pop(0)
        return batch, rest

    async def _charge_batch(self, run: _Import, batch: list[DayRows], report: ChargeReport) -> None:
        for attempt in range(MAX_ATTEMPTS):
            if attempt > 0:
                # Read again only after a failed commit: new usage (the common case) costs no
                # reads. What another writer charged meanwhile then drops out below.
                await self._load(run, [rows.day for rows in batch])
            # The rows were told new against the days as they were when read ahead; a day read
            # again since (after another batch's conflict) may hold some of them now.
            before = sum(len(rows) for rows in batch)
            batch = [
                left for rows in batch if len(left := rows.without(await self._ids(run, rows)))
            ]
            report.already_charged += before - sum(len(rows) for rows in batch)
            if not batch:
                return
            if attempt == 0 and run.account is not None:
                current, lots = run.account, run.lots
            else:
                loaded = await self._repo.get_account(run.tenant_id)
                if loaded is None:
                    raise LookupError(f"tenant {run.tenant_id} has no account")
                current, lots = loaded, await self._repo.list_lots(run.tenant_id)
            days = {rows.day: await self._day(run, rows.day) for rows in batch}
            try:
                plan = plan_calls(
                    current.value,
                    lots,
                    batch,
                    days,
                    source=run.source,
                    reference=run.reference,
                    at=self._clock(),
                    capacity=self._capacity,
                )
            except ledger.InvariantViolation:
                if not await self._torn(run.tenant_id, current):
                    raise
                run.account = None
                continue
            too_big = plan.operations > MAX_OPERATIONS or plan.payload > self._max_bytes
            if too_big and sum(len(rows) for rows in batch) > 1:
                # Calls spread over many small lots: commit in halves instead.
                first, second = _halves(batch)
                await self._charge_batch(run, first, report)
                await self._charge_batch(run, second, report)
                return
            if plan.operations > MAX_OPERATIONS:
                # One call drawing from nearly a hundred lots: no transaction can hold it.
                raise ValueError(f"a call of tenant {run.tenant_id} draws from too many lots")
            try:
                saved, written = await self._repo.commit_usage(
                    current.etag, plan.change, plan.days, plan.events
                )
            except (ConcurrencyConflict, DuplicateRecord):
                run.account = None
                await self._sleep(random.uniform(0, 0.02 * 2 ** min(attempt, 5)))
                continue
            for write, rows in zip(written, batch, strict=True):
                run.days.committed(write, days[rows.day], rows.keys)
            changed = {lot.lot_id: lot for lot in plan.change.lots}
            run.account = saved
            run.lots = [changed.get(lot.lot_id, lot) for lot in lots]
            report.charged += sum(len(rows) for rows in batch)
            report.uncovered += plan.uncovered_rows
            report.debited_minor += plan.debited_minor
            report.events += [event.event_id for event in plan.events]
            return
        raise ConcurrencyConflict(f"usage batch for {run.tenant_id} kept conflicting")

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
class _Import:
    """One import's view: the account and lots as its last commit left them (so the next batch
    plans on them without reading again; another writer in between fails the ETag and forces a
    reload), and the days it has read. Never shared between imports."""

    tenant_id: str
    source: str
    reference: str
    """Names this import on its ledger lines."""
    account: Versioned[Account] | None = None
    lots: list[Lot] = field(default_factory=list)
    days: DayCache = field(default_factory=DayCache)


@dataclass(frozen=True)
class DayRows:
    """New calls of one day in the order they were read, packed: 16 + 8 + 8 bytes a call, and
    no Python object per call, so a look-ahead's worth leaves no heap behind."""

    day: date
    keys: bytes
    amounts: array
    """Minor units, as array("q")."""
    starts: array
    """POSIX timestamps of the calls' starts, as array("q")."""

    def __len__(self) -> int:
        return len(self.amounts)

    def split(self, count: int) -> tuple[DayRows, DayRows | None]:
        if count >= len(self):
            return self, None
        cut = count * ID_BYTES
        return (
            DayRows(self.day, self.keys[:cut], self.amounts[:count], self.starts[:count]),
            DayRows(self.day, self.keys[cut:], self.amounts[count:], self.starts[count:]),
        )

    def without(self, known: Container[bytes]) -> DayRows:
        keys = self.keys
        if not any(keys[at : at + ID_BYTES] in known for at in range(0, len(keys), ID_BYTES)):
            return self
        return _select(self.day, keys, self.amounts, self.starts, known)


class _Group:
    """The rows of one day read ahead, packed: 32 bytes a row."""

    __slots__ = ("keys", "amounts", "starts")

    def __init__(self) -> None:
        self.keys = bytearray()
        self.amounts = array("q")
        self.starts = array("q")

    def __len__(self) -> int:
        return len(self.amounts)

    def new_rows(self, day: date, known: Container[bytes]) -> DayRows:
        """The rows whose id is neither known nor repeated earlier in the group."""
        return _select(day, bytes(self.keys), self.amounts, self.starts, known)


def _select(
    day: date, packed: bytes, amounts: array, starts: array, known: Container[bytes]
) -> DayRows:
    keys = bytearray()
    kept_amounts = array("q")
    kept_starts = array("q")
    seen: set[bytes] = set()  # new ids only: few, and gone with the group
    for index, amount in enumerate(amounts):
        key = packed[index * ID_BYTES : (index + 1) * ID_BYTES]
        if key in known or key in seen:
            continue
        seen.add(key)
        keys += key
        kept_amounts.append(amount)
        kept_starts.append(starts[index])
    return DayRows(day, bytes(keys), kept_amounts, kept_starts)


class _Lookahead:
    def __init__(self) -> None:
        self.groups: dict[int, _Group] = {}
        self.rows = 0

    def add(self, key: bytes, amount: int, start: int) -> None:
        epoch = epoch_day(start)
        group = self.groups.get(epoch)
        if group is None:
            group = self.groups[epoch] = _Group()
        group.keys += key
        group.amounts.append(amount)
        group.starts.append(start)
        self.rows += 1


def _halves(batch: list[DayRows]) -> tuple[list[DayRows], list[DayRows]]:
    if len(batch) > 1:
        middle = len(batch) // 2
        return batch[:middle], batch[middle:]
    [rows] = batch
    first, second = rows.split(max(1, len(rows) // 2))
    return [first], [second] if second is not None else []


@dataclass(frozen=True)
class CallsPlan:
    change: ledger.Change
    days: tuple[DayWrite, ...]
    events: list[OutboxEvent]
    debited_minor: int
    uncovered_rows: int

    @property
    def operations(self) -> int:
        change = self.change
        days = sum(write.operations for write in self.days)
        return 1 + len(change.lots) + len(change.entries) + days + len(self.events)

    @property
    def payload(self) -> int:
        return sum(write.payload for write in self.days)


def plan_calls(
    account: Account,
    lots: list[Lot],
    batch: Sequence[DayRows],
    days: Mapping[date, DayUsage],
    *,
    source: str,
    reference: str,
    at: datetime,
    capacity: int = BUCKET_IDS,
) -> CallsPlan:
    """The debit of a batch of new calls, with the days' ids and spend, the alerts and the
    recharge state it causes. Pure.

    Calls are charged in order, each in full while the balance lasts; the call that meets zero
    is charged what was left and the rest are charged nothing (calls stop at zero, and the
    rest is not owed). Every call is recorded as charged either way. The total is one debit,
    drawn earliest-expiry first: one ledger line per lot, counting the calls drawn from it.
    """
    before = account.balance_minor
    balance = before
    uncovered = 0
    charges = array("q")
    starts = array("q")
    writes: list[DayWrite] = []
    for rows in batch:
        day_charged = 0
        for amount, start in zip(rows.amounts, rows.starts, strict=True):
            charge = amount if amount <= balance else balance
            if charge < amount:
                uncovered += 1
            if charge:
                balance -= charge
                day_charged += charge
                charges.append(charge)
                starts.append(start)
        writes.append(
            append(
                days[rows.day],
                rows.keys,
                amount_minor=sum(rows.amounts),
                charged_minor=day_charged,
                capacity=capacity,
            )
        )
    change = ledger.Change(account, (), ())
    if balance < before:
        change = ledger.debit(
            account,
            lots,
            before - balance,
            kind=EntryKind.USAGE,
            actor=source,
            reference=reference,
            at=at,
        )
        change = replace(change, entries=_with_calls(change.entries, charges, starts))
    current = change.account
    recharging = plan_recharge_due(current, account)
    if recharging.recharge.due_key != current.recharge.due_key:
        # This crossing starts a recharge: its success or failure is the news, not a low (or
        # zero) balance that the recharge is about to lift.
        events = []
    else:
        events = _balance_events(account, before, current.balance_minor, current.ledger_seq, at)
    change = replace(change, account=recharging)
    return CallsPlan(
        change=change,
        days=tuple(writes),
        events=events,
        debited_minor=before - balance,
        uncovered_rows=uncovered,
    )


def _with_calls(
    entries: Sequence[LedgerEntry], charges: Sequence[int], starts: Sequence[int]
) -> tuple[LedgerEntry, ...]:
    """Each lot's line with the calls drawn from it (in draw order, as the debit took them):
    a call whose charge spans two lots counts on both lines."""
    lines: list[LedgerEntry] = []
    index = 0
    left = charges[0] if charges else 0
    for entry in entries:
        need = -entry.amount_minor
        count, first, last = 0, None, None
        while need > 0:
            start = starts[index]
            used = min(need, left)
            need -= used
            left -= used
            count += 1
            first = start if first is None or start < first else first
            last = start if last is None or start > last else last
            if left == 0:
                index += 1
                left = charges[index] if index < len(charges) else 0
        lines.append(
            replace(
                entry,
                calls=count,
                first_call=moment(first) if first is not None else None,
                last_call=moment(last) if last is not None else None,
            )
        )
    return tuple(lines)


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
