"""When the money runs out: a day-by-day forecast of the balance. Pure: no I/O, minor units.

The forecast walks forward from today, one day at a time, for at most `HORIZON_DAYS`:

1. **Spend.** Each day spends the last 30 days' mean daily spend (the funding recommendation's
   mean, credits/recommendation.py), spread over the week as the last whole weeks spent it (at
   least `PATTERN_WEEKS` of them, up to 12): each weekday's share is its average over those
   weeks leaving out its busiest one, so that one unusual day does not make every Friday
   expensive. A tenant that calls on weekdays only spends nothing on Saturday, and more on a
   Tuesday; with fewer weeks of data every day spends the mean. A busy day still counts in the
   mean while it is within the last 30 days: it was real money.
2. **Expiry.** Funds are drawn earliest-expiry first, as the ledger draws them; whatever is
   left of a lot on its expiry day is forfeited, so funds that expire before they are used do
   not count.
3. **Auto-recharge.** When it is on and a day's spend leaves the balance below the trigger, the
   recharge amount comes in, if its payment method can be charged that day: an agreement can
   always be invoiced; a saved card must not be past its expiry month nor marked failing. A
   recharge that cannot be charged fails, and (as the engine does after its retries) no more
   recharges come.

The money runs out on the first day whose spend is more than what is left. The days left are
counted from today: with a steady spend they equal the runway (balance // mean).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from credits.model import Account, Lot, MethodKind, SavedCard
from credits.recommendation import recommend

HORIZON_DAYS = 366
"""How far ahead the forecast looks: funds last at most twelve months anyway."""
PATTERN_WEEKS = 4
"""Whole weeks of spend needed before the week's shape is trusted."""
RECHARGED_FUNDS_DAYS = 365
"""A recharge's funds expire twelve months after it (credits/ledger.py)."""


class Cause(StrEnum):
    """Why the forecast is what it is."""

    SPENDING = "spending"
    """The balance is spent at the current rate."""
    EXPIRY = "expiry"
    """The balance is spent, sooner because some of it expires before it can be used."""
    CARD_EXPIRES = "card_expires"
    """Auto-recharge is on, but its card expires before the recharge it will be needed for."""
    CARD_FAILING = "card_failing"
    """Auto-recharge is on, but its card was declined (marked failing until a payment works)."""
    NO_METHOD = "no_method"
    """Auto-recharge is on, but its payment method is gone."""
    COVERED = "covered"
    """Auto-recharge keeps the balance up: the money does not run out through spending."""
    LATER = "later"
    """The money lasts beyond the horizon."""
    NO_SPEND = "no_spend"
    """Nothing was spent lately: nothing to forecast."""


METHOD_CAUSES = frozenset({Cause.CARD_EXPIRES, Cause.CARD_FAILING, Cause.NO_METHOD})


@dataclass(frozen=True)
class Forecast:
    today: date
    balance_minor: int
    mean_minor: int
    """Mean daily spend over the last 30 days (the recommendation's)."""
    weekday_minor: tuple[int, ...]
    """What each weekday spends in the forecast, Monday first."""
    cause: Cause
    runs_out: date | None = None
    """The first day whose spend the balance cannot cover; None while it does not run out."""
    recharge_on: date | None = None
    """The day of the recharge the forecast is about: the one auto-recharge cannot charge, or
    else the first one it makes."""
    card: SavedCard | None = None
    """Auto-recharge's card, when the forecast is about it."""
    expiring_minor: int = 0
    """Funds forfeited unused before the money runs out (or within the horizon)."""
    expiring_on: date | None = None
    """The first day funds are forfeited unused."""

    @property
    def days_left(self) -> int | None:
        """Whole days the money lasts from today; None when it does not run out."""
        return (self.runs_out - self.today).days if self.runs_out is not None else None

    @property
    def runway_days(self) -> int | None:
        """The runway at the current rate: the balance over the mean, recharges and expiry
        aside (the recommendation's figure)."""
        return self.balance_minor // self.mean_minor if self.mean_minor > 0 else None


