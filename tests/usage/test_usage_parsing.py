"""Reading PSTN usage exports: the rows charged, the rows counted, the files refused."""

from __future__ import annotations

import csv
import decimal
import io
import json
import random
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credits.usage import (
    DUPLICATE_WINDOW,
    FormatProblem,
    ParseReport,
    SkipReason,
    UsageFormatError,
    UsageRow,
    iter_graph_rows,
    parse_graph_page,
)
from credits.usage_export import iter_csv_rows, iter_export_rows
from tests.usage.generate import COLUMNS, write_export

# Wide enough for any amount here, whatever precision a dependency set for the process.
WIDE = decimal.Context(prec=60)

USAGE_ID = "8A7D6C5B-4E3F-4A1B-9C8D-7E6F5A4B3C2D"
USER_ID = "0F1E2D3C-4B5A-4968-8776-655443322110"
REQUIRED = (
    "UsageId", "Start Time", "Duration Seconds", "Connection Fee", "Charge", "Currency",
    "Capability",
)  # fmt: skip


def record(**cells: str) -> dict[str, str]:
    """One eligible row (Communications Credits, USD); keyword names are columns with `_` for
    spaces and `slash` for '/'."""
    row = {
        "UsageId": USAGE_ID,
        "Call ID": "f0e1d2c3-0000-4000-8000-000000000001",
        "Conference ID": "",
        "User Location": "ES",
        "AAD ObjectId": USER_ID,
        "UPN": "josé.álvarez@contoso.com",
        "User Display Name": "Álvarez, José",
        "Caller ID": "+3491234****",
        "Call Type": "user_out",
        "Number Type": "CallingPlan",
        "Domestic/International": "International",
        "Destination Dialed": "Россия",
        "Destination Number": "+7495123***",
        "Start Time": "2024-05-01T12:30:00.1234567+02:00",
        "End Time": "2024-05-01T12:31:40.1234567+02:00",
        "Duration Seconds": "100",
        "Connection Fee": "0.10",
        "Charge": "1.23",
        "Currency": "USD",
        "Capability": "MCOPSTNPP",
    }
    for key, value in cells.items():
        row[key.replace("_", " ").replace(" slash ", "/")] = value
    return row


def csv_bytes(
    rows: list[dict[str, str]],
    *,
    columns: tuple[str, ...] = COLUMNS,
    bom: bool = False,
    newline: str = "\r\n",
) -> bytes:
    text = io.StringIO(newline="")
    if bom:
        text.write("\ufeff")
    writer = csv.writer(text, lineterminator=newline)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(name, "") for name in columns])
    return text.getvalue().encode("utf-8")


def parse(
    data: bytes | Any, currency: str = "USD", report: ParseReport | None = None
) -> tuple[list[UsageRow], ParseReport]:
    report = report if report is not None else ParseReport()
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    rows = list(iter_export_rows(source, account_currency=currency, report=report))
    return rows, report


