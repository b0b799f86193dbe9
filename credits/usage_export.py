"""The admin centre's PSTN usage export read as a stream: the CSV, or the zip it downloads as.

- `iter_csv_rows`: RFC 4180 with the 20 columns of "Fields in the export", found by header name;
- `iter_export_rows`: the download `Calls.Export.{id}.zip` (its `PSTN.calls.{date}.csv`
  members one after another), or a bare CSV.

Each record becomes a `credits.usage.UsageRow` by the rules `credits/usage.py` states; what is
not charged is counted in the `ParseReport`.

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
import logging
import operator
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from typing import IO, Any, BinaryIO

from credits.usage import (
    AAD_OBJECT_ID,
    CALL_ID,
    CALL_ID_MAX,
    CALL_TYPE,
    CALL_TYPE_MAX,
    CAPABILITY,
    CHARGE,
    COLUMNS,
    COMMUNICATIONS_CREDITS,
    CONNECTION_FEE,
    CURRENCY,
    DESTINATION_DIALED,
    DESTINATION_MAX,
    DURATION_SECONDS,
    REQUIRED_COLUMNS,
    START_TIME,
    UPN,
    UPN_MAX,
    USAGE_ID,
    AccountRules,
    FormatProblem,
    MalformedRow,
    ParseReport,
    SkipReason,
    UsageFormatError,
    UsageRow,
    amount_of_text,
    classify,
    duration_of_text,
    time_of,
    user_id_of,
)

logger = logging.getLogger(__name__)

# A real row is well under 2 KB; one record (its physical lines together) is refused beyond
# this, which bounds every field too. The process-wide csv.field_size_limit is left alone: it is
# global state, and another parser in the process may rely on it.
MAX_RECORD_CHARS = 1 << 20

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
    record: list[str], columns: _Columns, account: AccountRules, report: ParseReport
) -> UsageRow | None:
    if len(record) != columns.width:
        report.skip(SkipReason.MALFORMED)  # a broken quote or a cell too many or too few
        return None
    record.append("")
    (usage_id, capability, currency, call_id, user_id, upn, call_type, start, duration, charge,
     fee, destination) = columns.kept(record)  # fmt: skip
    usage_id = classify(report, account, usage_id, capability, currency)
    if usage_id is None:
        return None
    try:
        if (
            len(call_id) > CALL_ID_MAX
            or len(upn) > UPN_MAX
            or len(call_type) > CALL_TYPE_MAX
            or len(destination) > DESTINATION_MAX
        ):
            raise MalformedRow("text longer than the export's column allows")
        return UsageRow(
            usage_id=usage_id,
            call_id=call_id,
            user_id=user_id_of(user_id),
            user_principal_name=upn,
            call_type=call_type,
            capability=COMMUNICATIONS_CREDITS,
            start=time_of(start),
            duration_seconds=duration_of_text(duration),
            charge=amount_of_text(charge, account, empty_is_zero=False),
            connection_fee=amount_of_text(fee, account, empty_is_zero=True),
            currency=account.currency,
            destination=destination,
        )
    except MalformedRow as problem:
        logger.debug("usage %s malformed: %s", usage_id, problem)
        report.skip(SkipReason.MALFORMED)
        return None


def _csv_rows(stream: IO[bytes], account: AccountRules, report: ParseReport) -> Iterator[UsageRow]:
    reader = _CsvReader(stream)
    try:
        columns = reader.columns
        for record in reader.records():
            report.rows_read += 1
            row = _row_from_record(record, columns, account, report)
            if row is not None:
                report.accept(row)
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
    account = AccountRules(account_currency)
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
    account = AccountRules(account_currency)
    return _export_rows(source, account, report)


def _export_rows(
    source: BinaryIO | Iterable[bytes], account: AccountRules, report: ParseReport
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


def _zip_rows(file: IO[bytes], account: AccountRules, report: ParseReport) -> Iterator[UsageRow]:
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
            with _member_stream(archive, info) as member:
                try:
                    _CsvReader(member).detach()
                except UsageFormatError as error:
                    logger.warning("zip member %s: %s", info.filename, error)
                    raise
        for info in members:
            logger.info("reading %s (%d bytes)", info.filename, info.file_size)
            with _member_stream(archive, info) as member:
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
    """One member's bytes, read with `ZipFile.open`, held to the size the directory declares.

    ZipFile.open checks the local header and the CRC-32, but it stops quietly at the declared
    size: a crafted member whose CRC matches its first `file_size` bytes could carry more data
    than it says (only a CRC mismatch would have told). So a member that inflates past its
    declared size is `zip_too_large` here, and one that ends short is `malformed_zip`.
    """

    def __init__(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        self._info = info
        try:
            self._member = archive.open(info)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise UsageFormatError(
                FormatProblem.MALFORMED_ZIP, f"{info.filename}: {error}"
            ) from error
        self._produced = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        try:
            data = self._member.read(len(buffer))
        except (zipfile.BadZipFile, EOFError, zlib.error) as error:  # a bad CRC, a cut stream
            raise UsageFormatError(
                FormatProblem.MALFORMED_ZIP, f"{self._info.filename}: {error}"
            ) from error
        if not data:
            self._finish()
            return 0
        self._produced += len(data)
        buffer[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        self._done = True
        name, declared = self._info.filename, self._info.file_size
        if self._produced < declared:
            raise UsageFormatError(FormatProblem.MALFORMED_ZIP, f"{name}: shorter than declared")
        if _holds_more(self._member):
            raise UsageFormatError(
                FormatProblem.ZIP_TOO_LARGE, f"{name} holds more than its declared {declared} bytes"
            )

    def close(self) -> None:
        self._member.close()
        super().close()


def _holds_more(member: Any) -> bool:
    """Whether a member read to its declared size has compressed data left over.

    ZipExtFile keeps no public record of it: this reads the state CPython's ZipExtFile keeps
    (`_compress_left`, the compressed bytes not read yet, and `_decompressor`, the zlib
    inflater), on the pinned Python 3.11. Without that state the member is not trusted.
    """
    left = getattr(member, "_compress_left", None)
    if not isinstance(left, int):
        return True
    if left > 0:
        return True
    inflater = getattr(member, "_decompressor", None)
    if inflater is None:  # stored: every byte was copied
        return False
    if inflater.eof:
        return False
    # Input left, or output the inflater still holds: past the declared size either way.
    return bool(inflater.unconsumed_tail) or bool(inflater.decompress(b"", 1))


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


def _member_stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> io.BufferedReader:
    return io.BufferedReader(_Member(archive, info), buffer_size=_CHUNK)
