"""An admin's alert settings: reading the typed low-balance and runway thresholds, and keeping
the account's thresholds (the union of every admin's) in step with the saved preferences.

Pure rules first (no I/O). Several amounts go in one field, in the admin's locale, separated by
a semicolon in every language: `;` is neither a decimal nor a grouping symbol in any of the six
locales, whereas a comma is the grouping symbol in English and Chinese and the decimal symbol in
Portuguese, Spanish, French and Russian, and a space groups thousands in French and Russian
("500,100" is five hundred thousand and one hundred in English, 500.1 in French). The full-width
`；`, `，` and `、` of a Chinese keyboard, and line breaks, separate too: none is part of a number.

Each amount is parsed by `credits.money.parse_amount`; it must be more than zero and at most
the purchase maximum. An amount with a space inside where the locale does not group with
spaces ("500 100" in English) is not a number. When an amount is refused and would read as
several amounts split at its commas or spaces, the problem is the separator, so the admin is
told to use `;` rather than that "500,100" is too large. The same amount typed twice counts
once; at most MAX_THRESHOLDS remain.

Problems are codes, not text: the dialog turns them into messages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from babel.numbers import get_decimal_symbol, get_group_symbol

from credits.alerts import AlertPreferences, account_runway_days, account_thresholds
from credits.model import Account
from credits.money import AmountProblem, InvalidAmount, Money, currency_exponent, parse_amount
from credits.repository import ConcurrencyConflict, CreditsRepository

logger = logging.getLogger(__name__)

MAX_THRESHOLDS = 5
SAVE_ATTEMPTS = 10

# Problem codes: `amount.<problem>` from parse_amount, and these three.
TOO_MANY = "too_many"
ABOVE_MAXIMUM = "trigger.above_maximum"
SEPARATOR = "separator"

SEPARATORS = re.compile(r"[;\uff1b\uff0c\u3001\r\n]")
_SPACE_GROUPS = ("\u00a0", "\u202f", " ")
_ANY_SPACE = "[ \t\u3000\u00a0\u202f]"
# A space between two parts of a number: "500 100", "12,50 100", "500, 100".
_SPACED_NUMBER = re.compile(rf"[\d.,]{_ANY_SPACE}+[\d.,]")
# A thousands group after a space, where the locale groups with spaces: "1 250,50".
_SPACE_GROUP = re.compile(rf"(?<=\d){_ANY_SPACE}(?=\d{{3}}(?!\d))")
_LIST_PARTS = re.compile(rf"(?:,|{_ANY_SPACE})+")


@dataclass(frozen=True)
class ThresholdProblem:
    code: str
    """`amount.<problem>`, `trigger.above_maximum`, `separator` or `too_many`."""
    amount: str = ""
    """The typed amount it is about ("" when it is about the whole field)."""


def split_amounts(text: str) -> list[str]:
    """The amounts typed in one field, as text, in the order typed."""
    return [piece.strip() for piece in SEPARATORS.split(text) if piece.strip()]


def parse_thresholds(
    text: str, currency: str, locale: str, *, maximum: Money
) -> tuple[ThresholdProblem | None, tuple[int, ...]]:
    """The first problem, or the thresholds in minor units, distinct, largest first.

    Empty text is no thresholds: the account's default applies.
    """
    found: set[int] = set()
    for typed in split_amounts(text):
        try:
            amount = _amount(typed, currency, locale, maximum)
        except InvalidAmount as invalid:
            if invalid.problem == AmountProblem.EMPTY:
                continue  # a currency symbol on its own ("US$"): nothing to read
            if _reads_as_a_list(typed, currency, locale, maximum):
                return ThresholdProblem(SEPARATOR, typed), ()
            if invalid.problem == AmountProblem.ABOVE_MAXIMUM:
                return ThresholdProblem(ABOVE_MAXIMUM, typed), ()
            return ThresholdProblem(f"amount.{invalid.problem.value}", typed), ()
        found.add(amount.minor)
    if len(found) > MAX_THRESHOLDS:
        return ThresholdProblem(TOO_MANY), ()
    return None, tuple(sorted(found, reverse=True))


def _amount(typed: str, currency: str, locale: str, maximum: Money) -> Money:
    """One typed amount; a space inside it must be the locale's thousands separator, and no
    more digits may follow the decimal symbol than the currency has ("500,100" in Portuguese
    would otherwise be $500.10)."""
    spaced = _SPACE_GROUP.sub("", typed) if _groups_with_spaces(locale) else typed
    if _SPACED_NUMBER.search(spaced):
        raise InvalidAmount(AmountProblem.NOT_A_NUMBER)
    fraction = re.search(rf"{re.escape(_decimal_symbol(locale))}(\d+)\D*$", typed)
    if fraction and len(fraction.group(1)) > currency_exponent(currency):
        raise InvalidAmount(AmountProblem.TOO_MANY_DECIMALS)
    return parse_amount(typed, currency, locale, maximum=maximum)


def _reads_as_a_list(typed: str, currency: str, locale: str, maximum: Money) -> bool:
    """Whether a refused amount is several good ones split at commas or spaces ("500,100")."""
    parts = [part for part in _LIST_PARTS.split(typed) if part]
    if len(parts) < 2:
        return False
    try:
        for part in parts:
            parse_amount(part, currency, locale, maximum=maximum)
    except InvalidAmount:
        return False
    return True


def _groups_with_spaces(locale: str) -> bool:
    return get_group_symbol(locale.replace("-", "_")) in _SPACE_GROUPS


def _decimal_symbol(locale: str) -> str:
    return get_decimal_symbol(locale.replace("-", "_"))


# --- runway thresholds, in whole days ---------------------------------------------------------

MIN_RUNWAY_DAYS = 1
MAX_RUNWAY_DAYS = 90
"""A quarter: a purchase order takes a few weeks at most, and the forecast looks a year ahead."""
# Days are small whole numbers, so a comma or a space cannot be part of one: they separate too.
_DAY_SEPARATORS = re.compile(r"[;,\s\uff1b\uff0c\u3001]+")
_DAYS = re.compile(r"\d{1,3}")

# Problem codes for runway thresholds.
NOT_DAYS = "not_days"


def parse_runway_days(text: str) -> tuple[ThresholdProblem | None, tuple[int, ...]]:
    """The first problem, or the runway thresholds in days, distinct, largest first.

    Each is a whole number from MIN_RUNWAY_DAYS to MAX_RUNWAY_DAYS in any script's digits;
    empty text is none (the default applies).
    """
    found: set[int] = set()
    for typed in (piece for piece in _DAY_SEPARATORS.split(text) if piece):
        if not _DAYS.fullmatch(typed) or not MIN_RUNWAY_DAYS <= int(typed) <= MAX_RUNWAY_DAYS:
            return ThresholdProblem(NOT_DAYS, typed), ()
        found.add(int(typed))
    if len(found) > MAX_THRESHOLDS:
        return ThresholdProblem(TOO_MANY), ()
    return None, tuple(sorted(found, reverse=True))


# --- saving ---------------------------------------------------------------------------------

# Every admin's saved preferences in a tenant (`TableAlertStore.all_preferences`).
AllPreferences = Callable[[str], Awaitable[dict[str, AlertPreferences]]]


async def sync_account_thresholds(
    repository: CreditsRepository, tenant_id: str, all_preferences: AllPreferences
) -> Account:
    """Set the account's low-balance thresholds to every admin's, on a fresh read of each.

    The account is read before the preferences, and saved under the ETag it was read with: an
    admin whose preferences were saved after that read also writes the account afterwards (or
    makes this save fail and read again), so no admin's thresholds are ever lost to a race.
    """
    for _attempt in range(SAVE_ATTEMPTS):
        current = await repository.get_account(tenant_id)
        if current is None:
            raise LookupError(f"no account for tenant {tenant_id}")
        preferences = await all_preferences(tenant_id)
        thresholds = account_thresholds(list(preferences.values()))
        runway = account_runway_days(list(preferences.values()))
        account = current.value
        if (account.low_balance_thresholds, account.runway_thresholds) == (thresholds, runway):
            return account
        try:
            saved = await repository.save_account(
                current,
                replace(account, low_balance_thresholds=thresholds, runway_thresholds=runway),
            )
        except ConcurrencyConflict:
            continue
        logger.info("thresholds of tenant %s: %s, runway %s days", tenant_id, thresholds, runway)
        return saved.value
    raise ConcurrencyConflict(f"account of tenant {tenant_id} kept changing")
