"""Funding recommendation from real usage: daily spend, runway, and what to set.

Microsoft's advice is to start small and adjust after one or two months of PSTN usage data; this
does the adjusting. The trigger covers the 95th-percentile day over a lead time (how long an
admin needs to notice and act, or a recharge to go through), the recharge amount covers a month
at the mean rate, and the initial amount covers both. Beside it stands Microsoft's legacy
guidance by number of licensed users. Pure: no I/O, integer minor units throughout.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from credits.repository import CreditsRepository

# Microsoft's legacy guidance (USD): licensed users below the bound → (initial, lowest trigger).
LEGACY_GUIDANCE_USD: tuple[tuple[int, int, int], ...] = (
    (250, 1_000, 200),
    (500, 1_000, 400),
    (1_000, 2_000, 500),
    (5_000, 3_000, 1_000),
    (10_000, 5_000, 1_000),
    (50_000, 10_000, 1_000),
    (100_000, 15_000, 2_500),
    (200_000, 20_000, 2_500),
)
RECHARGE_DAYS = 30


@dataclass(frozen=True)
class Recommendation:
    days_with_data: int
    mean_30_minor: int
    mean_90_minor: int
    p95_minor: int
    runway_days: int | None
    """Whole days the balance lasts at the last 30 days' mean; None when nothing is spent."""
    trigger_minor: int
    recharge_minor: int
    initial_minor: int
    series: list[tuple[date, int]]
    """Daily spend, oldest first, every day of the window (zeros included)."""
    lead_days: int = 0
    """Days of a busy day's spend the trigger covers."""


def recommend(
    daily: dict[date, int],
    *,
    today: date,
    balance_minor: int,
    lead_days: int,
    minimum_minor: int,
    step_minor: int = 1_000,
) -> Recommendation:
    """`daily` is spend by day; the window is the 90 days before `today`."""
    first = min(daily) if daily else today
    start = max(first, today - timedelta(days=90))
    series = [
        (start + timedelta(days=n), daily.get(start + timedelta(days=n), 0))
        for n in range((today - start).days)
    ]
    values = [amount for _, amount in series]
    last_30 = values[-30:]
    mean_30 = _mean(last_30)
    mean_90 = _mean(values)
    p95 = _percentile(values, 95)
    runway = balance_minor // mean_30 if mean_30 > 0 else None
    trigger = _round_up(max(p95 * lead_days, minimum_minor if values else 0), step_minor)
    recharge = _round_up(max(mean_30 * RECHARGE_DAYS, minimum_minor), step_minor)
    return Recommendation(
        days_with_data=len(series),
        mean_30_minor=mean_30,
        mean_90_minor=mean_90,
        p95_minor=p95,
        runway_days=runway,
        trigger_minor=trigger,
        recharge_minor=recharge,
        initial_minor=_round_up(trigger + recharge, step_minor),
        series=series,
        lead_days=lead_days,
    )


def legacy_guidance_usd(licensed_users: int) -> tuple[int, int] | None:
    """(initial funding, lowest trigger) in whole USD for a tenant of this size, if listed."""
    for bound, initial, trigger in LEGACY_GUIDANCE_USD:
        if licensed_users < bound:
            return initial, trigger
    return None


def _mean(values: list[int]) -> int:
    return -(-sum(values) // len(values)) if values else 0  # rounded up: never under-fund


def _percentile(values: list[int], percent: int) -> int:
    """Nearest-rank percentile (no interpolation): a day that really happened."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step if value > 0 else 0


@dataclass(frozen=True)
class Advice:
    currency: str
    balance_minor: int
    recommendation: Recommendation
    licensed_users: int | None
    legacy_usd: tuple[int, int] | None


class FundingAdvisor:
    """Reads a tenant's spend history and account, and recommends funding."""

    def __init__(
        self,
        repository: CreditsRepository,
        *,
        today: Callable[[], date],
        lead_days: int,
        minimum_minor: Callable[[str], int],
        licensed_users: Callable[[str], Awaitable[int]] | None = None,
    ) -> None:
        """`today()` gives the date, `minimum_minor(currency)` the purchase minimum, and
        `licensed_users(tenant)` (optional) the count of Communications Credits licences."""
        self._repo = repository
        self._today = today
        self._lead_days = lead_days
        self._minimum = minimum_minor
        self._licensed = licensed_users

    async def advise(self, tenant_id: str, *, with_licences: bool = True) -> Advice | None:
        current = await self._repo.get_account(tenant_id)
        if current is None:
            return None
        account = current.value
        today = self._today()
        since = today - timedelta(days=90)
        daily = await self._repo.daily_spend(tenant_id, _midnight(since))
        recommendation = recommend(
            daily,
            today=today,
            balance_minor=account.balance_minor,
            lead_days=self._lead_days,
            minimum_minor=self._minimum(account.currency),
        )
        licensed = None
        if with_licences and self._licensed is not None:
            licensed = await self._licensed(tenant_id)
        return Advice(
            account.currency,
            account.balance_minor,
            recommendation,
            licensed,
            legacy_guidance_usd(licensed) if licensed is not None else None,
        )


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
