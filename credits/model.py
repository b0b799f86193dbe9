"""The credits domain's records. Plain data: no I/O, no SDK types.

Amounts are integer minor units of the account's currency throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from credits.payments import DeclineReason


class EntryKind(StrEnum):
    PURCHASE = "purchase"
    RECHARGE = "recharge"
    USAGE = "usage"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"
    REFUND = "refund"
    """A card payment refunded at the processor: what is left of its lot taken back."""
    DISPUTE = "dispute"
    """A card payment disputed by the cardholder's bank: likewise."""


class OrderStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class MethodKind(StrEnum):
    CARD = "card"
    """A card the processor keeps for the tenant, charged off session."""
    NEW_CARD = "new_card"
    """A card typed on the processor's hosted page for this order."""
    AGREEMENT = "agreement"


@dataclass(frozen=True)
class SavedCard:
    """A card the processor keeps: what an admin may see of it, and the processor's reference."""

    id: str
    token: str
    """The processor's reference to the card (a Stripe PaymentMethod id): useless without the
    processor's secret key, and never a card number."""
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    saved: bool = True
    """False for a card used once on the hosted page: kept so its receipt can name it, never
    offered again."""
    failure: str = ""
    """Why the last off-session payment with it failed (a `DeclineReason` value such as
    `declined`), until a payment with it succeeds: the forms show it as failing."""
    failed_on: str = ""
    """The day (ISO 8601) of that failure."""

    def expired(self, today: date) -> bool:
        """Past the last day of its expiry month, or refused by its bank as expired."""
        past = (self.expiry_year, self.expiry_month) < (today.year, today.month)
        return past or self.failure == DeclineReason.EXPIRED_CARD.value

    def offered(self, today: date) -> bool:
        """Whether the forms offer it: a saved card that has not expired."""
        return self.saved and not self.expired(today)


@dataclass(frozen=True)
class AutoRecharge:
    enabled: bool = False
    recharge_with_minor: int = 0
    trigger_minor: int = 0
    method_id: str = ""


@dataclass(frozen=True)
class RechargeState:
    """Where auto-recharge stands: a crossing waiting for its recharge, and failed attempts."""

    due_key: str = ""
    """Key of the crossing that awaits a recharge ("" when none): set in the same transaction
    as the debit that crossed the trigger, cleared by the booking of its recharge."""
    attempts: int = 0
    """Failures in a row since the last success or clearing; drives back-off and disabling."""
    serial: int = 0
    """Recharge orders for this crossing that have failed, never reset: the next order's key
    ends in serial + 1, so clearing failures can never reuse the key of a failed order."""
    next_attempt_at: str = ""
    """ISO 8601 time before which a failed recharge is not tried again."""
    last_failure: str = ""


@dataclass(frozen=True)
class RunwayWatch:
    """Where the runway forecast alert stands (credits/runway.py): changed under the account's
    ETag, with the alerts it raises in the same transaction."""

    crossed: tuple[int, ...] = ()
    """Runway thresholds (days) the forecast is below and whose alert was raised: no new alert
    for them until the forecast goes back above them (which re-arms them)."""
    serial: int = 0
    """Evaluations that raised alerts, never reset: the next alert's id ends in serial + 1."""
    inputs: str = ""
    """What the last evaluation was based on (the ledger position and the settings that shape
    the forecast): an account whose inputs differ has changed since, and is evaluated again."""
    next_check: str = ""
    """The day (ISO 8601) the forecast may cross a threshold by the passing of time alone."""


@dataclass(frozen=True)
class Account:
    tenant_id: str
    currency: str
    balance_minor: int = 0
    ledger_seq: int = 0
    """Number of ledger entries so far; the next entry's sequence number is this plus one."""
    cards: tuple[SavedCard, ...] = ()
    agreements: tuple[str, ...] = ()
    """Enterprise Agreement numbers the tenant may invoice."""
    default_method_id: str = ""
    auto_recharge: AutoRecharge = field(default_factory=AutoRecharge)
    recharge: RechargeState = field(default_factory=RechargeState)
    low_balance_thresholds: tuple[int, ...] = ()
    """Every low-balance threshold some admin chose, in minor units (the defaults apply too)."""
    runway_thresholds: tuple[int, ...] = ()
    """Every runway threshold some admin chose, in days (the default applies too)."""
    runway: RunwayWatch = field(default_factory=RunwayWatch)
    last_purchase_minor: int = 0
    """The amount of the latest purchase or recharge: the default threshold is a share of it."""
    payment_customer: str = ""
    """The tenant's customer at the card processor (a Stripe Customer id), once made."""
    owed_minor: int = 0
    """Refunded or disputed card payments whose funds had already been spent: what the tenant
    owes. Not part of the balance (which never goes below zero)."""

    def card(self, card_id: str) -> SavedCard | None:
        return next((c for c in self.cards if c.id == card_id), None)

    def offered_card(self, card_id: str, today: date) -> SavedCard | None:
        """A card the forms may offer and accept: saved, and not expired."""
        card = self.card(card_id)
        return card if card is not None and card.offered(today) else None

    def with_balance(self, balance_minor: int, ledger_seq: int) -> Account:
        return replace(self, balance_minor=balance_minor, ledger_seq=ledger_seq)


