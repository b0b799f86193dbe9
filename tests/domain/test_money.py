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


def test_money_ignores_the_ambient_decimal_precision():
    """recognizers-text (a botbuilder-dialogs dependency) sets the process-wide precision to 15
    at import; 16-digit amounts must still come out exact (this failed before MONEY_CONTEXT)."""
    import decimal

    from credits.usage import ParseReport
    from credits.usage_export import iter_csv_rows
    from tests.support.usage_files import COLUMNS

    with decimal.localcontext() as ambient:
        ambient.prec = 5
        assert Money.from_decimal(Decimal("99999999999999.99"), "USD").minor == 9999999999999999
        assert Money(9999999999999999, "USD").to_decimal() == Decimal("99999999999999.99")
        assert parse_amount("99999999999999.99", "USD", "en-US").minor == 9999999999999999
        header = ",".join(f'"{c}"' for c in COLUMNS)
        row = [""] * len(COLUMNS)
        values = {
            "UsageId": "0b3c6a4e-3c1f-4b7a-9a0e-2f6d1c7e8a11",
            "Start Time": "2026-11-01T10:00:00Z",
            "Duration Seconds": "60",
            "Connection Fee": "0.01",
            "Charge": "99999999999999.98",
            "Currency": "USD",
            "Capability": "MCOPSTNPP",
        }
        for name, value in values.items():
            row[COLUMNS.index(name)] = value
        data = (header + "\r\n" + ",".join(row) + "\r\n").encode()
        import io

        report = ParseReport()
        [parsed] = list(iter_csv_rows(io.BytesIO(data), account_currency="USD", report=report))
        assert parsed.amount_minor() == 9999999999999999
        assert report.total_eligible == Decimal("99999999999999.99")
