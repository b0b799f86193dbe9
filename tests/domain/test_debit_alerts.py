"""Which alerts a debit raises: a low balance, or, when the debit starts a recharge, none (the
recharge's success or failure is the news)."""

from __future__ import annotations

from array import array
from dataclasses import replace
from datetime import UTC, datetime

from credits import ledger
from credits.model import Account, AutoRecharge, EntryKind, EventKind, RechargeState
from credits.usage_charging import DayRows, plan_calls
from credits.usage_days import DayUsage, usage_key

AT = datetime(2026, 11, 23, tzinfo=UTC)
ON = AutoRecharge(enabled=True, recharge_with_minor=50_000, trigger_minor=20_000, method_id="c")


def plan_debit(account: Account, lots: list, minor: int):
    """The plan of one call of `minor` on the day of AT."""
    day = AT.date()
    rows = DayRows(day, usage_key("u1"), array("q", [minor]), array("q", [int(AT.timestamp())]))
    return plan_calls(
        account, lots, [rows], {day: DayUsage.empty(day)}, source="csv", reference="r", at=AT
    )


def funded(minor: int, **fields) -> tuple[Account, list]:
    change = ledger.credit(
        Account("t", "USD", **fields),
        minor,
        kind=EntryKind.PURCHASE,
        actor="admin",
        reference="order",
        at=AT,
    )
    return change.account, list(change.lots)


def kinds(plan) -> list[EventKind]:
    return [event.kind for event in plan.events]


def test_without_auto_recharge_a_crossing_raises_low_and_zero():
    account, lots = funded(30_000, low_balance_thresholds=(20_000, 5_000))
    plan = plan_debit(account, lots, 30_000)
    # $200 and $50 chosen, $60 the default (a fifth of the purchase), then zero.
    thresholds = [e.data.get("threshold_minor") for e in plan.events]
    assert thresholds == [20_000, 6_000, 5_000, None]
    assert kinds(plan)[-1] == EventKind.BALANCE_ZERO
    assert plan.change.account.recharge.due_key == ""


def test_a_crossing_that_starts_a_recharge_raises_no_balance_alert():
    account, lots = funded(30_000, auto_recharge=ON, low_balance_thresholds=(5_000,))
    for spent in (15_000, 30_000):  # below the trigger and an admin's threshold; to zero
        plan = plan_debit(account, lots, spent)
        assert plan.change.account.recharge.due_key  # the recharge is due
        assert kinds(plan) == []


def test_while_a_recharge_is_already_due_a_crossing_is_news():
    """The recharge failed and waits for its retry: the balance going lower is worth telling."""
    account, lots = funded(30_000, auto_recharge=ON, low_balance_thresholds=(5_000,))
    account = replace(account, recharge=RechargeState(due_key="recharge-1", attempts=1))
    plan = plan_debit(account, lots, 30_000)
    assert plan.change.account.recharge.due_key == "recharge-1"
    assert kinds(plan) == [EventKind.BALANCE_LOW, EventKind.BALANCE_LOW, EventKind.BALANCE_ZERO]