def problem_of(data: bytes | Any, currency: str = "USD") -> FormatProblem:
    """The shape error, asserting that not a single row came out before it."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    rows = iter_export_rows(source, account_currency=currency, report=ParseReport())
    with pytest.raises(UsageFormatError) as raised:
        next(rows)
    return raised.value.problem


def outcome(**cells: str) -> Decimal | SkipReason:
    """The amount charged for one row, or the reason it was skipped."""
    rows, report = parse(csv_bytes([record(**cells)]))
    if rows:
        return rows[0].amount
    (reason,) = report.skipped
    return reason


# --- one row ------------------------------------------------------------------------------------


def test_a_communications_credits_row_becomes_a_typed_usage_row() -> None:
    rows, report = parse(csv_bytes([record()]))

    assert rows == [
        UsageRow(
            usage_id=USAGE_ID.lower(),
            call_id="f0e1d2c3-0000-4000-8000-000000000001",
            user_id=USER_ID.lower(),
            user_principal_name="josé.álvarez@contoso.com",
            call_type="user_out",
            capability="MCOPSTNPP",
            start=datetime(2024, 5, 1, 10, 30, 0, 123456, tzinfo=UTC),
            duration_seconds=100,
            charge=Decimal("1.23"),
            connection_fee=Decimal("0.10"),
            currency="USD",
            destination="Россия",
        )
    ]
    row = rows[0]
    assert row.start.utcoffset() is not None and row.start.tzinfo == UTC
    assert row.amount == Decimal("1.33") and row.amount_minor() == 133
    assert (report.rows_read, report.eligible, report.total_eligible) == (1, 1, Decimal("1.33"))
    assert report.skipped == {}


def test_bot_calls_have_no_user_and_are_charged() -> None:
    rows, _ = parse(csv_bytes([record(Call_Type="ucap_out", AAD_ObjectId="", UPN="")]))
    assert [(r.call_type, r.user_id, r.user_principal_name) for r in rows] == [("ucap_out", "", "")]


@pytest.mark.parametrize(
    ("charge", "fee", "currency", "expected"),
    [
        ("1.23", "0.10", "USD", Decimal("1.33")),
        ("1.2", "0", "USD", Decimal("1.2")),
        ("0.10", "", "USD", Decimal("0.10")),  # an empty fee is no fee
        ("12.00", "0.00", "JPY", Decimal("12")),  # whole yen written with two zero decimals
        ("12", "3", "JPY", Decimal("15")),
        ("99999999999999.99", "0", "USD", Decimal("99999999999999.99")),  # numeric(16,2) max
        ("0.0123", "0", "USD", SkipReason.MALFORMED),  # more decimals than numeric(16,2)
        ("0.001", "0", "BHD", SkipReason.MALFORMED),  # BHD has 3, the column has 2
        ("12.50", "0", "JPY", SkipReason.MALFORMED),  # half a yen
        ("100000000000000.00", "0", "USD", SkipReason.MALFORMED),  # 15 whole digits
        ("-1.00", "0", "USD", SkipReason.MALFORMED),
        ("1.00", "-0.10", "USD", SkipReason.MALFORMED),
        ("+1.00", "0", "USD", SkipReason.MALFORMED),
        ("1e2", "0", "USD", SkipReason.MALFORMED),
        ("NaN", "0", "USD", SkipReason.MALFORMED),
        ("Infinity", "0", "USD", SkipReason.MALFORMED),
        ("1,000.00", "0", "USD", SkipReason.MALFORMED),
        ("12.", "0", "USD", SkipReason.MALFORMED),
        (".5", "0", "USD", SkipReason.MALFORMED),
        ("１２.００", "0", "USD", SkipReason.MALFORMED),  # full-width digits
        ("", "0", "USD", SkipReason.MALFORMED),  # an unknown charge is not zero
    ],
)
def test_amounts_follow_the_numeric_16_2_rule(
    charge: str, fee: str, currency: str, expected: Decimal | SkipReason
) -> None:
    rows, report = parse(
        csv_bytes([record(Charge=charge, Connection_Fee=fee, Currency=currency)]), currency
    )
    if isinstance(expected, SkipReason):
        assert rows == [] and report.skipped == {expected: 1}
    else:
        assert [r.amount for r in rows] == [expected]
        minor = rows[0].amount_minor()
        # The test's own arithmetic in a wide context too: the ambient one may be 15 digits.
        assert minor == int(WIDE.scaleb(expected, 2 if currency == "USD" else 0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:30:00Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00.0000000Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T23:30:00-05:00", datetime(2024, 5, 2, 4, 30, tzinfo=UTC)),
        ("2024-05-01 10:30:00+00:00", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00", SkipReason.MALFORMED),  # no offset: ambiguous
        ("2024-02-30T10:30:00Z", SkipReason.MALFORMED),
        ("2024-05-01", SkipReason.MALFORMED),
        ("20240501T103000Z", SkipReason.MALFORMED),
        ("=NOW()", SkipReason.MALFORMED),
        ("", SkipReason.MALFORMED),
    ],
)
def test_start_times_need_an_offset_and_become_utc(
    text: str, expected: datetime | SkipReason
) -> None:
    rows, report = parse(csv_bytes([record(Start_Time=text)]))
    if isinstance(expected, SkipReason):
        assert report.skipped == {expected: 1}
    else:
        assert [r.start for r in rows] == [expected]
        assert rows[0].start.tzinfo == UTC


@pytest.mark.parametrize("capability", ["MCOPSTN1", "MCOMEETADD", "MCOPSTNU", "mcopstnpp", ""])
def test_other_capabilities_are_not_ours(capability: str) -> None:
    # Not validated further: a broken amount in a Calling Plan row is not our concern.
    assert outcome(Capability=capability, Charge="=1+2") == SkipReason.NOT_COMMUNICATIONS_CREDITS


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("EUR", SkipReason.OTHER_CURRENCY),
        ("usd", Decimal("1.33")),
        ("US$", SkipReason.MALFORMED),
        ("", SkipReason.MALFORMED),
    ],
)
def test_currency_against_the_account(currency: str, expected: Decimal | SkipReason) -> None:
    assert outcome(Currency=currency) == expected


@pytest.mark.parametrize(
    "cells",
    [
        {"UsageId": ""},
        {"UsageId": "{" + USAGE_ID + "}"},
        {"UsageId": USAGE_ID.replace("-", "")},
        {"UsageId": '=HYPERLINK("http://x")'},
        {"AAD_ObjectId": "not-a-guid"},
        {"Duration_Seconds": "12.5"},
        {"Duration_Seconds": "-3"},
        {"Duration_Seconds": "٣"},  # an Arabic-Indic digit
        {"Call_ID": "x" * 65},  # longer than the column's 64
        {"Call_Type": "y" * 33},
    ],
)
def test_malformed_cells(cells: dict[str, str]) -> None:
    assert outcome(**cells) == SkipReason.MALFORMED


def test_formula_cells_are_text_and_formula_amounts_are_malformed() -> None:
    formula = "=cmd|' /C calc'!A0"
    rows, report = parse(
        csv_bytes(
            [
                record(
                    UPN=formula,
                    Call_ID="@SUM(A1:A9)",
                    Destination_Dialed="+1-555",
                    User_Display_Name="-2+3",
                ),  # fmt: skip
                record(UsageId="00000000-0000-4000-8000-000000000001", Charge="=1+2"),
                record(UsageId="00000000-0000-4000-8000-000000000002", Charge="@SUM(A1)"),
                record(UsageId="00000000-0000-4000-8000-000000000003", Connection_Fee="-0+1"),
            ]
        )
    )
    assert [(r.user_principal_name, r.call_id, r.destination) for r in rows] == [
        (formula, "@SUM(A1:A9)", "+1-555")
    ]
    assert report.skipped == {SkipReason.MALFORMED: 3}


def test_a_row_with_too_few_or_too_many_cells_is_malformed() -> None:
    good = csv_bytes([record()])
    data = good + b"a,b,c\r\n" + b",".join([b"x"] * 21) + b"\r\n"
    rows, report = parse(data)
    assert len(rows) == 1 and report.skipped == {SkipReason.MALFORMED: 2}


# --- duplicates ---------------------------------------------------------------------------------


def test_a_usage_id_twice_in_one_input_is_charged_once() -> None:
    rows, report = parse(
        csv_bytes([record(), record(UsageId=USAGE_ID.lower(), Charge="5.00"), record()])
    )
    assert [r.amount for r in rows] == [Decimal("1.33")]
    assert report.skipped == {SkipReason.DUPLICATE_IN_FILE: 2}


def test_a_repeat_is_a_duplicate_even_when_the_first_was_not_eligible() -> None:
    rows, report = parse(csv_bytes([record(Charge="bad"), record()]))
    assert rows == []
    assert report.skipped == {SkipReason.MALFORMED: 1, SkipReason.DUPLICATE_IN_FILE: 1}


def test_repeats_beyond_the_window_are_left_to_the_ledger() -> None:
    """The documented trade-off: memory stays flat, and a repeat further apart than the window
    (here 2, kept in two generations of 2) comes out again; the ledger's UsageId RowKey charges
    it once."""
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(6)]
    rows_in = [record(UsageId=i) for i in ids] + [record(UsageId=ids[0]), record(UsageId=ids[5])]
    rows, report = parse(csv_bytes(rows_in), report=ParseReport(duplicate_window=2))
    assert [r.usage_id for r in rows] == ids + [ids[0]]
    assert report.skipped == {SkipReason.DUPLICATE_IN_FILE: 1}
    assert ParseReport().duplicate_window == DUPLICATE_WINDOW > 1_000  # pages are 1,000 rows


@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_a_repeat_within_the_window_is_always_caught(window: int) -> None:
    for first in range(12):
        for distance in range(1, window + 1):
            ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(first + distance)]
            rows_in = [record(UsageId=i) for i in ids] + [record(UsageId=ids[first])]
            _, report = parse(csv_bytes(rows_in), report=ParseReport(duplicate_window=window))
            assert report.skipped == {SkipReason.DUPLICATE_IN_FILE: 1}, (first, distance)


# --- generated exports --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "currency", "bom", "newline"),
    [
        (1, "USD", False, "\r\n"),
        (2, "EUR", True, "\n"),
        (3, "JPY", True, "\r\n"),
        (4, "GBP", False, "\n"),
    ],  # fmt: skip
)
def test_generated_exports_give_the_exact_eligible_total(
    seed: int, currency: str, bom: bool, newline: str
) -> None:
    stream = io.BytesIO()
    expected = write_export(
        stream, 4_000, seed=seed, account_currency=currency, bom=bom, newline=newline,
        other_currency_rate=0.1, malformed_rate=0.05,
    )  # fmt: skip
    rows, report = parse(stream.getvalue(), currency)

    assert report.total_eligible == expected.total_eligible
    assert sum((r.amount for r in rows), Decimal(0)) == expected.total_eligible
    assert report.eligible == expected.eligible == len(rows)
    assert report.skipped == expected.skipped
    assert report.rows_read == expected.rows == 4_000
    assert set(report.skipped) == set(SkipReason)  # every outcome occurs in such a file
    assert all(r.currency == currency and r.capability == "MCOPSTNPP" for r in rows)
    assert len({r.usage_id for r in rows}) == len(rows)


def test_columns_are_found_by_name_in_any_order_with_extra_columns() -> None:
    shuffled = list(COLUMNS) + ["Some Future Column"]
    random.Random(7).shuffle(shuffled)
    plain, reordered = io.BytesIO(), io.BytesIO()
    write_export(plain, 500, seed=11)
    reordered_summary = write_export(reordered, 500, seed=11, columns=tuple(shuffled))
    assert b"Some Future Column" in reordered.getvalue().split(b"\r\n")[0]
    rows_a, report_a = parse(plain.getvalue())
    rows_b, report_b = parse(reordered.getvalue())
    assert rows_a == rows_b
    assert report_a == report_b
    assert report_b.total_eligible == reordered_summary.total_eligible


def test_only_the_required_columns_are_needed() -> None:
    rows, report = parse(csv_bytes([record()], columns=REQUIRED))
    assert [(r.usage_id, r.user_id, r.call_id, r.destination) for r in rows] == [
        (USAGE_ID.lower(), "", "", "")
    ]
    assert report.total_eligible == Decimal("1.33")


def test_quoted_commas_quotes_and_line_breaks_in_names() -> None:
    names = ["Smith, John", 'Anne "Nan" Dupont', "Line\r\nBreak", "王伟\nДмитрий"]
    rows_in = [
        record(UsageId=f"00000000-0000-4000-8000-{i:012d}", User_Display_Name=name, UPN=name)
        for i, name in enumerate(names)
    ]
    rows, report = parse(csv_bytes(rows_in, bom=True, newline="\n"))
    assert [r.user_principal_name for r in rows] == names
    assert report.rows_read == 4


def test_chunks_of_bytes_work_like_a_file() -> None:
    data = io.BytesIO()
    expected = write_export(data, 300, seed=5, bom=True)
    payload = data.getvalue()
    chunks = (payload[i : i + 7] for i in range(0, len(payload), 7))  # splits UTF-8 sequences
    rows, report = parse(chunks)
    assert report.total_eligible == expected.total_eligible
    rows_csv = list(iter_csv_rows([payload], account_currency="USD", report=ParseReport()))
    assert rows == rows_csv


def test_the_callers_stream_is_left_open() -> None:
    stream = io.BytesIO(csv_bytes([record()]))
    list(iter_csv_rows(stream, account_currency="USD", report=ParseReport()))
    assert not stream.closed
    bad = io.BytesIO(b"Nope\r\n1\r\n")
    with pytest.raises(UsageFormatError):
        list(iter_csv_rows(bad, account_currency="USD", report=ParseReport()))
    assert not bad.closed


def test_the_account_currency_must_be_a_code() -> None:
    with pytest.raises(ValueError):
        iter_export_rows(io.BytesIO(b""), account_currency="dollars", report=ParseReport())


# --- hostile files ------------------------------------------------------------------------------


def test_missing_required_columns_are_named() -> None:
    columns = tuple(c for c in COLUMNS if c not in ("Charge", "Capability"))
    source = io.BytesIO(csv_bytes([record()], columns=columns))
    with pytest.raises(UsageFormatError) as raised:
        next(iter_export_rows(source, account_currency="USD", report=ParseReport()))
    assert raised.value.problem == "missing_columns"
    assert raised.value.columns == ("Charge", "Capability")


@pytest.mark.parametrize(
    "header",
    [
        b"usageid,start time,duration seconds,connection fee,charge,currency,capability",  # case
        b"Name,Email,Phone",
        b"UsageId;Start Time;Duration Seconds;Connection Fee;Charge;Currency;Capability",  # ;
        b" UsageId,Start Time,Duration Seconds,Connection Fee,Charge,Currency,Capability",
    ],
)
def test_wrong_headers_are_refused(header: bytes) -> None:
    assert problem_of(header + b"\r\n1,2,3,4,5,6,7\r\n") == FormatProblem.MISSING_COLUMNS


def test_a_column_named_twice_is_refused() -> None:
    data = csv_bytes([], columns=COLUMNS + ("Charge",))
    assert problem_of(data) == FormatProblem.DUPLICATE_COLUMNS


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\r\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    assert problem_of(data) == FormatProblem.EMPTY


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40,
        b"UsageId\x00,Charge\r\n",
        "UsageId,Charge\r\n".encode("utf-16"),  # Excel's "Unicode text"
        "UsageId,Start Time,Charge,Café\r\n".encode("latin-1"),
        b"\x7fELF\x02\x01\x01" + bytes(5000),
    ],
)
def test_binary_or_non_utf8_files_are_not_text(data: bytes) -> None:
    assert problem_of(data) == FormatProblem.NOT_TEXT


def test_nul_bytes_later_in_the_file_stop_the_import() -> None:
    data = csv_bytes([record()]) + b"\x00\x00\x00\x00\r\n"
    with pytest.raises(UsageFormatError) as raised:
        parse(data)
    assert raised.value.problem == FormatProblem.NOT_TEXT


@pytest.mark.parametrize("tail", [b'"abc"def,1\r\n', b'"never closed,1,2\r\n' + b"more\r\n"])
def test_broken_quoting_is_malformed_csv(tail: bytes) -> None:
    with pytest.raises(UsageFormatError) as raised:
        parse(csv_bytes([record()]) + tail)
    assert raised.value.problem == FormatProblem.MALFORMED_CSV


class _Endless(io.RawIOBase):
    """`head`, then `size` bytes of a repeated `fill`, produced as read: never all in memory."""

    def __init__(self, head: bytes, fill: bytes, size: int, tail: bytes = b"") -> None:
        self._head, self._fill, self._left, self._tail = head, fill, size, tail
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        elif self._left > 0:
            count = min(len(buffer), self._left)
            data = (self._fill * (count // len(self._fill) + 1))[:count]
            self._left -= count
        else:
            data, self._tail = self._tail[: len(buffer)], self._tail[len(buffer) :]
        buffer[: len(data)] = data
        self.consumed += len(data)
        return len(data)


@pytest.mark.parametrize(
    ("opening", "fill"),
    [(b"", b"A"), (b'"', b"A" * 99 + b"\n")],  # one 50 MB line; one quoted field of 50 MB lines
)
def test_a_50_mb_field_fails_without_being_held(opening: bytes, fill: bytes) -> None:
    head = csv_bytes([record()]) + b",".join([USAGE_ID.encode()] + [b""] * 5) + b"," + opening
    stream = _Endless(head, fill, 50 * 1000 * 1000, tail=b"\r\n")
    rows = iter_export_rows(io.BufferedReader(stream), account_currency="USD", report=ParseReport())
    tracemalloc.start()
    try:
        with pytest.raises(UsageFormatError) as raised:
            list(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert raised.value.problem == FormatProblem.MALFORMED_CSV
    assert stream.consumed < 3 * 1024 * 1024  # stopped soon after the 1 MiB record limit
    assert peak < 12 * 1024 * 1024


def test_memory_does_not_grow_with_the_number_of_rows() -> None:
    def peak_for(rows: int) -> int:
        template = csv_bytes([record(UsageId="{id}")]).split(b"\r\n")[1].decode()
        lines = (
            template.replace("{id}", f"00000000-0000-4000-8000-{i:012d}") + "\r\n"
            for i in range(rows)
        )
        header = csv_bytes([]).decode()
        chunks: Iterator[bytes] = (text.encode() for text in [header, *lines])
        report = ParseReport(duplicate_window=500)
        tracemalloc.start()
        try:
            count = sum(1 for _ in iter_export_rows(chunks, account_currency="USD", report=report))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == rows
        return peak

    small, large = peak_for(2_000), peak_for(20_000)
    # Holding every id (or row) of the larger file would add megabytes.
    assert large < small + 256 * 1024


# --- the admin centre's zip ---------------------------------------------------------------------


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def raw_zip(
    name: str,
    data: bytes,
    *,
    file_size: int,
    crc: int,
    method: int = zipfile.ZIP_DEFLATED,
    flags: int = 0,
    entries: int = 1,
    directory_copies: int = 1,
    local_name: str | None = None,
) -> bytes:
    """A one-member zip written by hand, so that its headers can say what they like.
    `directory_copies` lists the member that many times in the central directory."""
    encoded = name.encode()
    local_encoded = (local_name or name).encode()
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(data), file_size,
        len(local_encoded), 0,
    ) + local_encoded  # fmt: skip
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc, len(data), file_size,
        len(encoded), 0, 0, 0, 0, 0, 0,
    ) + encoded  # fmt: skip
    central *= directory_copies
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, len(central), len(local) + len(data), 0
    )
    return local + data + central + end


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def zeros_deflated(mebibytes: int) -> tuple[bytes, int]:
    """A deflate stream of `mebibytes` MiB of zeros, built in milliseconds: after a full flush
    each MiB of zeros compresses to the same bytes, so one block is repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = bytes(1 << 20)
    compressor.compress(mib)
    compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * mebibytes + compressor.flush()
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(mib, crc)
    return stream, crc


