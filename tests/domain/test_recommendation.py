"""The funding recommendation from daily spend."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from credits.recommendation import legacy_guidance_usd, recommend

TODAY = date(2026, 11, 23)


def test_steady_spend():
    daily = {TODAY - timedelta(days=n): 10_000 for n in range(1, 91)}  # $100 a day
    r = recommend(daily, today=TODAY, balance_minor=250_000, lead_days=7, minimum_minor=5_000)
    assert (r.mean_30_minor, r.mean_90_minor, r.p95_minor) == (10_000, 10_000, 10_000)
    assert r.runway_days == 25
    assert r.trigger_minor == 70_000  # a week of the 95th-percentile day
    assert r.recharge_minor == 300_000  # a month at the mean
    assert r.initial_minor == 370_000
    assert len(r.series) == 90 and r.series[0][0] == TODAY - timedelta(days=90)


def test_spiky_spend_raises_the_trigger_not_the_recharge():
    daily = {TODAY - timedelta(days=n): 1_000 for n in range(1, 91)}
    for n in range(1, 91, 10):
        daily[TODAY - timedelta(days=n)] = 50_000
    r = recommend(daily, today=TODAY, balance_minor=0, lead_days=7, minimum_minor=5_000)
    assert r.p95_minor == 50_000 and r.trigger_minor == 350_000
    assert r.recharge_minor < r.trigger_minor


def test_no_usage_yet():
    r = recommend({}, today=TODAY, balance_minor=5_000, lead_days=7, minimum_minor=5_000)
    assert r.runway_days is None and r.series == [] and r.trigger_minor == 0
    assert r.recharge_minor == 5_000


def test_days_without_calls_count_as_zero():
    daily = {TODAY - timedelta(days=10): 7_000}
    r = recommend(daily, today=TODAY, balance_minor=100, lead_days=7, minimum_minor=0)
    assert len(r.series) == 10 and sum(a for _, a in r.series) == 7_000
    assert r.mean_30_minor == 700


@given(st.dictionaries(st.integers(1, 200), st.integers(0, 10**9), max_size=120))
def test_never_underfunds_the_busiest_day(spend):
    daily = {TODAY - timedelta(days=d): a for d, a in spend.items()}
    r = recommend(daily, today=TODAY, balance_minor=10**6, lead_days=3, minimum_minor=5_000)
    window = [a for _, a in r.series]
    if window:
        assert r.trigger_minor >= r.p95_minor * 3 and r.p95_minor <= max(window)
        assert r.initial_minor >= r.trigger_minor + r.recharge_minor - 1_000


def test_microsofts_legacy_guidance_by_licensed_users():
    assert legacy_guidance_usd(10) == (1_000, 200)
    assert legacy_guidance_usd(250) == (1_000, 400)
    assert legacy_guidance_usd(7_500) == (5_000, 1_000)
    assert legacy_guidance_usd(150_000) == (20_000, 2_500)
    assert legacy_guidance_usd(500_000) is None
