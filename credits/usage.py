"""PSTN usage exactly as Microsoft writes it, read into typed rows: streaming, strict, hostile-safe.

Three sources give the same `UsageRow`s:

- the admin centre's CSV export (`iter_csv_rows`), RFC 4180 with the 20 columns of
  "Fields in the export" found by header name;
- the admin centre's download `Calls.Export.{id}.zip` (`iter_export_rows`, which also takes a
  bare CSV), whose `PSTN.calls.{date}.csv` members are read one after another;
- one page of Microsoft Graph's `getPstnCalls` (`iter_graph_rows`).

Only rows this product charges are yielded: Capability `MCOPSTNPP` (Communications Credits), in
the account's currency, well formed, and not a repeat of a UsageId seen in the same input.
Everything else is counted by reason in a `ParseReport`, which is updated as rows stream by.

Rules decided here, on purpose:

- **Amounts.** Microsoft's columns are numeric(16,2). An amount is plain decimal text (digits,
  an optional point and decimals; no sign, no exponent, no grouping) or, from Graph, a JSON
  number. Its value must be a whole number of cents and of the currency's minor unit, with at
  most 14 whole digits, and not negative. "0.0123" USD, "12.50" JPY, "-1.00", "1e2", "=1+2" are
  MALFORMED: the row is not charged and is counted, never rounded into something Microsoft
  did not bill. Trailing zeros are fine ("0.10", Graph's "0.040"). An empty Connection Fee
  (null `connectionCharge`) is no fee; an empty Charge is MALFORMED.
- **Times** are ISO 8601 with `Z` or an offset ("2024-05-01T10:00:00.1234567Z", .NET's seven
  fractional digits allowed) and become UTC. A time without an offset is ambiguous: MALFORMED.
- **Text** is kept verbatim. A cell such as `=cmd|' /C calc'!A0` is just text here; nothing is
  ever evaluated. Whoever writes these values back into a spreadsheet must escape them.
- **Classification order**, so that each row is counted once: a bad UsageId is MALFORMED; a
  UsageId seen before is DUPLICATE_IN_FILE (whatever the rest says); another capability is
  NOT_COMMUNICATIONS_CREDITS; another currency is OTHER_CURRENCY; then any other bad field is
  MALFORMED. Rows of other capabilities are not validated further: they are not ours to judge.
- **Duplicates within one input** are detected in a bounded window: a repeat within
  `DUPLICATE_WINDOW` (40,000) UsageIds of the first occurrence is always caught. The ids are
  kept as 128-bit integers in two generations of at most 40,000 (about 7 MB together), so
  memory reaches its ceiling within the first 80,000 rows and stays there. An exact set of
  every id would grow with the file (about 100 MB for 1,000,000 rows), and peak memory must not.
  A repeat further apart is yielded again and counted as eligible; the ledger's idempotent
  insert (the UsageId is the RowKey) still charges it once. Microsoft does not repeat UsageIds
  in an export; repeats come from overlapping pages, windows or re-sent members, which sit close
  together, or from concatenated files, which no bounded window could catch anyway.

Hostile input fails as a `UsageFormatError` with a `problem` code. When the problem is the
file's shape (headers; binary or non-UTF-8 content at the start; the zip's directory, declared
sizes, compression ratios, overlapping members, and every PSTN member's header) it is raised
before a single row is yielded. What can only be seen further on (a NUL byte, a broken quote, a
record over `MAX_RECORD_CHARS`, a member inflating past its declared size) stops the import
there; rows already yielded were well formed, and a re-import is safe because the ledger keys
charges by UsageId. Nothing is ever held whole: a 50 MB field is refused after about 1 MiB.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import operator
import re
import struct
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import IO, Any, BinaryIO

from credits.money import MONEY_CONTEXT, Money, currency_exponent

logger = logging.getLogger(__name__)

COMMUNICATIONS_CREDITS = "MCOPSTNPP"

# Column names of "Fields in the export", exactly as Microsoft writes them.
USAGE_ID = "UsageId"
CALL_ID = "Call ID"
CONFERENCE_ID = "Conference ID"
USER_LOCATION = "User Location"
AAD_OBJECT_ID = "AAD ObjectId"
UPN = "UPN"
USER_DISPLAY_NAME = "User Display Name"
CALLER_ID = "Caller ID"
CALL_TYPE = "Call Type"
NUMBER_TYPE = "Number Type"
DOMESTIC_INTERNATIONAL = "Domestic/International"
DESTINATION_DIALED = "Destination Dialed"
DESTINATION_NUMBER = "Destination Number"
START_TIME = "Start Time"
END_TIME = "End Time"
DURATION_SECONDS = "Duration Seconds"
CONNECTION_FEE = "Connection Fee"
CHARGE = "Charge"
CURRENCY = "Currency"
CAPABILITY = "Capability"

COLUMNS: tuple[str, ...] = (
    USAGE_ID, CALL_ID, CONFERENCE_ID, USER_LOCATION, AAD_OBJECT_ID, UPN, USER_DISPLAY_NAME,
    CALLER_ID, CALL_TYPE, NUMBER_TYPE, DOMESTIC_INTERNATIONAL, DESTINATION_DIALED,
    DESTINATION_NUMBER, START_TIME, END_TIME, DURATION_SECONDS, CONNECTION_FEE, CHARGE,
    CURRENCY, CAPABILITY,
)  # fmt: skip
# Without these a row cannot be charged, so a file without them is not an export we can read.
REQUIRED_COLUMNS: tuple[str, ...] = (
    USAGE_ID, START_TIME, DURATION_SECONDS, CONNECTION_FEE, CHARGE, CURRENCY, CAPABILITY,
)  # fmt: skip

# A real row is well under 2 KB; one record (its physical lines together) is refused beyond
# this, which bounds every field too. The process-wide csv.field_size_limit is left alone: it is
# global state, and another parser in the process may rely on it.
MAX_RECORD_CHARS = 1 << 20
DUPLICATE_WINDOW = 40_000

# Zip limits. A year of daily files is 366 PSTN members; a day's CSV of a very large tenant is
# far below 2 GiB; CSV text deflates about 5-20:1, so 200:1 on a large member is a bomb's shape.
MAX_ZIP_BYTES = 4 << 30  # a zip that is not a seekable file is spooled to disk up to this
MAX_ZIP_ENTRIES = 10_000
MAX_MEMBER_BYTES = 2 << 30
MAX_TOTAL_BYTES = 16 << 30
MAX_RATIO = 200
RATIO_CHECKED_ABOVE = 10 * 1000 * 1000
PSTN_MEMBER = "PSTN.calls.*.csv"

_CHUNK = 64 * 1024
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive, or an empty one

# Lengths from the reference table, for the text this product keeps (they go into Table
# properties downstream, which must stay small).
_CALL_ID_MAX, _UPN_MAX, _CALL_TYPE_MAX, _DESTINATION_MAX = 64, 128, 32, 128
_TEXT_LIMITS: Mapping[str, int] = {
    CALL_ID: _CALL_ID_MAX,
    UPN: _UPN_MAX,
    CALL_TYPE: _CALL_TYPE_MAX,
    DESTINATION_DIALED: _DESTINATION_MAX,  # not documented: a country or region name
}

# ASCII only: \d would also take Arabic-Indic or full-width digits, which Decimal and int
# accept too; Microsoft writes none.
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_INTEGER = re.compile(r"\d{1,9}", re.ASCII)
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,7})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)
_MAX_AMOUNT = Decimal("1E+14")


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One charged PSTN call (or leg), as Microsoft reported it."""

    usage_id: str
    """Microsoft's UsageId, a GUID in lower case: the idempotency key of the charge."""
    call_id: str
    user_id: str
    """The user's Entra (AAD) object id in lower case; empty for bot calls (ucap_in, ucap_out)."""
    user_principal_name: str
    call_type: str
    capability: str
    start: datetime
    """The call's start, timezone-aware UTC."""
    duration_seconds: int
    charge: Decimal
    connection_fee: Decimal
    currency: str
    """ISO 4217, upper case; always the account's currency for a yielded row."""
    destination: str
    """Destination Dialed (Graph's destinationName): a country or region."""

    @property
    def amount(self) -> Decimal:
        """What the call cost: the charge plus the connection fee."""
        return MONEY_CONTEXT.add(self.charge, self.connection_fee)

    def amount_minor(self) -> int:
        """The amount in the currency's minor units (cents; yen). Exact: parsing refused any
        amount with more decimals than the currency has, so nothing is rounded here."""
        return self.money().minor

    def money(self) -> Money:
        return Money.from_decimal(self.amount, self.currency)


