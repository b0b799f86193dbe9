"""Low-balance thresholds as an admin types them: several amounts in one field, in their locale."""

from __future__ import annotations

import pytest

from credits.alert_settings import (
    ABOVE_MAXIMUM,
    MAX_THRESHOLDS,
    SEPARATOR,
    TOO_MANY,
    ThresholdProblem,
    parse_thresholds,
    split_amounts,
)
from credits.money import Money

MAX = Money(10_000_000, "USD")


@pytest.mark.parametrize(
    ("text", "amounts"),
    [
        ("", []),
        ("   ", []),
        ("500; 100", ["500", "100"]),
        ("500;100\n200;", ["500", "100", "200"]),
        # Commas and spaces belong to the amount: only the semicolon separates.
        ("1,250.50; 100", ["1,250.50", "100"]),
        ("500,100", ["500,100"]),
        ("500, 100", ["500, 100"]),
        ("1 250,50 ; 100", ["1 250,50", "100"]),
        # A Chinese keyboard's full-width punctuation separates too.
        ("500，100、20；5", ["500", "100", "20", "5"]),
        ("- 500; 100", ["- 500", "100"]),
    ],
)
def test_split_amounts(text, amounts):
    assert split_amounts(text) == amounts


@pytest.mark.parametrize(
    ("text", "locale", "minor"),
    [
        ("", "en", ()),
        ("500; 100", "en", (50000, 10000)),
        ("100; 500; 100", "en", (50000, 10000)),  # the same amount twice counts once
        ("$500; USD 100", "en", (50000, 10000)),
        ("US$ 1.250,50; R 100", "pt_BR", None),
        ("US$ 1.250,50; 100", "pt_BR", (125050, 10000)),
        ("1.250,50; 12,50; 100", "pt_BR", (125050, 10000, 1250)),
        ("1 250,50 $US ; 0,50", "fr", (125050, 50)),
        ("1\u202f250,50; 100", "fr", (125050, 10000)),
        ("1 000; 250", "ru", (100000, 25000)),
        ("100000", "en", (10_000_000,)),
        ("1; 2; 3; 4; 5; 5; 5", "en", (500, 400, 300, 200, 100)),
        # A comma grouping thousands where the locale does is one amount: $50,100.
        ("50,100", "en", (5_010_000,)),
        ("500；100", "zh_CN", (50000, 10000)),
    ],
)
def test_parse_thresholds(text, locale, minor):
    problem, thresholds = parse_thresholds(text, "USD", locale, maximum=MAX)
    if minor is None:
        assert problem is not None and thresholds == ()
    else:
        assert (problem, thresholds) == (None, minor)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-500", ThresholdProblem("amount.negative", "-500")),
        ("500; -100", ThresholdProblem("amount.negative", "-100")),
        ("- 500", ThresholdProblem("amount.negative", "- 500")),
        ("0", ThresholdProblem("amount.zero", "0")),
        ("1e9", ThresholdProblem("amount.not_a_number", "1e9")),
        ("NaN", ThresholdProblem("amount.not_a_number", "NaN")),
        ("12.345", ThresholdProblem("amount.too_many_decimals", "12.345")),
        ("abc; 100", ThresholdProblem("amount.not_a_number", "abc")),
        ("five hundred", ThresholdProblem("amount.not_a_number", "five hundred")),
        ("100000.01", ThresholdProblem(ABOVE_MAXIMUM, "100000.01")),
        ("9" * 40, ThresholdProblem(ABOVE_MAXIMUM, "9" * 40)),
        ("6; 5; 4; 3; 2; 1", ThresholdProblem(TOO_MANY)),
    ],
)
def test_problems(text, problem):
    assert parse_thresholds(text, "USD", "en", maximum=MAX) == (problem, ())


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # The issue: "500,100" after a hint that said "separated by commas". In English it
        # is $500,100, above the maximum, and it reads as two amounts: say so.
        ("500,100", "en"),
        ("500, 100", "en"),
        ("500 100", "en"),
        ("50 100", "en"),  # a space is no thousands separator in English: never $50,100
        ("5 4 3 2 1", "en"),
        ("500,100", "pt_BR"),  # 500.1 there: too many decimals, and two amounts
        ("500, 100", "pt_BR"),
        ("12,50 100", "ru"),
        ("500 100", "fr"),  # a French group: 500 100 is above the maximum
        ("500,100", "zh_CN"),
    ],
)
def test_amounts_not_separated_by_semicolons_are_refused_with_the_separator(text, locale):
    assert parse_thresholds(text, "USD", locale, maximum=MAX) == (
        ThresholdProblem(SEPARATOR, text),
        (),
    )


def test_at_most_five():
    assert MAX_THRESHOLDS == 5
    assert parse_thresholds("5; 4; 3; 2; 1", "USD", "en", maximum=MAX)[1] == (
        500,
        400,
        300,
        200,
        100,
    )


def test_a_currency_without_minor_units():
    assert parse_thresholds("5000; 1,000", "JPY", "en", maximum=Money(10**7, "JPY")) == (
        None,
        (5000, 1000),
    )
    assert parse_thresholds("12.5", "JPY", "en", maximum=Money(10**7, "JPY"))[0] == (
        ThresholdProblem("amount.too_many_decimals", "12.5")
    )