def test_the_admin_centre_zip_reads_every_pstn_member_and_nothing_else() -> None:
    first, second = io.BytesIO(), io.BytesIO()
    summary_1 = write_export(first, 800, seed=21, bom=True)
    summary_2 = write_export(second, 700, seed=22)
    direct_routing = csv_bytes([record(UsageId="00000000-0000-4000-8000-00000000dead")])
    data = zip_of(
        {
            "parameters.json": b'{"from": "2024-05-01", "to": "2024-05-02"}',
            "DirectRouting.calls.2024-05-01.csv": direct_routing,
            "PSTN.calls.2024-05-02.csv": second.getvalue(),
            "PSTN.calls.2024-05-01.csv": first.getvalue(),
            "readme.txt": b"\x00binary",
        }
    )

    rows, report = parse(data)

    assert report.total_eligible == summary_1.total_eligible + summary_2.total_eligible
    assert report.skipped == summary_1.skipped + summary_2.skipped
    assert report.rows_read == 1_500
    alone, _ = parse(first.getvalue())
    assert rows[: len(alone)] == alone  # members in date order
    assert all(r.usage_id != "00000000-0000-4000-8000-00000000dead" for r in rows)


def test_a_usage_id_in_two_members_is_charged_once() -> None:
    data = zip_of(
        {
            "Calls/PSTN.calls.2024-05-01.csv": csv_bytes([record()]),
            "Calls/PSTN.calls.2024-05-02.csv": csv_bytes([record()]),
        }
    )
    rows, report = parse(data)
    assert len(rows) == 1 and report.skipped == {SkipReason.DUPLICATE_IN_FILE: 1}


