"""A period of the books: which ledger entries it holds, and reading them a page at a time.

Periods are whole UTC days (a month, or the days an admin chose), as the ledger dates its
entries in UTC. The ledger is kept by sequence number (row keys `ledger-<inverted sequence>`,
newest first), not by time, so a period is found by a binary search on the sequence: an
entry's date is read by its key (one point read each), about log2(entries) reads per edge, 21
for a million entries, whatever the period's length. Nothing else is written with the money
(an index by day would add an operation to every transaction): the entries of a period are
then a run of consecutive sequence numbers, read by key range.

Dates follow sequence numbers: each change commits on the account's ETag after the previous
one, and takes its date from the clock of the instance that commits it. Clocks a moment apart
can date an entry a moment before the one it follows; around a period's edge such an entry
falls in the neighbouring period. The search makes that harmless: it probes the same sequence
numbers for the same instant whatever the ledger's length (it searches a fixed space, 2^40,
where numbers past the last entry count as "after" without a read), so the end of one period
is exactly the start of the next, every entry is in exactly one period, and the books tie:
the sum of a period's amounts is its closing balance less its opening balance. An instant
minutes after the newest entry (the end of this month) is after every entry: one read says so.
"""

from __future__ import annotations

import calendar
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from credits.model import Account, EntryKind, LedgerEntry, Order
from credits.repository import CreditsRepository

# The search space of sequence numbers: far beyond any ledger (a trillion entries).
SEARCH_BITS = 40
# More than clocks of two instances ever differ: an entry this much older than an instant was
# committed after every entry dated at or after it, so all are older.
CLOCK_MARGIN = timedelta(minutes=5)
# Entries per read of an export: the most one Table query page returns.
CHUNK_ENTRIES = 1000
# Orders an export remembers while it streams (purchases are few; a refund names its purchase).
ORDER_CACHE = 1024
# Entries tied to an order: the order's key is their reference.
ORDER_KINDS = frozenset(
    {EntryKind.PURCHASE, EntryKind.RECHARGE, EntryKind.REFUND, EntryKind.DISPUTE}
)
# The earliest day a period may start: before any ledger, and a bound on typed years.
EARLIEST_DAY = date(2000, 1, 1)


class PeriodChoice(StrEnum):
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    DATES = "dates"


class PeriodProblem(StrEnum):
    MISSING = "missing"
    """A chosen period without its first or last day."""
    NOT_A_DATE = "not_a_date"
    REVERSED = "reversed"
    """The last day comes before the first."""
    FUTURE = "future"
    """The first day is after today."""


