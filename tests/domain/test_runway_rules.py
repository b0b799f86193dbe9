"""When a forecast raises a runway alert: once per crossing of each threshold, re-armed when the
forecast goes back above it (credits/runway.py, pure rules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from credits.alerts import DEFAULT_RUNWAY_DAYS, AlertPreferences, superseded
from credits.forecast import Cause, Forecast
from credits.model import Account, AutoRecharge, EventKind, OutboxEvent, RunwayWatch
from credits.runway import evaluate, inputs_of, needs_evaluation, runway_thresholds

TODAY = date(2026, 11, 16)
AT = datetime(2026, 11, 16, 9, tzinfo=UTC)


def outlook(days_left: int | None, cause: Cause = Cause.SPENDING) -> Forecast:
    runs_out = TODAY + timedelta(days=days_left) if days_left is not None else None
    if days_left is None and cause == Cause.SPENDING:
        cause = Cause.COVERED
    return Forecast(TODAY, 50_000, 4_000, (4_000,) * 7, cause, runs_out=runs_out)


def step(account: Account, days_left: int | None, *, spent: bool = False):
    watch, events = evaluate(account, outlook(days_left), at=AT, spent_from_today=spent)
    return replace(account, runway=watch), events


def ids(events: list[OutboxEvent]) -> list[str]:
    return [event.event_id for event in events]


def test_one_alert_per_crossing_re_armed_above_the_threshold():
    account = Account("t", "USD", ledger_seq=3)
    account, events = step(account, 20)
    assert events == [] and account.runway.crossed == ()

    account, events = step(account, 9)  # below 14: the alert
    assert ids(events) == ["runway_low-14-1"]
    [event] = events
    assert event.kind == EventKind.RUNWAY_LOW
    assert event.data["threshold_days"] == 14 and event.data["days_left"] == 9
    assert event.data["runs_out"] == "2026-11-25" and event.data["mean_minor"] == 4_000
    assert account.runway.crossed == (14,)

    for days in (9, 5, 13, 14):  # still crossed: nothing new (at 14 it is not back above)
        account, events = step(account, days)
        assert events == [] and account.runway.crossed == (14,)

    account, events = step(account, 15)  # back above: re-armed
    assert events == [] and account.runway.crossed == ()
    account, events = step(account, 12)
    assert ids(events) == ["runway_low-14-2"]


def test_each_threshold_crosses_on_its_own():
    account = Account("t", "USD", runway_thresholds=(30, 7))
    assert runway_thresholds(account) == (30, 14, 7)  # the default stays for admins without

    account, events = step(account, 10)
    assert ids(events) == ["runway_low-30-1", "runway_low-14-1"]
    account, events = step(account, 6)
    assert ids(events) == ["runway_low-7-2"]
    assert account.runway.crossed == (30, 14, 7)

    account, events = step(account, None)  # auto-recharge switched on: every one re-armed
    assert events == [] and account.runway.crossed == ()

    account = replace(account, runway_thresholds=())
    account, _ = step(account, 20)
    assert account.runway.crossed == ()  # 30 is no one's any more


def test_a_threshold_no_admin_keeps_is_no_longer_crossed():
    account = replace(Account("t", "USD"), runway=RunwayWatch(crossed=(30, 14), serial=4))
    account, events = step(account, 10)
    assert events == [] and account.runway.crossed == (14,)


@pytest.mark.parametrize(
    ("days_left", "crossed", "spent", "expected"),
    [
        # Days left fall below 14 on the day they are 13: runs out on the 26th → the 13th.
        (40, (), False, TODAY + timedelta(days=27)),
        # Far away, or not running out: within a month anyway.
        (400, (), False, TODAY + timedelta(days=30)),
        (None, (), False, TODAY + timedelta(days=30)),
        # Today's spend enters the window tomorrow; a crossed threshold may come back.
        (40, (), True, TODAY + timedelta(days=1)),
        (9, (14,), False, TODAY + timedelta(days=1)),
    ],
)
def test_the_next_check_is_the_day_time_alone_can_cross(days_left, crossed, spent, expected):
    account = replace(Account("t", "USD"), runway=RunwayWatch(crossed=crossed, serial=1))
    account, _ = step(account, days_left, spent=spent)
    assert account.runway.next_check == expected.isoformat()


def test_an_account_is_evaluated_again_only_when_it_changed_or_its_day_came():
    account, _ = step(Account("t", "USD", ledger_seq=8), 40)
    assert account.runway.inputs == inputs_of(account)
    assert not needs_evaluation(account, TODAY)
    assert not needs_evaluation(account, TODAY + timedelta(days=26))
    assert needs_evaluation(account, TODAY + timedelta(days=27))  # its next-check day
    assert needs_evaluation(replace(account, ledger_seq=9), TODAY)  # money moved
    assert needs_evaluation(replace(account, auto_recharge=AutoRecharge(True, 1, 1, "x")), TODAY)
    assert needs_evaluation(replace(account, runway_thresholds=(30,)), TODAY)
    assert needs_evaluation(Account("t", "USD"), TODAY)  # never evaluated


def test_who_hears_a_runway_alert_and_when_it_is_no_longer_true():
    event = OutboxEvent("runway_low-30-1", EventKind.RUNWAY_LOW, AT, {"threshold_days": 30})
    default = OutboxEvent("runway_low-14-1", EventKind.RUNWAY_LOW, AT, {"threshold_days": 14})
    assert AlertPreferences().wants(default, at_default=False)
    assert not AlertPreferences().wants(event, at_default=False)
    chose = AlertPreferences(runway_days=(30,))
    assert chose.wants(event, at_default=False) and not chose.wants(default, at_default=False)
    off = AlertPreferences(kinds=frozenset(EventKind) - {EventKind.RUNWAY_LOW})
    assert not off.wants(default, at_default=False)
    assert DEFAULT_RUNWAY_DAYS == 14

    account = Account("t", "USD")
    data = default.data
    assert superseded(EventKind.RUNWAY_LOW, data, account, outlook=outlook(13)) == ""
    assert superseded(EventKind.RUNWAY_LOW, data, account, outlook=outlook(14))
    assert superseded(EventKind.RUNWAY_LOW, data, account, outlook=outlook(None))