def test_a_zip_that_is_not_a_seekable_file_is_spooled() -> None:
    export = io.BytesIO()
    expected = write_export(export, 400, seed=31)
    data = zip_of({"PSTN.calls.2024-05-01.csv": export.getvalue()})
    chunks = (data[i : i + 1000] for i in range(0, len(data), 1000))
    _, report = parse(chunks)
    assert report.total_eligible == expected.total_eligible


@pytest.mark.parametrize(
    "data",
    [
        zip_of(
            {"DirectRouting.calls.2024-05-01.csv": csv_bytes([record()]), "parameters.json": b"{}"}
        ),  # fmt: skip
        zip_of({"PSTN.calls.2024-05-01.txt": csv_bytes([record()])}),
        zip_of({}),  # an empty archive starts PK\x05\x06
    ],
)
def test_a_zip_without_pstn_calls_is_refused(data: bytes) -> None:
    assert problem_of(data) == FormatProblem.NO_PSTN_CALLS


def test_a_zip_bomb_shaped_member_is_refused_before_reading() -> None:
    stream, crc = zeros_deflated(300)  # 300 MiB of zeros in about 300 KB
    data = raw_zip("PSTN.calls.2024-05-01.csv", stream, file_size=300 << 20, crc=crc)
    assert len(data) < 400_000
    assert problem_of(data) == FormatProblem.ZIP_SUSPICIOUS


