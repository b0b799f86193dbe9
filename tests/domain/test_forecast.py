"""The runway forecast on synthetic spend histories: one table, each row a history, an account
and its lots, and what the forecast must say (credits/forecast.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from credits.forecast import Cause, forecast, weekday_rates
from credits.model import Account, AutoRecharge, Lot, SavedCard

TODAY = date(2026, 11, 16)  # a Monday
DOLLAR = 100


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def steady(dollars: int, days: int = 90) -> dict[date, int]:
    return {days_ago(n): dollars * DOLLAR for n in range(1, days + 1)}


def weekdays_only(dollars: int, weeks: int = 8) -> dict[date, int]:
    return {
        days_ago(n): dollars * DOLLAR if days_ago(n).weekday() < 5 else 0
        for n in range(1, weeks * 7 + 1)
    }


def with_spike(history: dict[date, int], ago: int, dollars: int) -> dict[date, int]:
    return {**history, days_ago(ago): dollars * DOLLAR}


def lot(dollars: int, expires_in_days: int, name: str = "lot") -> Lot:
    purchased = at(TODAY - timedelta(days=365 - expires_in_days))
    expires = at(TODAY + timedelta(days=expires_in_days))
    return Lot(name, dollars * DOLLAR, dollars * DOLLAR, purchased, expires)


VISA = SavedCard("card-1", "pm_1", "visa", "4242", 12, 2028)


def account(
    lots: list[Lot], *, recharge: AutoRecharge | None = None, card: SavedCard = VISA
) -> Account:
    return Account(
        "tenant",
        "USD",
        balance_minor=sum(x.remaining_minor for x in lots),
        cards=(card,),
        default_method_id=card.id,
        auto_recharge=recharge or AutoRecharge(),
    )


def recharging(method_id: str = "card-1") -> AutoRecharge:
    """On: $1,000 whenever the balance falls below $500."""
    return AutoRecharge(True, 1_000 * DOLLAR, 500 * DOLLAR, method_id)


@dataclass(frozen=True)
class Case:
    name: str
    daily: dict[date, int]
    account: Account
    lots: list[Lot]
    cause: Cause
    days_left: int | None
    runway_days: int | None
    check: Callable = field(default=lambda outlook: True)


def case(name, daily, lots, cause, days_left, runway_days, check=None, **account_fields):
    return pytest.param(
        Case(
            name,
            daily,
            account(lots, **account_fields),
            lots,
            cause,
            days_left,
            runway_days,
            check or (lambda outlook: True),
        ),
        id=name,
    )


CASES = [
    # $100 a day and $1,000: ten days, as the runway says.
    case(
        "steady",
        steady(100),
        [lot(1_000, 200)],
        Cause.SPENDING,
        10,
        10,
        lambda f: f.weekday_minor == (100 * DOLLAR,) * 7 and f.runs_out == TODAY + timedelta(10),
    ),
    # Calls on weekdays only: the last 30 days average $66.67 a day, so the runway reads 6 days,
    # Sunday; but a weekend spends nothing, and $93.34 a weekday (× 7 / 5) runs $450 out on
    # Friday, four days from this Monday.
    case(
        "weekly pattern",
        weekdays_only(100),
        [lot(450, 200)],
        Cause.SPENDING,
        4,
        6,
        lambda f: (
            f.weekday_minor[5:] == (0, 0)
            and f.weekday_minor[0] == 9_334
            and f.runs_out.weekday() == 4
        ),
    ),
    # A $3,000 day yesterday counts while it is in the last 30 days: the mean doubles, and the
    # forecast halves (conservative: spend is real money). It does not make every Sunday busy.
    case(
        "a spike yesterday",
        with_spike(steady(100), 1, 3_000),
        [lot(2_000, 200)],
        Cause.SPENDING,
        10,
        10,
        lambda f: f.mean_minor == 19_667 and f.weekday_minor == (19_667,) * 7,
    ),
    # The same spike 31 days ago is out of the last 30 days: the forecast is the steady one,
    # every Friday included.
    case(
        "a spike a month ago",
        with_spike(steady(100), 31, 3_000),
        [lot(2_000, 200)],
        Cause.SPENDING,
        20,
        20,
        lambda f: f.weekday_minor == (100 * DOLLAR,) * 7,
    ),
    case("no usage", {}, [lot(1_000, 200)], Cause.NO_SPEND, None, None),
    case("no usage for 90 days", steady(0), [lot(1_000, 200)], Cause.NO_SPEND, None, None),
    # $900 expires in three days: $300 of it is used by then, $600 is forfeited, and the other
    # lot's $500 lasts five days more: eight days, not fourteen.
    case(
        "expiring lots",
        steady(100),
        [lot(900, 3, "soon"), lot(500, 300, "later")],
        Cause.EXPIRY,
        8,
        14,
        lambda f: (f.expiring_minor, f.expiring_on) == (600 * DOLLAR, TODAY + timedelta(3)),
    ),
    # Funds that all expire before they are spent: the money runs out on the expiry day.
    case(
        "everything expires first",
        steady(10),
        [lot(1_000, 5)],
        Cause.EXPIRY,
        5,
        100,
    ),
    # Auto-recharge with a card valid long after: the money does not run out through spending;
    # the first recharge comes on the day the balance falls below $500.
    case(
        "auto-recharge covers",
        steady(100),
        [lot(1_000, 200)],
        Cause.COVERED,
        None,
        10,
        lambda f: f.recharge_on == TODAY + timedelta(5) and f.card == VISA,
        recharge=recharging(),
    ),
    # The card ends this month, the recharge is needed on 1 December: it would be declined,
    # and the $400 left then lasts four days more.
    case(
        "auto-recharge with an expiring card",
        steady(100),
        [lot(2_000, 200)],
        Cause.CARD_EXPIRES,
        20,
        20,
        lambda f: f.recharge_on == date(2026, 12, 1) and f.card.last4 == "4242",
        recharge=recharging(),
        card=SavedCard("card-1", "pm_1", "visa", "4242", 11, 2026),
    ),
    # A card ending in December pays that recharge; the next ones, from 11 January, it cannot:
    # the money runs out four days after that one was due.
    case(
        "auto-recharge with a card that lasts one more recharge",
        steady(100),
        [lot(2_000, 200)],
        Cause.CARD_EXPIRES,
        60,
        20,
        lambda f: f.recharge_on == date(2027, 1, 10),
        recharge=recharging(),
        card=SavedCard("card-1", "pm_1", "visa", "4242", 12, 2026),
    ),
    case(
        "auto-recharge with a failing card",
        steady(100),
        [lot(1_000, 200)],
        Cause.CARD_FAILING,
        10,
        10,
        recharge=recharging(),
        card=SavedCard("card-1", "pm_1", "visa", "4242", 12, 2028, failure="declined"),
    ),
    case(
        "auto-recharge whose card is gone",
        steady(100),
        [lot(1_000, 200)],
        Cause.NO_METHOD,
        10,
        10,
        recharge=recharging("card-removed"),
    ),
    case(
        "auto-recharge on an agreement",
        steady(100),
        [lot(1_000, 200)],
        Cause.COVERED,
        None,
        10,
        recharge=recharging("agreement:EA-1"),
    ),
    # $1,500 a day against recharges of $1,000: today leaves $300 and recharges to $1,300,
    # which does not cover tomorrow.
    case(
        "auto-recharge smaller than a day's spend",
        steady(1_500),
        [lot(1_800, 200)],
        Cause.SPENDING,
        1,
        1,
        lambda f: f.recharge_on == TODAY,
        recharge=recharging(),
    ),
    case("nothing left", steady(100), [], Cause.SPENDING, 0, 0),
]


@pytest.mark.parametrize("case", CASES)
def test_forecast(case: Case):
    outlook = forecast(case.account, case.lots, case.daily, today=TODAY)
    assert outlook.cause == case.cause
    assert outlook.days_left == case.days_left
    assert outlook.runway_days == case.runway_days
    if case.days_left is not None:
        assert outlook.runs_out == TODAY + timedelta(days=case.days_left)
    assert case.check(outlook), outlook


def test_the_week_is_shaped_only_by_whole_weeks_of_enough_history():
    three_weeks = weekdays_only(100, weeks=3)
    series = sorted(three_weeks.items())
    assert weekday_rates(series, 7_000) == (7_000,) * 7  # too little to trust a shape
    series = sorted(weekdays_only(100, weeks=4).items())
    assert weekday_rates(series, 7_000) == (9_800,) * 5 + (0, 0)
    assert sum(weekday_rates(series, 7_000)) == 7 * 7_000
    # Some week's busiest day of each weekday is left out: one busy Friday shapes nothing.
    series = sorted(with_spike(weekdays_only(100, weeks=4), 3, 5_000).items())
    assert weekday_rates(series, 7_000) == (9_800,) * 5 + (0, 0)


def test_spend_of_today_and_later_is_not_yet_in_the_window():
    daily = {**steady(100), TODAY: 50_000 * DOLLAR}
    outlook = forecast(account([lot(1_000, 200)]), [lot(1_000, 200)], daily, today=TODAY)
    assert outlook.days_left == 10
