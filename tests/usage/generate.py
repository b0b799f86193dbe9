"""Realistic PSTN usage exports, written as a stream, with the answer a parser must find.

`write_export` writes the admin centre's CSV ("Fields in the export": the 20 columns, header
first) row by row, so a 1,000,000-row file is never held in memory. Content is what real
exports hold and what hostile ones add: Chinese, Russian and accented names; display names with
commas, quotes and line breaks; formula-like cells; numbers masked as `+3491234****` or `***`;
bot calls (`ucap_in`, `ucap_out`) without an AAD ObjectId; Calling Plan, Audio Conferencing and
unknown capabilities (`MCOPSTNU`); other currencies; repeated UsageIds; malformed rows.

The generator is the oracle: it knows what it wrote, so it returns the exact `Decimal` total of
the rows a parser must charge for `account_currency` and the count of every other outcome. The
classification order it assumes is the one `credits.usage` documents.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from credits.usage import SkipReason

# The reference's column names, written out here rather than imported: the generator is the
# test's independent statement of Microsoft's format.
COLUMNS: tuple[str, ...] = (
    "UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
    "User Display Name", "Caller ID", "Call Type", "Number Type", "Domestic/International",
    "Destination Dialed", "Destination Number", "Start Time", "End Time", "Duration Seconds",
    "Connection Fee", "Charge", "Currency", "Capability",
)  # fmt: skip

CAPABILITIES = ("MCOPSTNPP", "MCOPSTN1", "MCOPSTN2", "MCOMEETADD", "MCOMEETACPEA", "MCOPSTNU")
CAPABILITY_WEIGHTS = (60, 12, 4, 12, 4, 8)
CALL_TYPES = (
    "user_in", "user_out", "user_out_conf", "user_out_transfer", "user_out_forwarding",
    "conf_in", "conf_out", "ucap_in", "ucap_out",
)  # fmt: skip
NAMES = (
    "王伟", "李娜", "Дмитрий Иванов", "Ольга Смирнова", "José Álvarez", "Zoë Ørsted",
    "François Lefèvre", "Smith, John", 'Anne "Nan" Dupont', "Line\nBreak", "Ярослав, Ёлкин",
    "=cmd|' /C calc'!A0", "@SUM(A1:A9)", "+1-555-0100", "-2+3", "Müller-Lüdenscheidt",
)  # fmt: skip
UPN_LOCALS = ("wei.wang", "na.li", "dmitry", "olga.s", "josé.álvarez", "zoe", "francois", "jsmith")
DESTINATIONS = (
    "United States", "España", "Россия", "中国", "Côte d'Ivoire", "Deutschland", "日本",
    "United Kingdom", "Brasil", "Sverige",
)  # fmt: skip
LOCATIONS = ("US", "GB", "DE", "FR", "ES", "CN", "RU", "BR", "JP", "SE", "IT", "NL")
# Countries whose external numbers Microsoft masks (the last 3-4 digits become `*`).
MASKED = frozenset({"BE", "CH", "DE", "DK", "ES", "FI", "FR", "IT", "NL", "NO", "SE"})
OTHER_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "BRL")
EPOCH = datetime(2024, 5, 1, tzinfo=UTC)

# Ways a Communications Credits row in the account's currency is broken: (column, value).
MALFORMATIONS: tuple[tuple[str, str], ...] = (
    ("Charge", "0.0123"),  # more decimals than numeric(16,2)
    ("Charge", "=1+2"),
    ("Charge", "-1.00"),
    ("Charge", "+1.00"),
    ("Charge", "1e2"),
    ("Charge", "NaN"),
    ("Charge", ""),
    ("Connection Fee", "@SUM(A1)"),
    ("Start Time", "2024-13-01T10:00:00Z"),
    ("Start Time", "2024-05-01 10:00:00"),  # no offset
    ("Start Time", "yesterday"),
    ("Duration Seconds", "12.5"),
    ("Duration Seconds", "-3"),
    ("AAD ObjectId", "not-a-guid"),
    ("Currency", "US$"),
)


@dataclass
class ExportSummary:
    """What the file holds, as a correct parser must count it."""

    rows: int = 0
    eligible: int = 0
    total_eligible: Decimal = field(default_factory=Decimal)
    skipped: Counter[SkipReason] = field(default_factory=Counter)


def write_export(
    target: str | Path | BinaryIO,
    rows: int,
    *,
    seed: int,
    account_currency: str = "USD",
    bom: bool = False,
    newline: str = "\r\n",
    columns: Sequence[str] = COLUMNS,
    other_currency_rate: float = 0.05,
    duplicate_rate: float = 0.01,
    malformed_rate: float = 0.01,
    bad_id_rate: float = 0.002,
) -> ExportSummary:
    """Write a PSTN usage export of `rows` data rows; return what a parser must find.

    `target` is a path (written and closed) or a binary stream (left open). `columns` chooses
    and orders the header (any order of the 20 names; a subset leaves columns out; other names
    are columns Microsoft might add, filled with "future").
    """
    spec = _Spec(rows, seed, account_currency, bom, newline, tuple(columns),
                 other_currency_rate, duplicate_rate, malformed_rate, bad_id_rate)  # fmt: skip
    if isinstance(target, str | Path):
        with open(target, "wb") as file:
            return _write(file, spec)
    return _write(target, spec)


@dataclass(frozen=True)
class _Spec:
    rows: int
    seed: int
    account_currency: str
    bom: bool
    newline: str
    columns: tuple[str, ...]
    other_currency_rate: float
    duplicate_rate: float
    malformed_rate: float
    bad_id_rate: float


def _write(stream: BinaryIO, spec: _Spec) -> ExportSummary:
    rows, seed, account_currency = spec.rows, spec.seed, spec.account_currency
    columns, bom, newline = spec.columns, spec.bom, spec.newline
    other_currency_rate, duplicate_rate = spec.other_currency_rate, spec.duplicate_rate
    malformed_rate, bad_id_rate = spec.malformed_rate, spec.bad_id_rate
    rng = random.Random(seed)
    summary = ExportSummary()
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=False)
    try:
        if bom:
            text.write("\ufeff")
        writer = csv.writer(text, lineterminator=newline)
        writer.writerow(columns)
        # Recent rows with a valid UsageId, for exact repeats. Short, so every repeat sits well
        # inside the parser's duplicate window.
        recent: deque[list[str]] = deque(maxlen=64)
        others = tuple(c for c in OTHER_CURRENCIES if c != account_currency.upper())
        # A name outside the 20 (a column Microsoft might add) gets the cell after the last.
        order = [COLUMNS.index(name) if name in COLUMNS else len(COLUMNS) for name in columns]
        # Only breakages a parser can see: a column left out of the header cannot be malformed.
        malformations = tuple(m for m in MALFORMATIONS if m[0] in columns)
        for _ in range(rows):
            summary.rows += 1
            if recent and rng.random() < duplicate_rate:
                record = rng.choice(recent)
                summary.skipped[SkipReason.DUPLICATE_IN_FILE] += 1
                writer.writerow([record[i] for i in order])
                continue
            record, outcome, amount = _row(
                rng, account_currency, others, other_currency_rate, malformed_rate, malformations
            )
            record.append("future")
            if rng.random() < bad_id_rate:
                record[0] = rng.choice(("", "{" + record[0] + "}", record[0][:-1], "=HYPERLINK()"))
                outcome, amount = SkipReason.MALFORMED, None
            else:
                recent.append(record)
            if outcome is None and amount is not None:
                summary.eligible += 1
                summary.total_eligible += amount
            elif outcome is not None:
                summary.skipped[outcome] += 1
            writer.writerow([record[i] for i in order])
        text.flush()
    finally:
        text.detach()
    return summary


def _row(
    rng: random.Random,
    account_currency: str,
    others: tuple[str, ...],
    other_currency_rate: float,
    malformed_rate: float,
    malformations: Sequence[tuple[str, str]],
) -> tuple[list[str], SkipReason | None, Decimal | None]:
    """One record in COLUMNS order, its expected outcome (None: eligible) and amount."""
    usage_id = _guid(rng)
    if rng.random() < 0.05:
        usage_id = usage_id.upper()  # the same GUID; parsers must lower-case it
    call_type = rng.choice(CALL_TYPES)
    bot = call_type.startswith("ucap")
    location = rng.choice(LOCATIONS)
    capability = rng.choices(CAPABILITIES, CAPABILITY_WEIGHTS)[0]
    currency = account_currency
    if rng.random() < other_currency_rate:
        currency = rng.choice(others)
    exponent_zero = currency in ("JPY",)
    charge = _money(rng, 0, 50_000, exponent_zero)
    fee = _money(rng, 0, 50, exponent_zero) if rng.random() < 0.3 else Decimal(0)
    start = EPOCH + timedelta(seconds=rng.randrange(0, 90 * 86_400))
    duration = rng.randrange(0, 7_200)
    record = [
        usage_id,
        _guid(rng),
        str(rng.randrange(10**8, 10**9)) if call_type.startswith("conf") else "",
        location,
        "" if bot else _guid(rng),
        "" if bot else f"{rng.choice(UPN_LOCALS)}@contoso.com",
        "" if bot else rng.choice(NAMES),
        _number(rng, location),
        call_type,
        rng.choice(("CallingPlan", "TollFree", "UserNumber", "ServiceNumber")),
        rng.choice(("Domestic", "International")),
        rng.choice(DESTINATIONS),
        _number(rng, rng.choice(LOCATIONS)),
        _time(rng, start),
        _time(rng, start + timedelta(seconds=duration)),
        str(duration),
        _amount_text(rng, fee, exponent_zero),
        _amount_text(rng, charge, exponent_zero),
        currency,
        capability,
    ]
    if capability != "MCOPSTNPP":
        return record, SkipReason.NOT_COMMUNICATIONS_CREDITS, None
    if currency != account_currency:
        return record, SkipReason.OTHER_CURRENCY, None
    if malformations and rng.random() < malformed_rate:
        column, value = rng.choice(malformations)
        record[COLUMNS.index(column)] = value
        return record, SkipReason.MALFORMED, None
    return record, None, charge + fee


def _guid(rng: random.Random) -> str:
    """A random version-4 GUID, formatted directly (uuid.UUID is slow for a million rows)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89ab"


def _money(rng: random.Random, low: int, high: int, whole: bool) -> Decimal:
    if whole:
        return Decimal(rng.randrange(low, high))
    return Decimal(rng.randrange(low, high * 100)).scaleb(-2)


def _amount_text(rng: random.Random, amount: Decimal, whole: bool) -> str:
    if whole:
        return f"{amount}.00" if rng.random() < 0.5 else f"{amount}"
    return f"{amount:.2f}"


def _number(rng: random.Random, location: str) -> str:
    digits = f"+{rng.randrange(1, 99)}{rng.randrange(10**8, 10**10)}"
    if location in MASKED:
        return rng.choice((digits[:-4] + "****", digits[:-3] + "***", "***"))
    return digits


def _time(rng: random.Random, when: datetime) -> str:
    """Mostly .NET's round-trip form in UTC; sometimes the same instant with an offset."""
    roll = rng.random()
    if roll < 0.8:
        return when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    if roll < 0.9:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.astimezone(timezone(timedelta(hours=2))).isoformat()