class SkipReason(StrEnum):
    NOT_COMMUNICATIONS_CREDITS = "not_communications_credits"
    OTHER_CURRENCY = "other_currency"
    MALFORMED = "malformed"
    DUPLICATE_IN_FILE = "duplicate_in_file"


class FormatProblem(StrEnum):
    EMPTY = "empty"
    MISSING_COLUMNS = "missing_columns"
    DUPLICATE_COLUMNS = "duplicate_columns"
    MALFORMED_CSV = "malformed_csv"
    NOT_TEXT = "not_text"
    MALFORMED_ZIP = "malformed_zip"
    ZIP_TOO_LARGE = "zip_too_large"
    ZIP_SUSPICIOUS = "zip_suspicious"
    NO_PSTN_CALLS = "no_pstn_calls"
    NOT_A_PAGE = "not_a_page"


class UsageFormatError(ValueError):
    """The input as a whole cannot be read as PSTN usage; `problem` says why."""

    def __init__(
        self, problem: FormatProblem, detail: str = "", *, columns: Iterable[str] = ()
    ) -> None:
        self.problem = problem
        self.detail = detail
        self.columns: tuple[str, ...] = tuple(columns)
        message = problem.value
        if detail:
            message = f"{message}: {detail}"
        if self.columns:
            message = f"{message} ({', '.join(self.columns)})"
        super().__init__(message)


