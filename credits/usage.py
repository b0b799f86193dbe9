"""PSTN usage exactly as Microsoft writes it: typed rows and the rules every source follows.

Three sources give the same `UsageRow`s:

- the admin centre's CSV export and its download `Calls.Export.{id}.zip`, read by
  `credits/usage_export.py` (`iter_csv_rows`, `iter_export_rows`);
- one page of Microsoft Graph's `getPstnCalls` (`iter_graph_rows`, here).

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
  A repeat further apart is yielded again and counted as eligible; the charger, which keeps the
  charged ids of each day (credits/usage_days.py), still charges it once. Microsoft does not
  repeat UsageIds in an export; repeats come from overlapping pages, windows or re-sent members,
  which sit close together, or from concatenated files, which no bounded window could catch.

Input that as a whole is not PSTN usage fails as a `UsageFormatError` with a `problem` code.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

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

DUPLICATE_WINDOW = 40_000

# Lengths from the reference table, for the text this product keeps (they go into Table
# properties downstream, which must stay small).
CALL_ID_MAX, UPN_MAX, CALL_TYPE_MAX, DESTINATION_MAX = 64, 128, 32, 128
_TEXT_LIMITS: Mapping[str, int] = {
    CALL_ID: CALL_ID_MAX,
    UPN: UPN_MAX,
    CALL_TYPE: CALL_TYPE_MAX,
    DESTINATION_DIALED: DESTINATION_MAX,  # not documented: a country or region name
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

    def skip(self, reason: SkipReason) -> None:
        self.skipped[reason] += 1

    def accept(self, row: UsageRow) -> None:
        self.eligible += 1
        self.total_eligible = MONEY_CONTEXT.add(self.total_eligible, row.amount)


class AccountRules:
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


class MalformedRow(Exception):
    """A field of one row is not what Microsoft writes; the row is counted, not charged."""


def _usage_key(text: str) -> tuple[str, int] | None:
    if not _GUID.fullmatch(text):
        return None
    return text.lower(), int(text.replace("-", ""), 16)


def classify(
    report: ParseReport, account: AccountRules, usage_id: Any, capability: Any, currency: Any
) -> str | None:
    """Steps of the classification order that come before a full parse; the id, or None when
    the row was skipped (and counted)."""
    key = _usage_key(usage_id) if isinstance(usage_id, str) else None
    if key is None:
        report.skip(SkipReason.MALFORMED)
        return None
    if report._recent.seen(key[1]):
        report.skip(SkipReason.DUPLICATE_IN_FILE)
        return None
    if capability != COMMUNICATIONS_CREDITS:
        report.skip(SkipReason.NOT_COMMUNICATIONS_CREDITS)
        return None
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        report.skip(SkipReason.MALFORMED)
        return None
    if currency.upper() != account.currency:
        report.skip(SkipReason.OTHER_CURRENCY)
        return None
    return key[0]


def _amount_value(value: Decimal, account: AccountRules) -> Decimal:
    if not value.is_finite() or value < 0 or value >= _MAX_AMOUNT:
        raise MalformedRow("amount out of range")
    try:
        remainder = MONEY_CONTEXT.remainder(value, account.quantum)
    except InvalidOperation as error:
        raise MalformedRow("amount out of range") from error
    if remainder:
        raise MalformedRow("more decimals than numeric(16,2) or the currency allows")
    return value


def amount_of_text(text: str, account: AccountRules, *, empty_is_zero: bool) -> Decimal:
    text = text.strip()
    if not text and empty_is_zero:
        return Decimal(0)
    if not account.amount_text.fullmatch(text):
        raise MalformedRow("not a plain amount in whole minor units of numeric(16,2)")
    return Decimal(text)


def _amount_json(value: Any, account: AccountRules, *, null_is_zero: bool) -> Decimal:
    if value is None and null_is_zero:
        return Decimal(0)
    if isinstance(value, float):
        # A caller parsed the page with binary floats: the amount is already inexact.
        raise TypeError("parse Graph pages with json.loads(..., parse_float=Decimal)")
    if isinstance(value, bool) or value is None:
        raise MalformedRow("not an amount")
    if isinstance(value, int):
        return _amount_value(Decimal(value), account)
    if isinstance(value, Decimal):
        return _amount_value(value, account)
    if isinstance(value, str):
        return amount_of_text(value, account, empty_is_zero=False)
    raise MalformedRow("not an amount")


def time_of(text: Any) -> datetime:
    if not isinstance(text, str):
        raise MalformedRow("not a time")
    text = text.strip()
    if not _TIME.fullmatch(text):
        raise MalformedRow("not an ISO 8601 time with an offset")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as error:  # 2024-02-30, 25:00
        raise MalformedRow("no such time") from error
    return when.astimezone(UTC)


def duration_of_text(text: str) -> int:
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        raise MalformedRow("not a duration")
    return int(text)


def user_id_of(text: Any) -> str:
    if text is None or text == "":
        return ""  # bot calls (ucap_in, ucap_out) have no user
    if not isinstance(text, str) or not _GUID.fullmatch(text):
        raise MalformedRow("AAD ObjectId is not a GUID")
    return text.lower()


def _text(value: Any, column: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedRow(f"{column} is not text")
    limit = _TEXT_LIMITS.get(column)
    if limit is not None and len(value) > limit:
        raise MalformedRow(f"{column} longer than {limit}")
    return value


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
    account = AccountRules(account_currency)
    items = page.get("value")
    if not isinstance(items, list):
        raise UsageFormatError(FormatProblem.NOT_A_PAGE, "no value list")
    return _graph_rows(items, account, report)


def _graph_rows(items: list[Any], account: AccountRules, report: ParseReport) -> Iterator[UsageRow]:
    for item in items:
        report.rows_read += 1
        row = _row_from_graph(item, account, report)
        if row is not None:
            report.accept(row)
            yield row


def _row_from_graph(item: Any, account: AccountRules, report: ParseReport) -> UsageRow | None:
    if not isinstance(item, dict):
        report.skip(SkipReason.MALFORMED)
        return None
    usage_id = classify(
        report, account, item.get("id"), item.get("licenseCapability"), item.get("currency")
    )
    if usage_id is None:
        return None
    try:
        duration = item.get("duration")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
            raise MalformedRow("duration is not a whole number of seconds")
        return UsageRow(
            usage_id=usage_id,
            call_id=_text(item.get("callId"), CALL_ID),
            user_id=user_id_of(item.get("userId")),
            user_principal_name=_text(item.get("userPrincipalName"), UPN),
            call_type=_text(item.get("callType"), CALL_TYPE),
            capability=COMMUNICATIONS_CREDITS,
            start=time_of(item.get("startDateTime")),
            duration_seconds=duration,
            charge=_amount_json(item.get("charge"), account, null_is_zero=False),
            connection_fee=_amount_json(item.get("connectionCharge"), account, null_is_zero=True),
            currency=account.currency,
            destination=_text(item.get("destinationName"), DESTINATION_DIALED),
        )
    except MalformedRow as problem:
        logger.debug("usage %s malformed: %s", usage_id, problem)
        report.skip(SkipReason.MALFORMED)
        return None
