"""The runway alert: "funds run out in N days", once per crossing of each runway threshold.

Each admin chooses runway thresholds in days (`alerts`; by default `DEFAULT_RUNWAY_DAYS`), and
the account keeps every admin's (`Account.runway_thresholds`). An evaluation forecasts the
balance (credits/forecast.py) and compares the days left with each threshold:

- a threshold the forecast is below, and that is not yet crossed, raises one `runway_low`
  alert and becomes crossed; its id is `runway_low-<days>-<serial>`, the serial counting the
  evaluations that raised alerts, so two instances evaluating the same account derive the same
  id and only one commit wins;
- a crossed threshold the forecast is back above is re-armed (at exactly the threshold it stays
  crossed: a forecast that wavers by a day does not alert twice);
- the new state and the alerts are one transaction under the account's ETag (`commit`): never
  lost, never doubled.

When it runs, so that only tenants whose forecast can have moved cost more than a read:

- after a usage import (the importer asks once it is done) and after any other commit or
  settings change (the repository's `on_change` wakes `run`);
- by a leased job, for a tenant whose inputs changed since its last evaluation (a crash between
  a charge and its evaluation) or whose `next_check` day has come: the day the forecast crosses
  a threshold by the passing of time alone (the days left shrink by one a day), tomorrow while
  a threshold is crossed (the forecast may come back as busy days leave the window) or while
  today has spend (it enters the window tomorrow), and at most `MAX_DAYS_UNCHECKED` later.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta

from credits import ledger
from credits.alerts import DEFAULT_RUNWAY_DAYS
from credits.forecast import Forecast, forecast, recharge_card
from credits.model import Account, EventKind, OutboxEvent, RunwayWatch
from credits.repository import ConcurrencyConflict, CreditsRepository, DuplicateRecord, Versioned
from credits.wakeups import Wakeups

logger = logging.getLogger(__name__)

MAX_DAYS_UNCHECKED = 30
"""A safety net: every account with an evaluation is evaluated again within this many days."""
WINDOW_DAYS = 91
"""Days of spend read: the recommendation's 90 before today, and today."""
MAX_ATTEMPTS = 10


def runway_thresholds(account: Account) -> tuple[int, ...]:
    """Every admin's runway thresholds and the default (for admins who chose none), largest
    first."""
    return tuple(sorted(set(account.runway_thresholds) | {DEFAULT_RUNWAY_DAYS}, reverse=True))


def inputs_of(account: Account) -> str:
    """What an evaluation of this account depends on, besides the date and the spend: the
    ledger position (every change of money moves it, usage included) and the settings that
    shape the forecast."""
    card = recharge_card(account)
    settings = [
        asdict(account.auto_recharge),
        account.default_method_id,
        asdict(card) if card is not None else None,
        sorted(account.runway_thresholds),
    ]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return f"{account.ledger_seq}-{digest}"


def needs_evaluation(account: Account, today: date) -> bool:
    """Whether the account changed since its last evaluation, or its next-check day came."""
    watch = account.runway
    return (
        watch.inputs != inputs_of(account)
        or not watch.next_check
        or watch.next_check <= today.isoformat()
    )


def evaluate(
    account: Account, outlook: Forecast, *, at: datetime, spent_from_today: bool
) -> tuple[RunwayWatch, list[OutboxEvent]]:
    """The account's new runway state and the alerts it raises. Pure.

    `spent_from_today`: spend is charged for today (or later), which the forecast's window
    takes in only from tomorrow.
    """
    thresholds = runway_thresholds(account)
    days = outlook.days_left
    watch = account.runway
    below = {t for t in thresholds if days is not None and days < t}
    kept = {t for t in watch.crossed if t in thresholds and days is not None and days <= t}
    new = sorted(below - set(watch.crossed), reverse=True)
    serial = watch.serial + 1 if new else watch.serial
    events = [
        OutboxEvent(f"runway_low-{t}-{serial}", EventKind.RUNWAY_LOW, at, event_data(outlook, t))
        for t in new
    ]
    crossed = tuple(sorted(below | kept, reverse=True))
    checked = next_check(outlook, thresholds, crossed, spent_from_today=spent_from_today)
    return RunwayWatch(crossed, serial, inputs_of(account), checked.isoformat()), events


def next_check(
    outlook: Forecast, thresholds: tuple[int, ...], crossed: tuple[int, ...], *, spent_from_today
) -> date:
    """The first day on which the forecast can cross a threshold with nothing else changing."""
    today = outlook.today
    days = [today + timedelta(days=MAX_DAYS_UNCHECKED)]
    if crossed or spent_from_today:
        days.append(today + timedelta(days=1))
    if outlook.runs_out is not None:
        # Days left fall below t on the day they become t - 1.
        days += [
            outlook.runs_out - timedelta(days=t - 1)
            for t in thresholds
            if t not in crossed and outlook.runs_out - timedelta(days=t - 1) > today
        ]
    return min(days)


