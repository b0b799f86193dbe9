"""Amount parsing: strict, locale-aware, never float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from credits.money import AmountProblem, InvalidAmount, Money, parse_amount

MIN = Money(5000, "USD")
MAX = Money(10_000_000, "USD")


@pytest.mark.parametrize(
    ("text", "locale", "minor"),
    [
        ("500", "en-US", 50000),
        ("500.5", "en-US", 50050),
        ("1,250.50", "en-US", 125050),
        ("1.250,50", "pt-BR", 125050),
        ("62,50", "en-US", 6250),
        ("62.50", "pt-BR", 6250),
        ("$500", "en-US", 50000),
        ("USD 75", "en-US", 7500),
        ("1 250,50", "fr-FR", 125050),
        ("1 000", "ru-RU", 100000),
        ("５００", "zh-CN", 50000),
        ("100000", "en-US", 10_000_000),
    ],
)
def test_valid_amounts(text, locale, minor):
    assert parse_amount(text, "USD", locale, minimum=MIN, maximum=MAX) == Money(minor, "USD")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", AmountProblem.EMPTY),
        ("   ", AmountProblem.EMPTY),
        (None, AmountProblem.EMPTY),
        ("abc", AmountProblem.NOT_A_NUMBER),
        ("NaN", AmountProblem.NOT_A_NUMBER),
        ("Infinity", AmountProblem.NOT_A_NUMBER),
        ("1e9", AmountProblem.NOT_A_NUMBER),
        ("0x10", AmountProblem.NOT_A_NUMBER),
        ("5..0", AmountProblem.NOT_A_NUMBER),
        ("1,25,0", AmountProblem.NOT_A_NUMBER),
        ("-500", AmountProblem.NEGATIVE),
        ("\u2212500", AmountProblem.NEGATIVE),
        ("0", AmountProblem.ZERO),
        ("0.00", AmountProblem.ZERO),
        ("-0", AmountProblem.ZERO),
        ("12.345", AmountProblem.TOO_MANY_DECIMALS),
        ("49.99", AmountProblem.BELOW_MINIMUM),
        ("100000.01", AmountProblem.ABOVE_MAXIMUM),
        ("99999999999999999999999999", AmountProblem.ABOVE_MAXIMUM),
    ],
)
def test_bad_amounts_say_why(text, problem):
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(text, "USD", "en-US", minimum=MIN, maximum=MAX)
    assert caught.value.problem == problem


def test_currency_exponent_comes_from_cldr():
    assert parse_amount("500", "JPY", "en-US") == Money(500, "JPY")
    with pytest.raises(InvalidAmount):
        parse_amount("500.5", "JPY", "en-US")
    assert Money(123456, "USD").to_decimal() == Decimal("1234.56")


def test_money_never_mixes_currencies():
    with pytest.raises(ValueError):
        Money(1, "USD") + Money(1, "EUR")
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]