class _RecentIds:
    """UsageIds seen lately, in two generations of at most `window` ids each.

    A repeat within `window` ids of its first occurrence is always caught (one up to twice as
    far sometimes), and memory never holds more than 2 x `window` ids. Whole sets are dropped
    rather than a FIFO with deletions: a set that keeps losing and gaining members fills with
    dummy slots and rehashes now and then, holding old and new tables at once, so its peak came
    long after the window was full. Generations reach their ceiling within 2 x `window` rows.
    """

    __slots__ = ("_window", "_current", "_previous")

    def __init__(self, window: int) -> None:
        self._window = window
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def seen(self, key: int) -> bool:
        """True if `key` is among the recent ids; else remember it."""
        if key in self._current or key in self._previous:
            return True
        if self._window <= 0:
            return False
        if len(self._current) >= self._window:
            self._previous = self._current
            self._current = set()
        self._current.add(key)
        return False


@dataclass
class ParseReport:
    """What one import read, updated as rows stream by.

    One report stands for one input: give the same report to every page or member of it, so
    that duplicates are detected across them. `duplicate_window` bounds that detection (see the
    module docstring).
    """

    rows_read: int = 0
    eligible: int = 0
    skipped: Counter[SkipReason] = field(default_factory=Counter)
    total_eligible: Decimal = field(default_factory=Decimal)
    duplicate_window: int = DUPLICATE_WINDOW
    _recent: _RecentIds = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._recent = _RecentIds(self.duplicate_window)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def _skip(self, reason: SkipReason) -> None:
        self.skipped[reason] += 1

    def _accept(self, row: UsageRow) -> None:
        self.eligible += 1
        self.total_eligible = MONEY_CONTEXT.add(self.total_eligible, row.amount)


class _Account:
    """The account's currency, validated once, with what each row is checked against."""

    __slots__ = ("currency", "quantum", "amount_text")

    def __init__(self, currency: str) -> None:
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise ValueError(f"account currency must be an ISO 4217 code, not {currency!r}")
        self.currency = currency.upper()
        # Decimals allowed: numeric(16,2), and no finer than the currency's minor unit (0 for
        # JPY). Trailing zeros beyond them are harmless ("0.10", "12.00" yen).
        places = min(2, currency_exponent(self.currency))
        self.quantum = MONEY_CONTEXT.scaleb(Decimal(1), -places)
        fraction = rf"\.\d{{1,{places}}}0{{0,14}}" if places else r"\.0{1,16}"
        # The value rule of `_amount_value` as a pattern, so that the common case (text from
        # the CSV) costs one match and one Decimal; the tests hold the two to the same answers.
        self.amount_text = re.compile(rf"\d{{1,14}}(?:{fraction})?", re.ASCII)


# --- one row, whatever its source ---------------------------------------------------------------


class _Malformed(Exception):
    """A field of one row is not what Microsoft writes; the row is counted, not charged."""


