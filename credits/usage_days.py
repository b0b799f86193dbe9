"""Charged UsageIds packed per day of the call's start, and each day's spend.

Usage is too plentiful for an entity per call. A call's UsageId (a GUID) is kept as its 16
bytes in a bucket of the UTC day the call started: at most `BUCKET_IDS` ids, one binary
property of 64 KiB (the most Azure Tables allows in one), several buckets on a busy day. New ids
go into the day's last bucket, or into a new bucket once it is full. Beside the buckets one small
row per day holds the day's spend: calls, what they cost, and what was charged.

A bucket or a day's spend changes only in a charging transaction, under the ETag it was read
with (or inserted when new), together with the account. Every commit that adds ids to a day
rewrites that day's last bucket or inserts the next one, so a writer whose view of a day is
stale fails when it writes to that day: an id read as unknown is never charged twice. An id
read as known is known for good, because ids are never removed.

A call's day comes from its start time, which Microsoft never changes for a UsageId; the same
UsageId arriving with another start day would be looked up in another day's buckets.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

ID_BYTES = 16
BUCKET_IDS = 4096
"""Ids per bucket: 4,096 x 16 bytes is 64 KiB, Azure's limit for one binary property."""
SECONDS_PER_DAY = 86_400
_EPOCH = date(1970, 1, 1).toordinal()


def usage_key(usage_id: str) -> bytes:
    """The 16 bytes kept for a UsageId: the GUID's own bytes (in either case, as Microsoft's
    exports vary), or a BLAKE2b-128 digest for an id that is not a GUID (tools and tests)."""
    if len(usage_id) == 36 and usage_id[8] == usage_id[13] == usage_id[18] == usage_id[23] == "-":
        try:
            key = bytes.fromhex(usage_id.replace("-", ""))
        except ValueError:
            key = b""
        if len(key) == ID_BYTES:
            return key
    return hashlib.blake2b(usage_id.encode("utf-8"), digest_size=ID_BYTES).digest()


def epoch_day(timestamp: int) -> int:
    """Days since 1970-01-01 (UTC) of a POSIX timestamp."""
    return timestamp // SECONDS_PER_DAY


def day_of(epoch: int) -> date:
    return date.fromordinal(_EPOCH + epoch)


def epoch_of(day: date) -> int:
    return day.toordinal() - _EPOCH


def moment(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True, slots=True)
class IdBucket:
    """Up to a bucket's capacity of charged ids of one day, packed (16 bytes each)."""

    day: date
    index: int
    """0, 1, 2…: the order the day's buckets were filled in."""
    ids: bytes
    etag: str = ""
    """The ETag it was read or written with; empty for a bucket not stored yet."""

    @property
    def count(self) -> int:
        return len(self.ids) // ID_BYTES


@dataclass(frozen=True, slots=True)
class DaySpend:
    """Calls that started on one UTC day and were charged: how many, their cost, the charge."""

    day: date
    calls: int = 0
    amount_minor: int = 0
    """What the calls cost, charged or not."""
    charged_minor: int = 0
    """What was drawn from the balance: less than the amount when the balance ran out."""
    etag: str = ""


@dataclass(frozen=True)
class DayUsage:
    """All that is stored for one day: its buckets in order, and its spend."""

    day: date
    buckets: tuple[IdBucket, ...]
    spend: DaySpend

    @classmethod
    def empty(cls, day: date) -> DayUsage:
        return cls(day, (), DaySpend(day))

    @property
    def count(self) -> int:
        return sum(bucket.count for bucket in self.buckets)

    def tail_room(self, capacity: int) -> int:
        """Ids the last bucket still takes; 0 when there is none or it is full."""
        if not self.buckets:
            return 0
        return max(0, capacity - self.buckets[-1].count)


@dataclass(frozen=True)
class DayWrite:
    """What one transaction writes for a day: the buckets it fills (each with the ETag it was
    read with, or none to insert) and the day's new spend."""

    day: date
    buckets: tuple[IdBucket, ...]
    spend: DaySpend

    @property
    def operations(self) -> int:
        return len(self.buckets) + 1

    @property
    def payload(self) -> int:
        return sum(len(bucket.ids) for bucket in self.buckets)

    def applied_to(self, before: DayUsage) -> DayUsage:
        """The day after this write committed (self holding the new ETags)."""
        first = self.buckets[0].index if self.buckets else len(before.buckets)
        kept = tuple(bucket for bucket in before.buckets if bucket.index < first)
        return DayUsage(self.day, kept + self.buckets, self.spend)