@dataclass(frozen=True)
class Lot:
    """Funds from one purchase or recharge; drawn earliest-expiry first, forfeited at expiry."""

    lot_id: str
    amount_minor: int
    remaining_minor: int
    purchased_at: datetime
    expires_at: datetime
    order_key: str = ""


@dataclass(frozen=True)
class LedgerEntry:
    """Immutable; a correction is a new entry. One entry per lot a change touches."""

    seq: int
    kind: EntryKind
    amount_minor: int
    """Signed: credits positive, debits negative."""
    balance_after_minor: int
    lot_id: str
    actor: str
    reference: str
    at: datetime
    calls: int = 0
    """Usage: how many calls this line draws for (a batch of calls is one line per lot)."""
    first_call: datetime | None = None
    """Usage: when the earliest of those calls started."""
    last_call: datetime | None = None
    """Usage: when the latest of those calls started."""


@dataclass(frozen=True)
class PaymentMethod:
    """How an order is paid: a saved card, a new card on the processor's hosted page, or an
    agreement number with an optional PO."""

    kind: MethodKind
    card_id: str = ""
    """A saved card's id; for a new card, set once paid to the card that was used."""
    agreement_number: str = ""
    purchase_order: str = ""
    save_card: bool = False
    """A new card: keep it at the processor for later payments (auto-recharge)."""


@dataclass(frozen=True)
class Order:
    tenant_id: str
    key: str
    """The idempotency key: the nonce of the form that was confirmed."""
    amount_minor: int
    currency: str
    method: PaymentMethod
    kind: EntryKind
    actor: str
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    gateway_reference: str = ""
    """The payment at the processor (a PaymentIntent id), or the invoice of an agreement."""
    failure_reason: str = ""
    lot_id: str = ""
    checkout_reference: str = ""
    """The processor's hosted page made for this order (a Checkout Session id), if any."""
    refunded_minor: int = 0
    """How much of it the processor has refunded (events carry the running total)."""
    disputed_minor: int = 0
    """How much of it the cardholder's bank has disputed."""


class EventKind(StrEnum):
    BALANCE_LOW = "balance_low"
    BALANCE_ZERO = "balance_zero"
    RECHARGE_SUCCEEDED = "recharge_succeeded"
    RECHARGE_FAILED = "recharge_failed"
    AUTO_RECHARGE_DISABLED = "auto_recharge_disabled"
    FUNDS_EXPIRING = "funds_expiring"
    FUNDS_EXPIRED = "funds_expired"
    PAYMENT_REVERSED = "payment_reversed"
    """A card payment was refunded or disputed: its funds were taken back."""
    RUNWAY_LOW = "runway_low"
    """The forecast says the funds run out in fewer days than a runway threshold."""


@dataclass(frozen=True)
class OutboxEvent:
    """An alert to deliver, written in the same transaction as the change that caused it.

    The id is deterministic (kind and the ledger position or lot that caused it), so the same
    event can never be written twice: the insert fails instead.
    """

    event_id: str
    kind: EventKind
    at: datetime
    data: dict[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True)
class UsageMarker:
    """A usage row charged before charged UsageIds were packed in day buckets: one entity per
    call (`usage-<UsageId>`). Only read now, by the migration that moves them into buckets
    (credits/usage_migration.py)."""

    usage_id: str
    amount_minor: int
    charged_minor: int
    """Less than the amount when the balance ran out: the rest is uncovered, never negative."""
    source: str
    at: datetime
    started_at: datetime | None = None
    """When the call started (the spend history and the funding recommendation count by it)."""