@dataclass(frozen=True)
class Period:
    """Whole UTC days from `first` to `last`, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def whole_month(self) -> bool:
        last_day = calendar.monthrange(self.first.year, self.first.month)[1]
        return (
            self.first.day == 1
            and (self.last.year, self.last.month) == (self.first.year, self.first.month)
            and self.last.day == last_day
        )

    @classmethod
    def month_of(cls, day: date) -> Period:
        last_day = calendar.monthrange(day.year, day.month)[1]
        return cls(day.replace(day=1), day.replace(day=last_day))

    @classmethod
    def this_month(cls, today: date) -> Period:
        return cls.month_of(today)

    @classmethod
    def last_month(cls, today: date) -> Period:
        return cls.month_of(today.replace(day=1) - timedelta(days=1))


@dataclass(frozen=True)
class PeriodError:
    problem: PeriodProblem
    field: str
    """The input the problem is about: `from` or `to`."""


def parse_day(text: str) -> date | None:
    """A day as a date input sends it (ISO 8601, `2026-11-01`); None for anything else."""
    if len(text) != 10:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if day >= EARLIEST_DAY else None


def chosen_period(first_text: str, last_text: str, today: date) -> Period | PeriodError:
    """The days an admin chose, or what is wrong with them (the field it is about)."""
    if not first_text:
        return PeriodError(PeriodProblem.MISSING, "from")
    if not last_text:
        return PeriodError(PeriodProblem.MISSING, "to")
    first = parse_day(first_text)
    if first is None:
        return PeriodError(PeriodProblem.NOT_A_DATE, "from")
    last = parse_day(last_text)
    if last is None:
        return PeriodError(PeriodProblem.NOT_A_DATE, "to")
    if last < first:
        return PeriodError(PeriodProblem.REVERSED, "to")
    if first > today:
        return PeriodError(PeriodProblem.FUTURE, "from")
    return Period(first, last)


def period_of(choice: str, today: date) -> Period | None:
    """A named period (this month, last month); None for any other name."""
    if choice == PeriodChoice.THIS_MONTH:
        return Period.this_month(today)
    if choice == PeriodChoice.LAST_MONTH:
        return Period.last_month(today)
    return None


@dataclass(frozen=True)
class LedgerSpan:
    """A period's entries: sequence numbers `first` to `last` (none when `last < first`), and
    the balance before and after them."""

    period: Period
    first: int
    last: int
    opening_minor: int
    closing_minor: int

    @property
    def count(self) -> int:
        return max(0, self.last - self.first + 1)

    @property
    def change_minor(self) -> int:
        return self.closing_minor - self.opening_minor


async def first_at_or_after(
    moment: datetime, last_seq: int, time_of: Callable[[int], Awaitable[datetime]]
) -> int:
    """The smallest sequence number whose entry is dated at or after `moment`; `last_seq + 1`
    when none is. The probes depend on the dates only (module docstring), not on `last_seq`."""
    low, high = 1, 1 << SEARCH_BITS
    while low < high:
        middle = (low + high) // 2
        if middle > last_seq or await time_of(middle) >= moment:
            high = middle
        else:
            low = middle + 1
    return min(low, last_seq + 1)


class History:
    """Reads a period of a tenant's ledger through the repository port."""

    def __init__(self, repository: CreditsRepository) -> None:
        self._repo = repository

    async def locate(self, account: Account, period: Period) -> LedgerSpan:
        """The period's run of entries and its opening and closing balances."""
        tenant_id = account.tenant_id
        read: dict[int, LedgerEntry] = {}

        async def entry(seq: int) -> LedgerEntry:
            if seq not in read:
                found = await self._repo.ledger_entry(tenant_id, seq)
                if found is None:
                    # Sequence numbers are consecutive and entries are never deleted.
                    raise LookupError(f"ledger entry {seq} of tenant {tenant_id} is missing")
                read[seq] = found
            return read[seq]

        async def time_of(seq: int) -> datetime:
            return (await entry(seq)).at

        last_seq = account.ledger_seq
        newest = await time_of(last_seq) if last_seq else None

        async def edge(moment: datetime) -> int:
            if newest is None or newest < moment - CLOCK_MARGIN:
                # Every entry is older (an ongoing month): what the search would find, read once.
                return last_seq + 1
            return await first_at_or_after(moment, last_seq, time_of)

        first = await edge(period.start)
        after = await edge(period.end)
        opening = (await entry(first - 1)).balance_after_minor if first > 1 else 0
        closing = (await entry(after - 1)).balance_after_minor if after > first else opening
        return LedgerSpan(period, first, after - 1, opening, closing)

    async def page(
        self, tenant_id: str, span: LedgerSpan, page: int, size: int
    ) -> list[LedgerEntry]:
        """Page `page` (from 0) of the span, newest first: one range read."""
        high = span.last - page * size
        low = max(span.first, high - size + 1)
        if high < span.first:
            return []
        return await self._repo.ledger_entries(tenant_id, low, high)

    async def chunks(
        self, tenant_id: str, span: LedgerSpan, size: int = CHUNK_ENTRIES
    ) -> AsyncIterator[list[LedgerEntry]]:
        """The span oldest first, `size` entries at a time: one range read each, so that no
        more than a chunk is ever held, however long the period."""
        for low in range(span.first, span.last + 1, size):
            high = min(low + size - 1, span.last)
            entries = await self._repo.ledger_entries(tenant_id, low, high)
            entries.sort(key=lambda entry: entry.seq)
            yield entries


class OrderLookup:
    """The orders behind entries (purchases, recharges, refunds, disputes), each read once and
    remembered up to a bound, so an export that streams a year reads each order once or so."""

    def __init__(self, repository: CreditsRepository, tenant_id: str, size: int = ORDER_CACHE):
        self._repo = repository
        self._tenant_id = tenant_id
        self._size = size
        self._orders: OrderedDict[str, Order | None] = OrderedDict()

    async def of(self, entries: Iterable[LedgerEntry]) -> dict[str, Order]:
        """The orders of these entries, by key (entries whose order is gone are left out)."""
        found: dict[str, Order] = {}
        for entry in entries:
            if entry.kind not in ORDER_KINDS or not entry.reference:
                continue
            order = await self._order(entry.reference)
            if order is not None:
                found[entry.reference] = order
        return found

    async def _order(self, key: str) -> Order | None:
        if key in self._orders:
            self._orders.move_to_end(key)
            return self._orders[key]
        versioned = await self._repo.get_order(self._tenant_id, key)
        order = versioned.value if versioned is not None else None
        self._orders[key] = order
        if len(self._orders) > self._size:
            self._orders.popitem(last=False)
        return order