def test_a_member_declaring_more_than_2_gib_is_refused() -> None:
    body = deflated(csv_bytes([record()]))
    data = raw_zip("PSTN.calls.2024-05-01.csv", body, file_size=3 << 30, crc=0)
    assert problem_of(data) == FormatProblem.ZIP_TOO_LARGE


def test_a_member_larger_than_it_declares_is_stopped() -> None:
    export = io.BytesIO()
    write_export(export, 2_000, seed=41)
    payload = export.getvalue()
    declared = 10_000  # the header and some rows; the rest must not be read quietly
    data = raw_zip(
        "PSTN.calls.2024-05-01.csv",
        deflated(payload),
        file_size=declared,
        crc=zlib.crc32(payload[:declared]),  # a crafted CRC that matches the declared bytes
    )
    with pytest.raises(UsageFormatError) as raised:
        parse(data)
    assert raised.value.problem == FormatProblem.ZIP_TOO_LARGE
    # ZipFile.open would have read the declared bytes and stopped without a word.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.read("PSTN.calls.2024-05-01.csv")) == declared


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"crc": 1}, FormatProblem.MALFORMED_ZIP),  # bad CRC-32
        ({"flags": 1}, FormatProblem.MALFORMED_ZIP),  # encrypted
        ({"method": zipfile.ZIP_BZIP2}, FormatProblem.MALFORMED_ZIP),
        ({"entries": 60_000}, FormatProblem.ZIP_SUSPICIOUS),  # a directory of absurd size
        # Two entries sharing one member's bytes: how the densest bombs reuse a kernel.
        ({"directory_copies": 2, "entries": 2}, FormatProblem.ZIP_SUSPICIOUS),
        ({"local_name": "PSTN.calls.2024-05-09.csv"}, FormatProblem.MALFORMED_ZIP),
    ],
)
def test_zip_members_that_cannot_be_trusted(change: dict[str, Any], problem: FormatProblem) -> None:
    payload = csv_bytes([record()])
    fields: dict[str, Any] = {"file_size": len(payload), "crc": zlib.crc32(payload)}
    fields.update(change)
    data = raw_zip("PSTN.calls.2024-05-01.csv", deflated(payload), **fields)
    with pytest.raises(UsageFormatError) as raised:
        parse(data)
    assert raised.value.problem == problem