def forecast(
    account: Account,
    lots: Sequence[Lot],
    daily: Mapping[date, int],
    *,
    today: date,
    horizon_days: int = HORIZON_DAYS,
) -> Forecast:
    """The forecast from the account, its lots and its charged spend per day (any days; the
    last 90 before `today` are read)."""
    series = recommend(
        daily, today=today, balance_minor=account.balance_minor, lead_days=0, minimum_minor=0
    )
    mean = series.mean_30_minor
    rates = weekday_rates(series.series, mean)
    base = Forecast(today, account.balance_minor, mean, rates, Cause.NO_SPEND)
    if mean == 0:
        return base
    walk = _walk(account, lots, rates, today, horizon_days)
    if walk.runs_out is None:
        cause = Cause.COVERED if walk.recharges else Cause.LATER
    elif walk.blocked is not None:
        cause = walk.blocked
    elif walk.expiring_minor:
        cause = Cause.EXPIRY
    else:
        cause = Cause.SPENDING
    return Forecast(
        today,
        account.balance_minor,
        mean,
        rates,
        cause,
        runs_out=walk.runs_out,
        recharge_on=walk.blocked_on or walk.recharge_on,
        card=recharge_card(account) if account.auto_recharge.enabled else None,
        expiring_minor=walk.expiring_minor,
        expiring_on=walk.expiring_on,
    )


def weekday_rates(series: Sequence[tuple[date, int]], mean: int) -> tuple[int, ...]:
    """Each weekday's spend (Monday first): the mean, shaped by the last whole weeks' spend."""
    weeks = min(len(series) // 7, 12)
    if mean == 0 or weeks < PATTERN_WEEKS:
        return (mean,) * 7
    samples: list[list[int]] = [[] for _ in range(7)]
    for day, amount in series[-weeks * 7 :]:
        samples[day.weekday()].append(amount)
    # Each weekday's total without its busiest day (all weekdays have as many samples).
    shares = [sum(amounts) - max(amounts) for amounts in samples]
    total = sum(shares)
    if total == 0:
        return (mean,) * 7
    # A week spends seven means, shared as the weeks shared it; rounded up, never under.
    return tuple(-(-7 * mean * share // total) for share in shares)


def recharge_card(account: Account) -> SavedCard | None:
    """The card auto-recharge charges, if it charges a card."""
    method_id = account.auto_recharge.method_id or account.default_method_id
    if method_id.startswith(f"{MethodKind.AGREEMENT.value}:"):
        return None
    return account.card(method_id)


def method_problem(account: Account, day: date) -> Cause | None:
    """Why auto-recharge could not be charged on `day` (None when it could)."""
    method_id = account.auto_recharge.method_id or account.default_method_id
    if method_id.startswith(f"{MethodKind.AGREEMENT.value}:"):
        return None  # an agreement is invoiced: nothing to decline
    card = account.card(method_id)
    if card is None or not card.saved:
        return Cause.NO_METHOD
    if card.expired(day):
        return Cause.CARD_EXPIRES
    if card.failure:
        return Cause.CARD_FAILING
    return None


@dataclass
class _Walk:
    runs_out: date | None = None
    recharges: int = 0
    recharge_on: date | None = None
    blocked: Cause | None = None
    blocked_on: date | None = None
    expiring_minor: int = 0
    expiring_on: date | None = None


def _walk(
    account: Account, lots: Sequence[Lot], rates: Sequence[int], today: date, horizon: int
) -> _Walk:
    walk = _Walk()
    # [expiry day, remaining], earliest expiry first (the ledger's draw order).
    funds = [
        [lot.expires_at.date(), lot.remaining_minor]
        for lot in sorted(lots, key=lambda lot: (lot.expires_at, lot.purchased_at, lot.lot_id))
        if lot.remaining_minor > 0
    ]
    settings = account.auto_recharge
    recharging = settings.enabled and settings.recharge_with_minor > 0
    for offset in range(horizon):
        day = today + timedelta(days=offset)
        for fund in funds:
            if fund[0] <= day and fund[1] > 0:
                walk.expiring_minor += fund[1]
                walk.expiring_on = walk.expiring_on or day
                fund[1] = 0
        need = rates[day.weekday()]
        left = sum(fund[1] for fund in funds)
        if need > left:
            walk.runs_out = day
            return walk
        for fund in funds:
            used = min(need, fund[1])
            fund[1] -= used
            need -= used
        if recharging and left - rates[day.weekday()] < settings.trigger_minor:
            problem = method_problem(account, day)
            if problem is not None:
                walk.blocked, walk.blocked_on = problem, day
                recharging = False  # the engine gives up after its retries
                continue
            walk.recharge_on = walk.recharge_on or day
            funds.append([day + timedelta(days=RECHARGED_FUNDS_DAYS), settings.recharge_with_minor])
            funds.sort(key=lambda fund: fund[0])
            walk.recharges += 1
    return walk
