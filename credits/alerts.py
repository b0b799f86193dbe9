"""Alerts: who hears about which event, and what becomes of each message.

An outbox event (written with the money change that caused it) fans out into one delivery per
recipient. A delivery's id is derived from the event and the conversation, so fanning out twice
creates nothing new, and its state records what happened to the message:

    pending ──claim──> sending ──> delivered
       ^                  │──> pending (429/5xx: later, with back-off)   ──> dead (attempts spent)
       └──────────────────┘──> gone (403/404: the bot was removed)
       │                  └──> unconfirmed (the sender crashed mid-send: not sent again)
       └──> superseded (no longer true when its turn came: not sent)

Who hears a balance alert is decided from the event as it was raised (its threshold, and
whether that was the account's default then); whether any alert is still worth sending, from
the account at the moment it is sent (`superseded`): a balance back above the threshold, a
failed recharge whose crossing a later recharge settled, auto-recharge switched back on, funds
about to expire that were used up. What happened (a recharge that succeeded, funds that expired)
stays true and is always sent.

No I/O here: the dispatcher in `bot/alert_dispatch.py` drives these through the `AlertStore`
port (`storage/alerts.py` keeps them in Azure Tables).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from credits.forecast import Forecast
from credits.model import Account, EventKind, Lot, OutboxEvent
from credits.repository import Versioned

# Teams sends 429 and 5xx; five tries cover minutes of throttling before a message is given up.
MAX_ATTEMPTS = 5
# The first retry waits about this long, doubling each time, capped.
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=5)
# With auto-recharge off, the default low-balance threshold is this share of the last purchase.
DEFAULT_THRESHOLD_PERCENT = 20
# In a balance_low event's data: whether its threshold was the account's default when raised.
THRESHOLD_DEFAULT = "threshold_default"
# The runway threshold of an admin who chose none: two weeks to order funds (or a card).
DEFAULT_RUNWAY_DAYS = 14


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
    GONE = "gone"
    UNCONFIRMED = "unconfirmed"
    SUPERSEDED = "superseded"


OPEN_STATES = frozenset({DeliveryState.PENDING, DeliveryState.SENDING})


@dataclass(frozen=True)
class Delivery:
    tenant_id: str
    event_id: str
    kind: EventKind
    event_at: datetime
    data: dict[str, str | int | bool | None]
    conversation_id: str
    conversation_kind: str
    locale: str
    recipient: str = ""
    """Who the conversation is, as history shows it: a person's or a channel's name."""
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_at: datetime | None = None
    claimed_until: datetime | None = None
    last_error: str = ""
    activity_id: str = ""
    updated_at: datetime | None = None

    @property
    def message_id(self) -> str:
        """Deterministic per event and recipient: the same alert is always the same message."""
        return message_id(self.event_id, self.conversation_id)

    def due(self, now: datetime) -> bool:
        return self.state == DeliveryState.PENDING and (self.next_at is None or self.next_at <= now)

    def claimed(self, now: datetime, ttl: timedelta) -> Delivery:
        return replace(
            self,
            state=DeliveryState.SENDING,
            attempts=self.attempts + 1,
            claimed_until=now + ttl,
            updated_at=now,
        )

    def retry_or_die(
        self,
        now: datetime,
        error: str,
        retry_after: timedelta | None,
        rng: random.Random,
        base: timedelta = BACKOFF_BASE,
    ) -> Delivery:
        """Pending again after a back-off (never sooner than Retry-After), or dead when spent."""
        if self.attempts >= MAX_ATTEMPTS:
            return self.ended(DeliveryState.DEAD, now, error)
        wait = max(backoff(self.attempts, rng, base), retry_after or timedelta(0))
        return replace(
            self,
            state=DeliveryState.PENDING,
            next_at=now + wait,
            claimed_until=None,
            last_error=error,
            updated_at=now,
        )

    def ended(self, state: DeliveryState, now: datetime, error: str = "") -> Delivery:
        return replace(self, state=state, claimed_until=None, last_error=error, updated_at=now)


def message_id(event_id: str, conversation_id: str) -> str:
    digest = hashlib.sha256(f"{event_id}\n{conversation_id}".encode()).hexdigest()
    return f"alert-{digest[:32]}"


def backoff(attempts: int, rng: random.Random, base: timedelta = BACKOFF_BASE) -> timedelta:
    """Exponential with full jitter (AWS's "full jitter"): spreads a throttled burst out."""
    ceiling = min(BACKOFF_CAP, base * (2 ** max(attempts - 1, 0)))
    return ceiling * (0.5 + rng.random() / 2)


@dataclass(frozen=True)
class AlertPreferences:
    """One admin's choices; the defaults are every kind and the account's default threshold."""

    kinds: frozenset[EventKind] = field(default_factory=lambda: frozenset(EventKind))
    thresholds_minor: tuple[int, ...] = ()
    """Empty: the account's default threshold applies."""
    runway_days: tuple[int, ...] = ()
    """Runway thresholds in days; empty: `DEFAULT_RUNWAY_DAYS` applies."""

    def wants(self, event: OutboxEvent, *, at_default: bool) -> bool:
        """`at_default`: the event's threshold was the account's default when it was raised
        (`raised_at_default`), which is what an admin without thresholds of their own hears."""
        kind = event.kind
        if kind == EventKind.FUNDS_EXPIRED:
            kind = EventKind.FUNDS_EXPIRING  # one switch for both ends of a lot's life
        if kind not in CHOOSABLE_KINDS:
            return True  # money taken back is every admin's business: no switch for it
        if kind not in self.kinds:
            return False
        if event.kind == EventKind.RUNWAY_LOW:
            chosen = self.runway_days or (DEFAULT_RUNWAY_DAYS,)
            return event.data.get("threshold_days") in chosen
        if event.kind != EventKind.BALANCE_LOW:
            return True
        if self.thresholds_minor:
            return event.data.get("threshold_minor") in self.thresholds_minor
        return at_default


def raised_at_default(event: OutboxEvent, account: Account, chosen: Collection[int]) -> bool:
    """Whether a balance_low event's threshold was the account's default when it was raised.

    The event says so (`THRESHOLD_DEFAULT`): the default moves with every purchase, so today's
    account cannot tell. An event written before events said so is judged as well as can be: a
    threshold no admin chose (`chosen`) can only have been raised as the default, and today's
    default counts too.
    """
    flag = event.data.get(THRESHOLD_DEFAULT)
    if isinstance(flag, bool):
        return flag
    threshold = event.data.get("threshold_minor")
    return threshold in default_thresholds(account) or threshold not in chosen


# Alerts about a state that may change before they are sent; the others report what happened.
STATEFUL_KINDS = frozenset(
    {
        EventKind.BALANCE_LOW,
        EventKind.BALANCE_ZERO,
        EventKind.RECHARGE_FAILED,
        EventKind.AUTO_RECHARGE_DISABLED,
        EventKind.FUNDS_EXPIRING,
        EventKind.RUNWAY_LOW,
    }
)
# In a recharge_failed event's data: the crossing whose recharge failed.
DUE_KEY = "due_key"


def superseded(
    kind: EventKind,
    data: Mapping[str, object],
    account: Account,
    lots: Sequence[Lot] | None = None,
    outlook: Forecast | None = None,
) -> str:
    """Why an alert is no longer true of the account as it is now ("" while it is true).

    - low balance: the balance is back at or above the threshold it fell below;
    - zero balance: the balance is above zero again;
    - recharge failed: a later attempt recharged its crossing (auto-recharge still on, and the
      account no longer awaits that crossing's recharge);
    - auto-recharge disabled: it is on again;
    - funds expiring: the lot was used up (`lots`: the tenant's lots, read for this kind only);
    - runway low: the forecast (`outlook`, made for this kind only) no longer runs out within
      the threshold: funds came in, auto-recharge was switched on, spending slowed.

    Events written before their data said which crossing or lot they were about stay true.
    """
    balance = account.balance_minor
    if kind == EventKind.BALANCE_LOW:
        threshold = data.get("threshold_minor")
        if isinstance(threshold, int) and balance >= threshold:
            return f"balance {balance} at or above the threshold {threshold}"
    elif kind == EventKind.BALANCE_ZERO:
        if balance > 0:
            return f"balance {balance} above zero"
    elif kind == EventKind.RECHARGE_FAILED:
        due_key = data.get(DUE_KEY)
        if (
            isinstance(due_key, str)
            and due_key
            and account.auto_recharge.enabled
            and account.recharge.due_key != due_key
        ):
            return f"the recharge of {due_key} succeeded since"
    elif kind == EventKind.AUTO_RECHARGE_DISABLED:
        if account.auto_recharge.enabled:
            return "auto-recharge is on again"
    elif kind == EventKind.FUNDS_EXPIRING:
        lot_id = data.get("lot_id")
        if isinstance(lot_id, str) and lot_id and lots is not None:
            lot = next((lot for lot in lots if lot.lot_id == lot_id), None)
            if lot is None or lot.remaining_minor == 0:
                return f"lot {lot_id} used up"
    elif kind == EventKind.RUNWAY_LOW:
        threshold = data.get("threshold_days")
        if isinstance(threshold, int) and outlook is not None:
            days = outlook.days_left
            if days is None or days >= threshold:
                return f"the forecast ({outlook.cause}, {days} days) is not within {threshold}"
    return ""


# The kinds an admin switches on and off (funds_expired goes with funds_expiring).
CHOOSABLE_KINDS: tuple[EventKind, ...] = (
    EventKind.BALANCE_LOW,
    EventKind.BALANCE_ZERO,
    EventKind.RECHARGE_SUCCEEDED,
    EventKind.RECHARGE_FAILED,
    EventKind.AUTO_RECHARGE_DISABLED,
    EventKind.FUNDS_EXPIRING,
    EventKind.RUNWAY_LOW,
)


def default_thresholds(account: Account) -> tuple[int, ...]:
    """The auto-recharge trigger when it is on, else a fifth of the last purchase."""
    if account.auto_recharge.enabled and account.auto_recharge.trigger_minor > 0:
        return (account.auto_recharge.trigger_minor,)
    if account.last_purchase_minor > 0:
        return (account.last_purchase_minor * DEFAULT_THRESHOLD_PERCENT // 100,)
    return ()


def account_thresholds(preferences: list[AlertPreferences]) -> tuple[int, ...]:
    """Every threshold some admin asked for: the ledger raises balance_low at each of them."""
    chosen = {t for p in preferences for t in p.thresholds_minor}
    return tuple(sorted(chosen, reverse=True))


def account_runway_days(preferences: list[AlertPreferences]) -> tuple[int, ...]:
    """Every runway threshold some admin asked for: the forecast raises runway_low at each."""
    chosen = {t for p in preferences for t in p.runway_days}
    return tuple(sorted(chosen, reverse=True))


class DeliveryClaimed(RuntimeError):
    """Another dispatcher changed the delivery first; it owns this attempt."""


class AlertStore(Protocol):
    """Deliveries and admins' alert preferences, per tenant."""

    async def create_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Insert the deliveries not yet stored; the number inserted."""

    async def open_deliveries(self, tenant_id: str) -> list[Versioned[Delivery]]:
        """Deliveries still to send or in flight, oldest event first."""

    async def recent(self, tenant_id: str, limit: int) -> list[Delivery]:
        """The newest deliveries, newest first."""

    async def save(self, current: Versioned[Delivery], new: Delivery) -> Versioned[Delivery]:
        """Replace a delivery as read; raises DeliveryClaimed when it changed meanwhile."""

    async def prune(self, tenant_id: str, before: datetime) -> int:
        """Delete deliveries of alerts older than `before`; the number deleted."""

    async def preferences(self, tenant_id: str, user_id: str) -> AlertPreferences | None: ...

    async def all_preferences(self, tenant_id: str) -> dict[str, AlertPreferences]: ...

    async def save_preferences(
        self, tenant_id: str, user_id: str, preferences: AlertPreferences
    ) -> None: ...
