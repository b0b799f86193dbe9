"""Low-balance thresholds as an admin types them: several amounts in one field, in their locale."""

from __future__ import annotations

import pytest

from credits.alert_settings import (
    ABOVE_MAXIMUM,
    MAX_THRESHOLDS,
    TOO_MANY,
    ThresholdProblem,
    parse_thresholds,
    split_amounts,
)
from credits.money import Money

MAX = Money(10_000_000, "USD")


@pytest.mark.parametrize(
    ("text", "locale", "amounts"),
    [
        ("", "en", []),
        ("   ", "en", []),
        ("500, 100", "en", ["500", "100"]),
        ("500;100 200", "en", ["500", "100", "200"]),
        ("500,\t100;", "en", ["500", "100"]),
        # A comma between digits belongs to the number, as parse_amount reads it.
        ("1,250.50, 100", "en", ["1,250.50", "100"]),
        ("500,100", "en", ["500,100"]),
        ("1.250,50; 12,50 100", "pt_BR", ["1.250,50", "12,50", "100"]),
        # Where thousands are grouped with a space, "1 250,50" is one amount.
        ("1 250,50 ; 100", "fr", ["1 250,50", "100"]),
        ("1\u202f250,50; 100", "fr", ["1\u202f250,50", "100"]),
        ("1 000; 250", "ru", ["1 000", "250"]),
        ("12,50 100", "ru", ["12,50", "100"]),
        # A Chinese keyboard's full-width punctuation separates too.
        ("500，100、20；5", "zh_CN", ["500", "100", "20", "5"]),
        ("- 500, 100", "en", ["-500", "100"]),
    ],
)
def test_split_amounts(text, locale, amounts):
    assert split_amounts(text, locale) == amounts


@pytest.mark.parametrize(
    ("text", "locale", "minor"),
    [
        ("", "en", ()),
        ("500, 100", "en", (50000, 10000)),
        ("100 500 100", "en", (50000, 10000)),  # the same amount twice counts once
        ("$500, USD 100", "en", (50000, 10000)),
        ("US$ 1.250,50; R 100", "pt_BR", None),
        ("US$ 1.250,50; 100", "pt_BR", (125050, 10000)),
        ("1 250,50 $US ; 0,50", "fr", (125050, 50)),
        ("100000", "en", (10_000_000,)),
        ("1; 2; 3; 4; 5; 5; 5", "en", (500, 400, 300, 200, 100)),
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
        ("500, -100", ThresholdProblem("amount.negative", "-100")),
        ("0", ThresholdProblem("amount.zero", "0")),
        ("1e9", ThresholdProblem("amount.not_a_number", "1e9")),
        ("NaN", ThresholdProblem("amount.not_a_number", "NaN")),
        ("12.345", ThresholdProblem("amount.too_many_decimals", "12.345")),
        ("abc 100", ThresholdProblem("amount.not_a_number", "abc")),
        ("100000.01", ThresholdProblem(ABOVE_MAXIMUM, "100000.01")),
        ("9" * 40, ThresholdProblem(ABOVE_MAXIMUM, "9" * 40)),
        ("6 5 4 3 2 1", ThresholdProblem(TOO_MANY)),
    ],
)
def test_problems(text, problem):
    assert parse_thresholds(text, "USD", "en", maximum=MAX) == (problem, ())


def test_at_most_five():
    assert MAX_THRESHOLDS == 5
    assert parse_thresholds("5 4 3 2 1", "USD", "en", maximum=MAX)[1] == (
        500,
        400,
        300,
        200,
        100,
    )


def test_a_currency_without_minor_units():
    assert parse_thresholds("5000, 1,000", "JPY", "en", maximum=Money(10**7, "JPY")) == (
        None,
        (5000, 1000),
    )
    assert parse_thresholds("12.5", "JPY", "en", maximum=Money(10**7, "JPY"))[0] == (
        ThresholdProblem("amount.too_many_decimals", "12.5")
    )