def event_data(outlook: Forecast, threshold: int) -> dict[str, str | int]:
    """What the card says, as it was when the alert was raised."""
    data: dict[str, str | int] = {
        "threshold_days": threshold,
        "days_left": outlook.days_left if outlook.days_left is not None else -1,
        "runs_out": outlook.runs_out.isoformat() if outlook.runs_out else "",
        "cause": outlook.cause.value,
        "mean_minor": outlook.mean_minor,
        "balance_minor": outlook.balance_minor,
    }
    if outlook.recharge_on is not None:
        data["recharge_on"] = outlook.recharge_on.isoformat()
    if outlook.expiring_minor:
        data["expiring_minor"] = outlook.expiring_minor
        data["expiring_on"] = outlook.expiring_on.isoformat() if outlook.expiring_on else ""
    if outlook.card is not None:
        card = outlook.card
        data |= {
            "card_brand": card.brand,
            "card_last4": card.last4,
            "card_month": card.expiry_month,
            "card_year": card.expiry_year,
            "card_failed_on": card.failed_on,
        }
    return data


class RunwayAlerts:
    """Forecasts a tenant's runway and raises its alerts (reads the account, its lots and 91
    days of spend; writes the account only when its runway state changes)."""

    def __init__(
        self,
        repository: CreditsRepository,
        *,
        clock: Callable[[], datetime],
        errors: tuple[type[Exception], ...] = (),
        woken: Wakeups | None = None,
    ) -> None:
        """`errors`: what a failed evaluation after an import, or of a woken tenant, may raise
        (storage errors): logged, and left to the job, which finds the account changed.
        `woken`: the tenants the repository says changed, evaluated by `run`."""
        self._repo = repository
        self._clock = clock
        self._errors = errors
        self._woken = woken or Wakeups()
        self._busy = False

    async def forecast(self, tenant_id: str) -> Forecast | None:
        current = await self._repo.get_account(tenant_id)
        if current is None:
            return None
        outlook, _spent = await self._forecast(current.value, self._clock().date())
        return outlook

    async def check(self, tenant_id: str) -> list[str]:
        """Evaluate the tenant if its account changed since, or its next-check day came (one
        read otherwise); the ids of the alerts raised."""
        for _attempt in range(MAX_ATTEMPTS):
            current = await self._repo.get_account(tenant_id)
            today = self._clock().date()
            if current is None or not needs_evaluation(current.value, today):
                return []
            try:
                return await self._evaluate(current, today)
            except (ConcurrencyConflict, DuplicateRecord):
                continue  # changed meanwhile: read it again, and evaluate what it is now
        raise ConcurrencyConflict(f"the account of tenant {tenant_id} kept changing")

    async def settle(self, tenant_id: str) -> None:
        """`check`, after a change that has happened already (an import): a failure here is
        logged, and the job evaluates the tenant later (its inputs changed)."""
        try:
            await self.check(tenant_id)
        except (ConcurrencyConflict, *self._errors):
            logger.warning("runway of tenant %s not evaluated; the job will", tenant_id)

    async def _evaluate(self, current: Versioned[Account], today: date) -> list[str]:
        account = current.value
        outlook, spent = await self._forecast(account, today)
        watch, events = evaluate(account, outlook, at=self._clock(), spent_from_today=spent)
        if watch == account.runway and not events:
            return []
        change = ledger.Change(replace(account, runway=watch), (), ())
        await self._repo.commit(current.etag, change, inserts=events)
        if events:
            logger.info(
                "runway of tenant %s: %s days left (%s), alerts %s",
                account.tenant_id,
                outlook.days_left,
                outlook.cause.value,
                [event.event_id for event in events],
            )
        return [event.event_id for event in events]

    async def _forecast(self, account: Account, today: date) -> tuple[Forecast, bool]:
        lots = await self._repo.list_lots(account.tenant_id)
        since = today - timedelta(days=WINDOW_DAYS)
        daily = await self._repo.daily_spend(
            account.tenant_id, datetime(since.year, since.month, since.day, tzinfo=UTC)
        )
        spent = any(amount > 0 for day, amount in daily.items() if day >= today)
        return forecast(account, lots, daily, today=today), spent

    # --- woken by the repository after a commit or a settings change ------------------------

    async def run(self) -> None:
        """Serve wake-ups until cancelled, one tenant at a time (a tenant woken again while it
        is evaluated is evaluated again after: its own commit wakes it too, and costs a read)."""
        while True:
            await self._woken.event.wait()
            self._busy = True
            try:
                for tenant_id in sorted(self._woken.take()):
                    await self.settle(tenant_id)
            finally:
                self._busy = False

    async def idle(self) -> None:
        """Return once no wake-up is waiting or being served (tests)."""
        while self._woken.tenants or self._busy:  # noqa: ASYNC110 - a set and a flag
            await asyncio.sleep(0.01)