def _usage_key(text: str) -> tuple[str, int] | None:
    if not _GUID.fullmatch(text):
        return None
    return text.lower(), int(text.replace("-", ""), 16)


def _classify(
    report: ParseReport, account: _Account, usage_id: Any, capability: Any, currency: Any
) -> str | None:
    """Steps of the classification order that come before a full parse; the id, or None when
    the row was skipped (and counted)."""
    key = _usage_key(usage_id) if isinstance(usage_id, str) else None
    if key is None:
        report._skip(SkipReason.MALFORMED)
        return None
    if report._recent.seen(key[1]):
        report._skip(SkipReason.DUPLICATE_IN_FILE)
        return None
    if capability != COMMUNICATIONS_CREDITS:
        report._skip(SkipReason.NOT_COMMUNICATIONS_CREDITS)
        return None
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        report._skip(SkipReason.MALFORMED)
        return None
    if currency.upper() != account.currency:
        report._skip(SkipReason.OTHER_CURRENCY)
        return None
    return key[0]


def _amount_value(value: Decimal, account: _Account) -> Decimal:
    if not value.is_finite() or value < 0 or value >= _MAX_AMOUNT:
        raise _Malformed("amount out of range")
    try:
        remainder = MONEY_CONTEXT.remainder(value, account.quantum)
    except InvalidOperation as error:
        raise _Malformed("amount out of range") from error
    if remainder:
        raise _Malformed("more decimals than numeric(16,2) or the currency allows")
    return value


def _amount_text(text: str, account: _Account, *, empty_is_zero: bool) -> Decimal:
    text = text.strip()
    if not text and empty_is_zero:
        return Decimal(0)
    if not account.amount_text.fullmatch(text):
        raise _Malformed("not a plain amount in whole minor units of numeric(16,2)")
    return Decimal(text)


def _amount_json(value: Any, account: _Account, *, null_is_zero: bool) -> Decimal:
    if value is None and null_is_zero:
        return Decimal(0)
    if isinstance(value, float):
        # A caller parsed the page with binary floats: the amount is already inexact.
        raise TypeError("parse Graph pages with json.loads(..., parse_float=Decimal)")
    if isinstance(value, bool) or value is None:
        raise _Malformed("not an amount")
    if isinstance(value, int):
        return _amount_value(Decimal(value), account)
    if isinstance(value, Decimal):
        return _amount_value(value, account)
    if isinstance(value, str):
        return _amount_text(value, account, empty_is_zero=False)
    raise _Malformed("not an amount")


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise _Malformed("not a time")
    text = text.strip()
    if not _TIME.fullmatch(text):
        raise _Malformed("not an ISO 8601 time with an offset")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as error:  # 2024-02-30, 25:00
        raise _Malformed("no such time") from error
    return when.astimezone(UTC)


def _duration_text(text: str) -> int:
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        raise _Malformed("not a duration")
    return int(text)


def _user_id(text: Any) -> str:
    if text is None or text == "":
        return ""  # bot calls (ucap_in, ucap_out) have no user
    if not isinstance(text, str) or not _GUID.fullmatch(text):
        raise _Malformed("AAD ObjectId is not a GUID")
    return text.lower()