def test_a_cut_or_garbled_zip_is_malformed() -> None:
    good = zip_of({"PSTN.calls.2024-05-01.csv": csv_bytes([record()])})
    assert problem_of(b"PK\x03\x04" + bytes(range(200))) == FormatProblem.MALFORMED_ZIP
    assert problem_of(good[: len(good) // 2]) == FormatProblem.MALFORMED_ZIP


def test_a_bad_header_in_a_later_member_fails_before_any_row() -> None:
    data = zip_of(
        {
            "PSTN.calls.2024-05-01.csv": csv_bytes([record()]),
            "PSTN.calls.2024-05-02.csv": b"Name,Email\r\na,b\r\n",
        }
    )
    assert problem_of(data) == FormatProblem.MISSING_COLUMNS


# --- one rule for every source ------------------------------------------------------------------

_amount_texts = st.builds(
    lambda whole, fraction: whole + (f".{fraction}" if fraction is not None else ""),
    st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,15}", fullmatch=True)),
    st.one_of(st.none(), st.from_regex(r"[0-9]{1,5}", fullmatch=True)),
)


@settings(max_examples=300, deadline=None)
@given(charge=_amount_texts, currency=st.sampled_from(["USD", "JPY", "BHD", "EUR"]))
def test_csv_and_graph_agree_on_every_amount(charge: str, currency: str) -> None:
    rows, csv_report = parse(csv_bytes([record(Charge=charge, Connection_Fee="0",
                                               Currency=currency)]), currency)  # fmt: skip
    item = {
        "id": USAGE_ID, "licenseCapability": "MCOPSTNPP", "currency": currency,
        "startDateTime": "2024-05-01T10:00:00Z", "duration": 60, "charge": "CHARGE",
        "connectionCharge": 0,
    }  # fmt: skip
    # The charge goes onto the wire as a JSON number with exactly this text.
    page = parse_graph_page(json.dumps({"value": [item]}).replace('"CHARGE"', charge))
    graph_report = ParseReport()
    graph_rows = list(iter_graph_rows(page, account_currency=currency, report=graph_report))

    assert [r.amount for r in rows] == [r.amount for r in graph_rows]
    assert csv_report.skipped == graph_report.skipped
    value = Decimal(charge)
    exact = value == value.quantize(
        Decimal(1) if currency == "JPY" else Decimal("0.01"), context=WIDE
    )
    assert bool(rows) == (exact and value < 10**14)