def append(
    usage: DayUsage,
    packed: bytes,
    *,
    amount_minor: int,
    charged_minor: int,
    capacity: int = BUCKET_IDS,
) -> DayWrite:
    """Add ids (packed, not yet on the day) and what their calls cost and were charged."""
    size = capacity * ID_BYTES
    buckets: list[IdBucket] = []
    position = 0
    last = usage.buckets[-1] if usage.buckets else None
    index = last.index + 1 if last is not None else 0
    if last is not None and packed and len(last.ids) < size:
        position = size - len(last.ids)
        buckets.append(replace(last, ids=last.ids + packed[:position]))
    while position < len(packed):
        buckets.append(IdBucket(usage.day, index, packed[position : position + size]))
        position += size
        index += 1
    spend = replace(
        usage.spend,
        calls=usage.spend.calls + len(packed) // ID_BYTES,
        amount_minor=usage.spend.amount_minor + amount_minor,
        charged_minor=usage.spend.charged_minor + charged_minor,
    )
    return DayWrite(usage.day, tuple(buckets), spend)


def write_cost(usage: DayUsage, new_ids: int, capacity: int) -> tuple[int, int]:
    """(operations, bucket bytes) of appending `new_ids` ids to the day."""
    room = usage.tail_room(capacity)
    tail = usage.buckets[-1].count if room else 0
    filled = tail + new_ids
    return -(-filled // capacity) + 1, filled * ID_BYTES


def most_ids_within(usage: DayUsage, operations: int, size: int, capacity: int) -> int:
    """The most new ids the day can take within `operations` and `size` bucket bytes."""
    room = usage.tail_room(capacity)
    tail = usage.buckets[-1].count if room else 0
    by_operations = (operations - 1) * capacity - tail
    by_size = size // ID_BYTES - tail
    return max(0, min(by_operations, by_size))


DayReader = Callable[[date, date], Awaitable[Mapping[date, DayUsage]]]
READ_ATTEMPTS = 10


async def read_days(read: DayReader, days: Iterable[date]) -> list[DayUsage]:
    """The days, each as one consistent state, by range queries of consecutive days.

    A day's buckets may come in several pages (several requests), and a commit may land in
    between: an early page then lacks ids that a later page's buckets follow. The repository
    reads the buckets before the spend rows, and every commit adds to a day's calls as many
    as the ids it adds, so a day whose buckets hold fewer ids than its spend counts was read
    while a commit landed, and is read again. (Ids are never removed, and a bucket is never
    rewritten without new ids: equal counts mean the ids and the ETags read are all current.)
    """
    found: list[DayUsage] = []
    for first, last in runs(days):
        pending = {first + timedelta(days=n) for n in range((last - first).days + 1)}
        for _attempt in range(READ_ATTEMPTS):
            read_now = await read(min(pending), max(pending))
            for day in sorted(pending):
                usage = read_now.get(day) or DayUsage.empty(day)
                if usage.count == usage.spend.calls:
                    found.append(usage)
                    pending.discard(day)
            if not pending:
                break
        else:
            raise ConsistencyError(f"the ids and the spend of {sorted(pending)} disagree")
    return found


class ConsistencyError(RuntimeError):
    """A day's ids and its spend disagreed on every read: broken storage, or a day so busy
    that no read saw it still; the import stops (a later one carries on)."""


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges: each is one range query."""
    ordered = sorted(set(days))
    found: list[tuple[date, date]] = []
    for day in ordered:
        if found and (day - found[-1][1]).days == 1:
            found[-1] = (found[-1][0], day)
        else:
            found.append((day, day))
    return found


class IdTable:
    """A set of 16-byte ids in one bytearray: open addressing with linear probing, between 4/9
    and 2/3 full (it grows by half), so about 30 bytes an id where a Python set of bytes
    objects takes about 90 and leaves the heap fragmented. A lookup costs a few hundred ns."""

    __slots__ = ("_slots", "_size", "_count", "_zero")

    def __init__(self, expected: int = 0) -> None:
        self._size = max(16, expected * 3 // 2 + 1)
        self._slots = bytearray(self._size * ID_BYTES)
        self._count = 0
        self._zero = False
        """Whether the all-zero id (which marks an empty slot) is in the set."""

    def __len__(self) -> int:
        return self._count + self._zero

    def __contains__(self, key: object) -> bool:
        if key == _EMPTY:
            return self._zero
        slots, size = self._slots, self._size
        slot = hash(key) % size
        # startswith compares in place: no slice is made for a probe.
        while not slots.startswith(key, slot * ID_BYTES):  # type: ignore[arg-type]
            if slots.startswith(_EMPTY, slot * ID_BYTES):
                return False
            slot = slot + 1 if slot + 1 < size else 0
        return True

    def add(self, key: bytes) -> None:
        if key == _EMPTY:
            self._zero = True
            return
        if (self._count + 1) * 3 > self._size * 2:
            self._grow()
        slots, size = self._slots, self._size
        slot = hash(key) % size
        while not slots.startswith(key, slot * ID_BYTES):
            if slots.startswith(_EMPTY, slot * ID_BYTES):
                at = slot * ID_BYTES
                slots[at : at + ID_BYTES] = key
                self._count += 1
                return
            slot = slot + 1 if slot + 1 < size else 0

    def add_packed(self, packed: bytes) -> None:
        if (self._count + len(packed) // ID_BYTES) * 3 > self._size * 2:
            self._grow(self._count + len(packed) // ID_BYTES)
        for start in range(0, len(packed), ID_BYTES):
            self.add(packed[start : start + ID_BYTES])

    def _grow(self, expected: int = 0) -> None:
        old = self._slots
        self._size = max(self._size * 3 // 2, expected * 3 // 2 + 1)
        self._slots = bytearray(self._size * ID_BYTES)
        self._count = 0
        for start in range(0, len(old), ID_BYTES):
            if not old.startswith(_EMPTY, start):
                self.add(bytes(old[start : start + ID_BYTES]))


_EMPTY = bytes(ID_BYTES)

RESIDENT_IDS = 1 << 21
"""Ids an import keeps in memory (2,097,152: at most about 100 MiB); beyond, the least recently
used days are dropped and read again if needed."""


@dataclass
class _Day:
    usage: DayUsage
    """The day with its last bucket only: the one a new id may go into."""
    ids: IdTable


class DayCache:
    """The days one import (or migration) has read, kept as its own commits change them.

    Each day keeps its spend, its last bucket and its ids in an `IdTable`; full buckets are
    not kept. Memory is bounded whatever the input: past `resident_ids` ids, the least recently
    used days are dropped (and read again when needed).
    """

    def __init__(self, *, resident_ids: int = RESIDENT_IDS) -> None:
        self._days: OrderedDict[date, _Day] = OrderedDict()
        self._resident_ids = resident_ids
        self._resident = 0

    def __contains__(self, day: date) -> bool:
        return day in self._days

    def missing(self, days: Iterable[date]) -> list[date]:
        return [day for day in days if day not in self._days]

    def usage(self, day: date) -> DayUsage:
        """The day as far as appending to it goes: its spend and its last bucket."""
        entry = self._days[day]
        self._days.move_to_end(day)
        return entry.usage

    def members(self, day: date) -> IdTable:
        entry = self._days[day]
        self._days.move_to_end(day)
        return entry.ids

    def put(self, usage: DayUsage) -> None:
        """A day as read from storage; replaces whatever was known of it."""
        self._drop(usage.day)
        ids = IdTable(usage.count)
        for bucket in usage.buckets:
            ids.add_packed(bucket.ids)
        self._days[usage.day] = _Day(_last_bucket_only(usage), ids)
        self._resident += len(ids)
        self._evict()

    def committed(self, write: DayWrite, before: DayUsage, packed: bytes) -> None:
        """Our own commit added the ids `packed` to the day (as `usage` gave it, `before`)."""
        entry = self._days.get(write.day)
        if entry is None or entry.usage is not before:
            self._drop(write.day)  # dropped or read again meanwhile: read it when needed
            return
        entry.usage = _last_bucket_only(write.applied_to(before))
        entry.ids.add_packed(packed)
        self._resident += len(packed) // ID_BYTES
        self._days.move_to_end(write.day)
        self._evict()

    def _drop(self, day: date) -> None:
        entry = self._days.pop(day, None)
        if entry is not None:
            self._resident -= len(entry.ids)

    def _evict(self) -> None:
        while self._resident > self._resident_ids and len(self._days) > 1:
            self._drop(next(iter(self._days)))


def _last_bucket_only(usage: DayUsage) -> DayUsage:
    return DayUsage(usage.day, usage.buckets[-1:], usage.spend)
