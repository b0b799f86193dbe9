"""An admin's alert settings: reading the typed low-balance thresholds, and keeping the account's
thresholds (the union of every admin's) in step with the saved preferences.

Pure rules first (no I/O). Several amounts go in one field, in the admin's locale:

- `;` always separates amounts, and so do the full-width `；` `，` `、` a Chinese keyboard types;
- a comma followed by a space separates ("500, 100"); a comma between digits belongs to the
  number, as `parse_amount` reads it ("1,250.50" in English, "12,50" in Portuguese);
- spaces separate, except where the locale groups thousands with a space (French, Russian):
  there "1 250,50" is one amount. No-break spaces (as Babel writes groups) never separate.

Each amount is parsed by `credits.money.parse_amount`; it must be more than zero and at most
the purchase maximum. The same amount typed twice counts once; at most MAX_THRESHOLDS remain.

Problems are codes, not text: the dialog turns them into messages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from babel.numbers import get_group_symbol

from credits.alerts import AlertPreferences, account_thresholds
from credits.model import Account
from credits.money import AmountProblem, InvalidAmount, Money, parse_amount
from credits.repository import ConcurrencyConflict, CreditsRepository

logger = logging.getLogger(__name__)

MAX_THRESHOLDS = 5
SAVE_ATTEMPTS = 10

# Problem codes: `amount.<problem>` from parse_amount, and these two.
TOO_MANY = "too_many"
ABOVE_MAXIMUM = "trigger.above_maximum"

_ALWAYS = re.compile(r"[;\uff1b\uff0c\u3001]|,(?=[ \t\r\n\u3000]|$)")
_SPACES = re.compile(r"[ \t\r\n\u3000]+")
_SPACES_KEPT = re.compile(r"([ \t\r\n\u3000]+)")
# The groups of "1 250,50" where thousands are grouped with a space: the first, those after
# it, and a last one with the decimals.
_FIRST_GROUP = re.compile(r"[-\u2212+]?\d{1,3}")
_GROUP = re.compile(r"\d{3}")
_LAST_GROUP = re.compile(r"\d{3}[.,]\d+")
_GROUP_SPACES = (" ", "\u3000")
_SPACE_GROUPS = ("\u00a0", "\u202f", " ")
_SIGNS = ("-", "\u2212", "+")


@dataclass(frozen=True)
class ThresholdProblem:
    code: str
    """`amount.<problem>`, `trigger.above_maximum` or `too_many`."""
    amount: str = ""
    """The typed amount it is about ("" when it is about the whole field)."""


def split_amounts(text: str, locale: str) -> list[str]:
    """The amounts typed in one field, as text, in the order typed."""
    spaced = _groups_with_spaces(locale)
    amounts: list[str] = []
    for piece in _ALWAYS.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if spaced:
            amounts += _spaced_amounts(piece)
        else:
            amounts += [a for a in _SPACES.split(piece) if a]
    return _signs_attached(amounts)


def _spaced_amounts(piece: str) -> list[str]:
    """The words of a piece, where one amount may be "1 250,50": groups of three digits after
    one space bind to the amount before them.

    One pass over the words (a pattern that finds such amounts anywhere in the text tries
    every group again from each word, which is quadratic in the text's length).
    """
    parts = _SPACES_KEPT.split(piece)
    words, spaces = parts[0::2], parts[1::2]
    amounts: list[str] = []
    start = 0
    while start < len(words):
        end = start + 1
        if _FIRST_GROUP.fullmatch(words[start]):
            while end < len(words) and spaces[end - 1] in _GROUP_SPACES:
                if _GROUP.fullmatch(words[end]):
                    end += 1
                elif _LAST_GROUP.fullmatch(words[end]):
                    end += 1
                    break
                else:
                    break
        amounts.append("".join(parts[2 * start : 2 * end - 1]))
        start = end
    return amounts


def _signs_attached(amounts: list[str]) -> list[str]:
    """A sign typed apart ("- 500") joins its amount, so that it is refused as negative."""
    joined: list[str] = []
    for amount in amounts:
        if joined and joined[-1] in _SIGNS:
            joined[-1] += amount
        else:
            joined.append(amount)
    return joined


def parse_thresholds(
    text: str, currency: str, locale: str, *, maximum: Money
) -> tuple[ThresholdProblem | None, tuple[int, ...]]:
    """The first problem, or the thresholds in minor units, distinct, largest first.

    Empty text is no thresholds: the account's default applies.
    """
    found: set[int] = set()
    for typed in split_amounts(text, locale):
        try:
            amount = parse_amount(typed, currency, locale)
        except InvalidAmount as invalid:
            if invalid.problem == AmountProblem.EMPTY:
                continue  # a currency symbol on its own ("US$ 500"): nothing to read
            if invalid.problem == AmountProblem.ABOVE_MAXIMUM:  # too many digits to be money
                return ThresholdProblem(ABOVE_MAXIMUM, typed), ()
            return ThresholdProblem(f"amount.{invalid.problem.value}", typed), ()
        if amount > maximum:
            return ThresholdProblem(ABOVE_MAXIMUM, typed), ()
        found.add(amount.minor)
    if len(found) > MAX_THRESHOLDS:
        return ThresholdProblem(TOO_MANY), ()
    return None, tuple(sorted(found, reverse=True))


def _groups_with_spaces(locale: str) -> bool:
    return get_group_symbol(locale.replace("-", "_")) in _SPACE_GROUPS


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
        if current.value.low_balance_thresholds == thresholds:
            return current.value
        try:
            saved = await repository.save_account(
                current, replace(current.value, low_balance_thresholds=thresholds)
            )
        except ConcurrencyConflict:
            continue
        logger.info("low-balance thresholds of tenant %s: %s", tenant_id, thresholds)
        return saved.value
    raise ConcurrencyConflict(f"account of tenant {tenant_id} kept changing")