def _text(value: Any, column: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Malformed(f"{column} is not text")
    limit = _TEXT_LIMITS.get(column)
    if limit is not None and len(value) > limit:
        raise _Malformed(f"{column} longer than {limit}")
    return value


# --- CSV ----------------------------------------------------------------------------------------


# The cells a row is built from, in the order `_Columns.kept` returns them.
_KEPT = (
    USAGE_ID, CAPABILITY, CURRENCY, CALL_ID, AAD_OBJECT_ID, UPN, CALL_TYPE, START_TIME,
    DURATION_SECONDS, CHARGE, CONNECTION_FEE, DESTINATION_DIALED,
)  # fmt: skip


class _Columns:
    """Where each column is in this file's rows, found by header name."""

    def __init__(self, header: list[str]) -> None:
        positions: dict[str, int] = {}
        repeated: list[str] = []
        for index, name in enumerate(header):
            if name in COLUMNS:
                if name in positions:
                    repeated.append(name)
                positions[name] = index
        if repeated:
            raise UsageFormatError(FormatProblem.DUPLICATE_COLUMNS, columns=repeated)
        missing = [name for name in REQUIRED_COLUMNS if name not in positions]
        if missing:
            raise UsageFormatError(FormatProblem.MISSING_COLUMNS, columns=missing)
        self.width = len(header)
        # One C call per row picks every kept cell. An optional column the file lacks points
        # at -1, where `_row_from_record` appends an empty cell.
        self.kept = operator.itemgetter(*(positions.get(name, -1) for name in _KEPT))


class _RecordBudget:
    """Characters of the record being read; the line feeder refuses to pass the limit."""

    __slots__ = ("chars",)

    def __init__(self) -> None:
        self.chars = 0


def _lines(text: io.TextIOWrapper, budget: _RecordBudget) -> Iterator[str]:
    """Physical lines for csv.reader, never more than one record's limit held at once."""
    while True:
        try:
            # The limit bounds what readline buffers: a 50 MB "line" is never read whole.
            line = text.readline(MAX_RECORD_CHARS + 1)
        except UnicodeDecodeError as error:
            raise UsageFormatError(FormatProblem.NOT_TEXT, "not UTF-8") from error
        if not line:
            return
        if "\x00" in line:
            raise UsageFormatError(FormatProblem.NOT_TEXT, "NUL bytes: a binary file")
        budget.chars += len(line)
        if budget.chars > MAX_RECORD_CHARS:
            raise UsageFormatError(
                FormatProblem.MALFORMED_CSV, f"a record longer than {MAX_RECORD_CHARS} characters"
            )
        yield line


class _CsvReader:
    """The header and then the records of one CSV stream; the stream is left open."""

    def __init__(self, stream: IO[bytes]) -> None:
        # utf-8-sig drops a BOM; newline="" lets csv see quoted CR/LF as they are.
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
        self._budget = _RecordBudget()
        self._reader = csv.reader(_lines(self._text, self._budget), strict=True)
        try:
            self.columns = _Columns(self._header())
        except UsageFormatError:
            self.detach()
            raise

    def _next(self) -> list[str] | None:
        try:
            record = next(self._reader, None)
        except csv.Error as error:
            raise UsageFormatError(
                FormatProblem.MALFORMED_CSV, f"line {self._reader.line_num}: {error}"
            ) from error
        self._budget.chars = 0
        return record

    def _header(self) -> list[str]:
        while True:
            record = self._next()
            if record is None:
                raise UsageFormatError(FormatProblem.EMPTY, "no header row")
            if record:  # blank lines before the header are harmless
                return record

    def records(self) -> Iterator[list[str]]:
        while (record := self._next()) is not None:
            if record:
                yield record

    def detach(self) -> None:
        # Detaching keeps the TextIOWrapper from closing the caller's stream when collected.
        self._text.detach()


def _row_from_record(
    record: list[str], columns: _Columns, account: _Account, report: ParseReport
) -> UsageRow | None:
    if len(record) != columns.width:
        report._skip(SkipReason.MALFORMED)  # a broken quote or a cell too many or too few
        return None
    record.append("")
    (usage_id, capability, currency, call_id, user_id, upn, call_type, start, duration, charge,
     fee, destination) = columns.kept(record)  # fmt: skip
    usage_id = _classify(report, account, usage_id, capability, currency)
    if usage_id is None:
        return None
    try:
        if (
            len(call_id) > _CALL_ID_MAX
            or len(upn) > _UPN_MAX
            or len(call_type) > _CALL_TYPE_MAX
            or len(destination) > _DESTINATION_MAX
        ):
            raise _Malformed("text longer than the export's column allows")
        return UsageRow(
            usage_id=usage_id,
            call_id=call_id,
            user_id=_user_id(user_id),
            user_principal_name=upn,
            call_type=call_type,
            capability=COMMUNICATIONS_CREDITS,
            start=_time(start),
            duration_seconds=_duration_text(duration),
            charge=_amount_text(charge, account, empty_is_zero=False),
            connection_fee=_amount_text(fee, account, empty_is_zero=True),
            currency=account.currency,
            destination=destination,
        )
    except _Malformed as problem:
        logger.debug("usage %s malformed: %s", usage_id, problem)
        report._skip(SkipReason.MALFORMED)
        return None


def _csv_rows(stream: IO[bytes], account: _Account, report: ParseReport) -> Iterator[UsageRow]:
    reader = _CsvReader(stream)
    try:
        columns = reader.columns
        for record in reader.records():
            report.rows_read += 1
            row = _row_from_record(record, columns, account, report)
            if row is not None:
                report._accept(row)
                yield row
    finally:
        reader.detach()


def iter_csv_rows(
    stream: BinaryIO | Iterable[bytes], *, account_currency: str, report: ParseReport
) -> Iterator[UsageRow]:
    """The eligible rows of one PSTN usage CSV, streamed; everything else counted in `report`.

    `stream` is a binary file (left open) or an iterable of byte chunks (an upload). Header
    problems, binary or non-UTF-8 content and oversized records raise `UsageFormatError`.
    """
    account = _Account(account_currency)
    return _csv_rows(_readable(stream), account, report)


# --- the admin centre's zip ---------------------------------------------------------------------


class _Chunks(io.RawIOBase):
    """A raw binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError("usage input must be bytes")
            self._pending = memoryview(chunk).cast("B")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _readable(source: BinaryIO | Iterable[bytes]) -> IO[bytes]:
    if hasattr(source, "read"):
        return source  # type: ignore[return-value]
    return io.BufferedReader(_Chunks(iter(source)), buffer_size=_CHUNK)


def _open_source(source: BinaryIO | Iterable[bytes]) -> tuple[bytes, IO[bytes], bool]:
    """(the first 4 bytes, a stream that still starts with them, whether it can seek)."""
    stream = _readable(source)
    seekable = _seekable(stream)
    if seekable:
        start = stream.tell()
        head = _read_at_least(stream, 4)
        stream.seek(start)
        return head, stream, True
    chunks = iter(lambda: stream.read(_CHUNK), b"")
    head = _read_at_least_from(chunks, 4)
    restored = io.BufferedReader(_Chunks(itertools.chain([head], chunks)), buffer_size=_CHUNK)
    return head[:4], restored, False


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _read_at_least(stream: IO[bytes], size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _read_at_least_from(chunks: Iterator[bytes], size: int) -> bytes:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return head


def iter_export_rows(
    source: BinaryIO | Iterable[bytes], *, account_currency: str, report: ParseReport
) -> Iterator[UsageRow]:
    """The eligible rows of a PSTN usage CSV or of the admin centre's `Calls.Export.{id}.zip`.

    A zip is told by its magic bytes. Its `PSTN.calls.*.csv` members are read in name (date)
    order; `DirectRouting.calls.*.csv`, `parameters.json` and anything else are ignored. Before
    any row is yielded, every PSTN member's declared size, compression ratio and header row are
    checked. A zip that is not in a seekable file is spooled to a temporary file first (zip's
    directory is at its end).
    """
    account = _Account(account_currency)
    return _export_rows(source, account, report)


def _export_rows(
    source: BinaryIO | Iterable[bytes], account: _Account, report: ParseReport
) -> Iterator[UsageRow]:
    head, stream, seekable = _open_source(source)
    if not head.startswith(_ZIP_MAGIC):
        yield from _csv_rows(stream, account, report)
        return
    if seekable:
        yield from _zip_rows(stream, account, report)
        return
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        copied = 0
        while chunk := stream.read(_CHUNK):
            copied += len(chunk)
            if copied > MAX_ZIP_BYTES:
                raise UsageFormatError(FormatProblem.ZIP_TOO_LARGE, "archive too large")
            spool.write(chunk)
        spool.seek(0)
        yield from _zip_rows(spool, account, report)  # type: ignore[arg-type]


def _zip_rows(file: IO[bytes], account: _Account, report: ParseReport) -> Iterator[UsageRow]:
    _check_entry_count(file)
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as error:
        raise UsageFormatError(FormatProblem.MALFORMED_ZIP, str(error)) from error
    with archive:
        members = sorted(
            (
                info
                for info in archive.infolist()
                if not info.is_dir() and fnmatchcase(_basename(info.filename), PSTN_MEMBER)
            ),
            key=lambda info: info.filename,
        )
        if not members:
            raise UsageFormatError(FormatProblem.NO_PSTN_CALLS, "no PSTN.calls.*.csv in the zip")
        total = 0
        for info in members:
            _check_member(info)
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise UsageFormatError(FormatProblem.ZIP_TOO_LARGE, "members too large together")
        _check_no_overlap(file, members)
        # Every member's header first, so a bad one fails the import before any row is charged.
        for info in members:
            with _member_stream(file, info) as member:
                try:
                    _CsvReader(member).detach()
                except UsageFormatError as error:
                    logger.warning("zip member %s: %s", info.filename, error)
                    raise
        for info in members:
            logger.info("reading %s (%d bytes)", info.filename, info.file_size)
            with _member_stream(file, info) as member:
                yield from _csv_rows(member, account, report)


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _check_entry_count(file: IO[bytes]) -> None:
    """Refuse a directory of absurd size before zipfile builds an object for each entry."""
    file.seek(0, io.SEEK_END)
    size = file.tell()
    tail_size = min(size, 22 + 0xFFFF)  # the end record and the longest comment
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    file.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise UsageFormatError(FormatProblem.MALFORMED_ZIP, "no end of central directory")
    entries = struct.unpack_from("<H", tail, at + 10)[0]
    # 0xFFFF means "see the zip64 record": more entries than an export ever has.
    if entries > MAX_ZIP_ENTRIES:
        raise UsageFormatError(FormatProblem.ZIP_SUSPICIOUS, f"{entries} entries")


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{name} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{name}: unsupported compression")
    if info.file_size > MAX_MEMBER_BYTES:
        raise UsageFormatError(
            FormatProblem.ZIP_TOO_LARGE, f"{name} declares {info.file_size} bytes"
        )
    if info.file_size > RATIO_CHECKED_ABOVE and (
        info.file_size > MAX_RATIO * max(info.compress_size, 1)
    ):
        raise UsageFormatError(
            FormatProblem.ZIP_SUSPICIOUS,
            f"{name} compressed {info.file_size // max(info.compress_size, 1)}:1",
        )
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{name}: stored sizes differ")


class _Member(io.RawIOBase):
    """One member's bytes, inflated here rather than by ZipFile.open.

    ZipFile.open stops quietly at the declared size and only a CRC mismatch (which a crafted
    file avoids) would tell that more data followed. Inflating here, output beyond the declared
    size is `zip_too_large` the moment it appears, and a short or corrupt member is
    `malformed_zip`. Sizes and offsets come from the central directory that zipfile parsed.
    """

    def __init__(self, file: IO[bytes], info: zipfile.ZipInfo) -> None:
        self._file = file
        self._info = info
        self._offset = _data_offset(file, info)
        self._compressed_left = info.compress_size
        deflated = info.compress_type == zipfile.ZIP_DEFLATED
        self._inflater = zlib.decompressobj(-15) if deflated else None
        self._tail = b""  # compressed input the inflater has not used yet
        self._produced = 0
        self._crc = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        while not self._done:
            data = self._next(size)
            if data:
                buffer[: len(data)] = data
                return len(data)
        return 0

    def _raw(self, size: int) -> bytes:
        size = min(size, self._compressed_left)
        if size <= 0:
            return b""
        self._file.seek(self._offset)
        data = self._file.read(size)
        if len(data) != size:
            raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{self._info.filename} is cut")
        self._offset += size
        self._compressed_left -= size
        return data

    def _next(self, size: int) -> bytes:
        if self._inflater is None:
            data = self._raw(size)
            finished = self._compressed_left == 0
        else:
            source = self._tail or self._raw(_CHUNK)
            try:
                data = self._inflater.decompress(source, size)
            except zlib.error as error:
                raise UsageFormatError(
                    FormatProblem.MALFORMED_ZIP, f"{self._info.filename}: {error}"
                ) from error
            self._tail = self._inflater.unconsumed_tail
            finished = self._inflater.eof or (
                not data and not self._tail and self._compressed_left == 0
            )
        self._produced += len(data)
        if self._produced > self._info.file_size:
            raise UsageFormatError(
                FormatProblem.ZIP_TOO_LARGE,
                f"{self._info.filename} holds more than its declared {self._info.file_size} bytes",
            )
        self._crc = zlib.crc32(data, self._crc)
        if finished:
            self._finish()
        return data

    def _finish(self) -> None:
        self._done = True
        name = self._info.filename
        if self._inflater is not None and not self._inflater.eof:
            raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{name}: deflate stream cut")
        if self._produced != self._info.file_size:
            raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{name}: shorter than declared")
        if self._crc != self._info.CRC:
            raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{name}: bad CRC-32")


# The local file header (APPNOTE 4.3.7): 30 bytes, then the name and the extra field.
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


def _data_offset(file: IO[bytes], info: zipfile.ZipInfo) -> int:
    file.seek(info.header_offset)
    header = file.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or not header.startswith(b"PK\x03\x04"):
        raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{info.filename}: bad local header")
    *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    # Decoded as zipfile decoded the central directory's name (bit 11: UTF-8, else CP437).
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    if file.read(name_length).decode(encoding, "replace") != info.orig_filename:
        raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{info.filename}: names differ")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _check_no_overlap(file: IO[bytes], members: list[zipfile.ZipInfo]) -> None:
    """Members whose data overlap are how the densest zip bombs reuse one compressed kernel
    many times (Fifield, "A better zip bomb"); an export never shares bytes between files."""
    end = 0
    for info in sorted(members, key=lambda member: member.header_offset):
        if info.header_offset < end:
            raise UsageFormatError(FormatProblem.ZIP_SUSPICIOUS, f"{info.filename} overlaps")
        end = _data_offset(file, info) + info.compress_size


def _member_stream(file: IO[bytes], info: zipfile.ZipInfo) -> io.BufferedReader:
    return io.BufferedReader(_Member(file, info), buffer_size=_CHUNK)


# --- Microsoft Graph ----------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number Graph writes")


def parse_graph_page(text: str | bytes) -> dict[str, Any]:
    """A getPstnCalls response body, with every JSON number that has a fraction as a Decimal.

    Graph's `charge` and `connectionCharge` are doubles; parsed as Decimal, "0.1" stays exactly
    0.1 and no binary float ever touches an amount. NaN and Infinity are refused.
    """
    try:
        page = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise UsageFormatError(FormatProblem.NOT_A_PAGE, str(error)[:200]) from error
    if not isinstance(page, dict):
        raise UsageFormatError(FormatProblem.NOT_A_PAGE, "not a JSON object")
    return page


def iter_graph_rows(
    page: Mapping[str, Any], *, account_currency: str, report: ParseReport
) -> Iterator[UsageRow]:
    """The eligible rows of one getPstnCalls page (its `value` list of pstnCallLogRow).

    The page must have been parsed with `parse_float=Decimal` (`parse_graph_page` does it); a
    binary float in an amount raises TypeError rather than be charged inexactly.
    """
    account = _Account(account_currency)
    items = page.get("value")
    if not isinstance(items, list):
        raise UsageFormatError(FormatProblem.NOT_A_PAGE, "no value list")
    return _graph_rows(items, account, report)


def _graph_rows(items: list[Any], account: _Account, report: ParseReport) -> Iterator[UsageRow]:
    for item in items:
        report.rows_read += 1
        row = _row_from_graph(item, account, report)
        if row is not None:
            report._accept(row)
            yield row


def _row_from_graph(item: Any, account: _Account, report: ParseReport) -> UsageRow | None:
    if not isinstance(item, dict):
        report._skip(SkipReason.MALFORMED)
        return None
    usage_id = _classify(
        report, account, item.get("id"), item.get("licenseCapability"), item.get("currency")
    )
    if usage_id is None:
        return None
    try:
        duration = item.get("duration")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
            raise _Malformed("duration is not a whole number of seconds")
        return UsageRow(
            usage_id=usage_id,
            call_id=_text(item.get("callId"), CALL_ID),
            user_id=_user_id(item.get("userId")),
            user_principal_name=_text(item.get("userPrincipalName"), UPN),
            call_type=_text(item.get("callType"), CALL_TYPE),
            capability=COMMUNICATIONS_CREDITS,
            start=_time(item.get("startDateTime")),
            duration_seconds=duration,
            charge=_amount_json(item.get("charge"), account, null_is_zero=False),
            connection_fee=_amount_json(item.get("connectionCharge"), account, null_is_zero=True),
            currency=account.currency,
            destination=_text(item.get("destinationName"), DESTINATION_DIALED),
        )
    except _Malformed as problem:
        logger.debug("usage %s malformed: %s", usage_id, problem)
        report._skip(SkipReason.MALFORMED)
        return None


if __name__ == "__main__":
    # The command line wires stores and services, which the domain never imports: it lives in
    # scripts/usage_cli.py and is only reached when this module is run as a program.
    from scripts.usage_cli import main

    raise SystemExit(main())
