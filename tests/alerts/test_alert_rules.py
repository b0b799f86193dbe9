"""The pure rules of alerts: who wants what, back-off, and how connector answers are read."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.proactive import Outcome, classify, retry_after
from credits.alerts import (
    DUE_KEY,
    MAX_ATTEMPTS,
    AlertPreferences,
    Delivery,
    DeliveryState,
    account_thresholds,
    backoff,
    default_thresholds,
    message_id,
    raised_at_default,
    superseded,
)
from credits.model import Account, AutoRecharge, EventKind, Lot, OutboxEvent, RechargeState
from credits.usage_charging import alert_thresholds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def event(kind: EventKind, **data) -> OutboxEvent:
    return OutboxEvent(f"{kind.value}-1", kind, NOW, data)


def test_default_threshold_is_the_trigger_or_a_fifth_of_the_last_purchase():
    assert default_thresholds(Account("t", "USD")) == ()
    assert default_thresholds(Account("t", "USD", last_purchase_minor=50_000)) == (10_000,)
    on = AutoRecharge(enabled=True, recharge_with_minor=50_000, trigger_minor=7_500)
    assert default_thresholds(Account("t", "USD", auto_recharge=on)) == (7_500,)


def test_the_ledger_raises_every_chosen_threshold_and_the_default():
    account = Account("t", "USD", last_purchase_minor=50_000, low_balance_thresholds=(50_000,))
    assert alert_thresholds(account) == (50_000, 10_000)
    chosen = [AlertPreferences(thresholds_minor=(500, 100)), AlertPreferences()]
    assert account_thresholds(chosen) == (500, 100)


def test_preferences_filter_kinds_and_thresholds():
    everything = AlertPreferences()
    assert everything.wants(event(EventKind.BALANCE_ZERO), at_default=False)
    low_default = event(EventKind.BALANCE_LOW, threshold_minor=10_000)
    assert everything.wants(low_default, at_default=True)
    assert not everything.wants(
        event(EventKind.BALANCE_LOW, threshold_minor=50_000), at_default=False
    )
    own = AlertPreferences(frozenset({EventKind.FUNDS_EXPIRING}), (50_000,))
    assert own.wants(event(EventKind.FUNDS_EXPIRED), at_default=False)  # one switch for both
    assert not own.wants(event(EventKind.BALANCE_ZERO), at_default=False)
    low = AlertPreferences(frozenset({EventKind.BALANCE_LOW}), (50_000,))
    assert low.wants(event(EventKind.BALANCE_LOW, threshold_minor=50_000), at_default=False)
    assert not low.wants(low_default, at_default=True)  # their own thresholds replace it


def test_the_default_is_the_one_the_event_was_raised_with():
    """The default moves with every purchase: the event's own word decides, not today's."""
    # $1,000 bought, then $50: today's default is $10, the event was raised at the old $200.
    account = Account("t", "USD", last_purchase_minor=5_000)
    raised = event(EventKind.BALANCE_LOW, threshold_minor=20_000, threshold_default=True)
    assert raised_at_default(raised, account, chosen=set())
    assert raised_at_default(raised, account, chosen={20_000})  # also someone's own: still
    chosen_only = event(EventKind.BALANCE_LOW, threshold_minor=1_000, threshold_default=False)
    assert not raised_at_default(chosen_only, account, chosen={1_000})  # today's default or not


def test_an_event_from_before_the_flag_is_judged_sensibly():
    account = Account("t", "USD", last_purchase_minor=5_000)  # default $10 today
    old = event(EventKind.BALANCE_LOW, threshold_minor=20_000, balance_minor=11_115)
    assert raised_at_default(old, account, chosen=set())  # nobody chose $200: the default
    assert not raised_at_default(old, account, chosen={20_000})  # someone's own: theirs
    today = event(EventKind.BALANCE_LOW, threshold_minor=1_000, balance_minor=900)
    assert raised_at_default(today, account, chosen={1_000})  # today's default counts too


def balance(minor: int, **fields) -> Account:
    return Account("t", "USD", balance_minor=minor, **fields)


def test_a_balance_alert_is_superseded_once_no_longer_true():
    low = {"threshold_minor": 20_000, "balance_minor": 11_115}
    assert not superseded(EventKind.BALANCE_LOW, low, balance(16_115))  # $161.15 < $200
    assert superseded(EventKind.BALANCE_LOW, low, balance(20_000))  # at the threshold
    assert superseded(EventKind.BALANCE_LOW, low, balance(21_115))
    assert not superseded(EventKind.BALANCE_ZERO, {}, balance(0))
    assert superseded(EventKind.BALANCE_ZERO, {}, balance(1))
    # What happened stays true, whatever the account does next.
    for kind in (EventKind.RECHARGE_SUCCEEDED, EventKind.FUNDS_EXPIRED):
        assert not superseded(kind, {"balance_minor": 0, "threshold_minor": 0}, balance(10**9))


def test_a_failed_recharge_is_superseded_once_its_crossing_was_recharged():
    failed = {"reason": "card_declined", DUE_KEY: "recharge-7"}
    on = AutoRecharge(enabled=True, recharge_with_minor=50_000, trigger_minor=20_000)
    waiting = RechargeState(due_key="recharge-7", attempts=1)
    assert not superseded(
        EventKind.RECHARGE_FAILED, failed, balance(0, auto_recharge=on, recharge=waiting)
    )
    # The next attempt succeeded: the crossing no longer awaits a recharge.
    settled = balance(50_000, auto_recharge=on)
    assert superseded(EventKind.RECHARGE_FAILED, failed, settled)
    # A later crossing awaits its own recharge: this one was still settled.
    later = balance(100, auto_recharge=on, recharge=RechargeState(due_key="recharge-9"))
    assert superseded(EventKind.RECHARGE_FAILED, failed, later)
    # Switched off after the last attempt: the failure stays true (and is sent).
    off = replace(on, enabled=False)
    assert not superseded(EventKind.RECHARGE_FAILED, failed, balance(0, auto_recharge=off))
    # An event from before failures named their crossing.
    assert not superseded(EventKind.RECHARGE_FAILED, {"reason": "x"}, settled)


def test_auto_recharge_disabled_is_superseded_once_it_is_on_again():
    on = AutoRecharge(enabled=True, recharge_with_minor=50_000, trigger_minor=20_000)
    data = {"reason": "expired_card"}
    assert not superseded(EventKind.AUTO_RECHARGE_DISABLED, data, balance(0))
    assert superseded(EventKind.AUTO_RECHARGE_DISABLED, data, balance(0, auto_recharge=on))


def test_expiring_funds_are_superseded_once_used_up():
    data = {"amount_minor": 2_000, "lot_id": "lot-1"}
    at = datetime(2027, 11, 23, tzinfo=UTC)
    kept = [Lot("lot-1", 10_000, 1, at, at)]
    used = [Lot("lot-1", 10_000, 0, at, at)]
    assert not superseded(EventKind.FUNDS_EXPIRING, data, balance(1), kept)
    assert superseded(EventKind.FUNDS_EXPIRING, data, balance(0), used)
    assert superseded(EventKind.FUNDS_EXPIRING, data, balance(0), [])


def test_backoff_doubles_with_jitter_and_is_capped():
    rng = random.Random(1)
    for attempts in range(1, 12):
        wait = backoff(attempts, rng)
        ceiling = min(timedelta(minutes=5), timedelta(seconds=2) * 2 ** (attempts - 1))
        assert ceiling / 2 <= wait <= ceiling


def test_retry_after_wins_over_a_shorter_backoff_and_attempts_run_out():
    delivery = Delivery("t", "e", EventKind.BALANCE_ZERO, NOW, {}, "a:x", "personal", "en")
    rng = random.Random(1)
    claimed = delivery.claimed(NOW, timedelta(minutes=2))
    again = claimed.retry_or_die(NOW, "429", timedelta(seconds=30), rng)
    assert again.state == DeliveryState.PENDING and again.next_at >= NOW + timedelta(seconds=30)
    spent = delivery
    for _ in range(MAX_ATTEMPTS):
        spent = spent.claimed(NOW, timedelta(minutes=2)).retry_or_die(NOW, "500", None, rng)
    assert (spent.state, spent.attempts) == (DeliveryState.DEAD, MAX_ATTEMPTS)


def test_message_ids_are_deterministic_per_event_and_recipient():
    assert message_id("e-1", "a:x") == message_id("e-1", "a:x")
    assert len({message_id("e-1", "a:x"), message_id("e-1", "a:y"), message_id("e-2", "a:x")}) == 3


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(429, Outcome.RETRY), (412, Outcome.RETRY), (500, Outcome.RETRY), (502, Outcome.RETRY),
     (504, Outcome.RETRY), (403, Outcome.GONE), (404, Outcome.GONE), (400, Outcome.REJECTED),
     (401, Outcome.REJECTED)],
)  # fmt: skip
def test_connector_answers_are_sorted(status, outcome):
    assert classify(status, {}, "x").outcome == outcome


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("86400", 3600.0), ("nan", None), ("soon", None),
     ("inf", None), (None, None), ("", None)],
)  # fmt: skip
def test_retry_after_is_read_safely(header, seconds):
    headers = {"Retry-After": header} if header is not None else {}
    got = retry_after(headers)
    assert (got.total_seconds() if got is not None else None) == seconds


def test_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=90)
    got = retry_after({"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    assert got is not None and 80 <= got.total_seconds() <= 90
