"""Money: integer minor units with an ISO 4217 code; `Decimal` only at the edges.

Parsing is strict on purpose. An admin's typed amount is accepted only in its plain written
form ("500", "1,250.50", or "1.250,50" in a Portuguese client); scientific notation, NaN,
infinity, signs, and more decimals than the currency has are refused with a reason the bot can
explain, before any money moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
)
from enum import StrEnum

from babel import Locale
from babel.numbers import (
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)

# Every Decimal operation on money runs in this context, never the ambient one: a dependency
# (recognizers-text, pulled in by botbuilder-dialogs) sets the process's precision to 15 when it
# is imported, which would silently round 16-digit amounts. Inexact and Rounded are traps:
# money arithmetic is exact or it fails loudly.
MONEY_CONTEXT = Context(
    prec=60,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact, Rounded],
)


class AmountProblem(StrEnum):
    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    NEGATIVE = "negative"
    ZERO = "zero"
    TOO_MANY_DECIMALS = "too_many_decimals"
    BELOW_MINIMUM = "below_minimum"
    ABOVE_MAXIMUM = "above_maximum"


class InvalidAmount(ValueError):
    def __init__(self, problem: AmountProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, order=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("money is an integer number of minor units")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: str) -> Money:
        exponent = currency_exponent(currency)
        scaled = MONEY_CONTEXT.scaleb(amount, exponent)
        if scaled != scaled.to_integral_value(context=MONEY_CONTEXT):
            raise InvalidAmount(AmountProblem.TOO_MANY_DECIMALS)
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        return MONEY_CONTEXT.scaleb(Decimal(self.minor), -currency_exponent(self.currency))

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point (2 for USD, 0 for JPY), from CLDR through Babel."""
    return get_currency_precision(currency)


# No amount is written longer than this; a longer text is not read (it bounds the work).
MAX_AMOUNT_CHARS = 100
# An amount with this many digits before the point is beyond any maximum; refusing it before
# it becomes money keeps MONEY_CONTEXT's 60 digits exact.
MAX_WHOLE_DIGITS = 30

# Digits with optional group and decimal separators of any locale; nothing else.
_PLAIN_NUMBER = re.compile(r"^\d[\d\s.,\u00a0\u202f]*$|^[.,]\d+$")


def parse_amount(
    text: str | None,
    currency: str,
    locale: str,
    *,
    minimum: Money | None = None,
    maximum: Money | None = None,
) -> Money:
    """Parse what an admin typed, in their locale, into money of the account's currency."""
    cleaned = (text or "").strip()
    if len(cleaned) > MAX_AMOUNT_CHARS:
        raise InvalidAmount(AmountProblem.NOT_A_NUMBER)
    for symbol in _currency_symbols(currency, locale):
        cleaned = cleaned.replace(symbol, "").strip()
    if not cleaned:
        raise InvalidAmount(AmountProblem.EMPTY)
    negative = cleaned.startswith(("-", "\u2212"))
    digits = cleaned.lstrip("-\u2212+").strip()
    if not _PLAIN_NUMBER.match(digits):
        raise InvalidAmount(AmountProblem.NOT_A_NUMBER)
    amount = _parse_number(digits, locale)
    if negative and amount != 0:
        raise InvalidAmount(AmountProblem.NEGATIVE)
    if amount == 0:
        raise InvalidAmount(AmountProblem.ZERO)
    if amount.adjusted() >= MAX_WHOLE_DIGITS:
        raise InvalidAmount(AmountProblem.ABOVE_MAXIMUM)
    try:
        money = Money.from_decimal(amount, currency)
    except (Inexact, Rounded) as error:
        # More significant digits than money holds, all of them decimals.
        raise InvalidAmount(AmountProblem.TOO_MANY_DECIMALS) from error
    if minimum is not None and money < minimum:
        raise InvalidAmount(AmountProblem.BELOW_MINIMUM)
    if maximum is not None and money > maximum:
        raise InvalidAmount(AmountProblem.ABOVE_MAXIMUM)
    return money


def _parse_number(digits: str, locale: str) -> Decimal:
    babel_locale = Locale.parse(locale.replace("-", "_"))
    group_symbol = get_group_symbol(babel_locale)
    compact = re.sub(r"[\s\u00a0\u202f]", "", digits)
    # With a single separator, it is the decimal point whatever the locale ("12.50" typed in a
    # Portuguese client means twelve and a half), unless it is the locale's group separator
    # followed by exactly three digits ("1,250" in English).
    if compact.count(".") + compact.count(",") == 1:
        separator = "." if "." in compact else ","
        whole, fraction = compact.split(separator)
        if not (separator == group_symbol and len(fraction) == 3 and whole not in ("", "0")):
            return _decimal(f"{whole or '0'}.{fraction}")
    # Grouped: separators must sit where the locale puts them ("1,250.50" in English,
    # "1.250,50" in Portuguese). Babel 2.9's strict parser rejects trailing zeros, so the
    # shape is checked here with the locale's own symbols from CLDR.
    decimal_symbol = get_decimal_symbol(babel_locale)
    if group_symbol in ("\u00a0", "\u202f"):
        group_symbol = ""  # spaces were removed above
    grouped = rf"\d{{1,3}}(?:{re.escape(group_symbol)}\d{{3}})+|\d+" if group_symbol else r"\d+"
    match = re.fullmatch(rf"({grouped})(?:{re.escape(decimal_symbol)}(\d+))?", compact)
    if match is None:
        raise InvalidAmount(AmountProblem.NOT_A_NUMBER)
    whole = match.group(1).replace(group_symbol, "") if group_symbol else match.group(1)
    return _decimal(f"{whole}.{match.group(2) or '0'}")


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise InvalidAmount(AmountProblem.NOT_A_NUMBER) from error
    if not value.is_finite():
        raise InvalidAmount(AmountProblem.NOT_A_NUMBER)
    return value


def _currency_symbols(currency: str, locale: str) -> list[str]:
    symbols = {
        currency,
        currency.lower(),
        get_currency_symbol(currency, locale=locale.replace("-", "_")),
    }
    # Longest first, so "R$" goes before "$".
    return sorted((s for s in symbols if s), key=len, reverse=True)
