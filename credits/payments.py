"""The payment-gateway port: what the credits domain needs from a card processor.

A real processor (Stripe, in `payments/`) and the embedded sandbox (`storage/`) both implement
`PaymentGateway`. Card numbers never reach the bot: a card is typed on the processor's hosted
page, opened for an order (payment) or for a setup (a card saved without a charge), and the bot
only ever holds the processor's references to what was done there.

Every call that can move money carries the order's idempotency key: the same key with the same
parameters returns the first result again, the same key with other parameters is an error,
exactly as Stripe's `Idempotency-Key` works. The processor tells what happened on its page by
events (webhooks), which `event_from` turns into `PaymentEvent`s; events may be lost, late,
repeated or out of order, so `look_up` asks where an order stands whenever that matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class DeclineReason(StrEnum):
    """Why a payment did not go through, in words the bot can explain to an admin."""

    EXPIRED_CARD = "expired_card"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PROCESSING_ERROR = "processing_error"
    INVALID_CARD = "invalid_card"
    UNKNOWN_AGREEMENT = "unknown_agreement"
    AUTHENTICATION_REQUIRED = "authentication_required"
    """The bank wants the cardholder to confirm the payment (3D Secure): off session nobody
    can, so the cardholder is brought to the processor's hosted page."""
    CHECKOUT_EXPIRED = "checkout_expired"
    """The hosted page was not completed before it expired: nothing was charged."""


class PaymentError(Exception):
    """Base of the gateway's errors."""


class PaymentDeclined(PaymentError):
    """The processor answered: no. Final for this key; retrying with the same key repeats it."""

    def __init__(self, reason: DeclineReason, message: str = "", reference: str = "") -> None:
        super().__init__(message or reason.value)
        self.reason = reason
        self.reference = reference
        """The processor's record of the declined attempt (a PaymentIntent), when it made one."""


class GatewayTimeout(PaymentError):
    """No answer, or no usable one, in time: the call may or may not have happened. Ask again
    with the same key (or look the payment up); never with a new key."""


class GatewayUnavailable(PaymentError):
    """The processor refused the request itself (a bad key, a bug): nothing happened, and the
    same request will not succeed until an operator acts. Logged; the order stays pending."""


class IdempotencyConflict(PaymentError):
    """The key was used before with other parameters (a bug or a forged request)."""


class InvalidEvent(PaymentError):
    """A webhook whose signature does not verify (forged, stale, or for another secret)."""


class CheckoutMode(StrEnum):
    PAYMENT = "payment"
    """Pay an order on the hosted page (and keep the card when asked)."""
    SETUP = "setup"
    """Save a card on the hosted page without charging it."""


class PaymentState(StrEnum):
    OPEN = "open"
    """A hosted page waiting for the cardholder."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    """A hosted page that was never completed; nothing was charged."""
    UNKNOWN = "unknown"
    """The processor has no record of it: the request never reached it."""


@dataclass(frozen=True)
class CardOnFile:
    """A card the processor keeps for the tenant: its reference and what an admin may see."""

    reference: str
    """The processor's id of the saved card (a Stripe PaymentMethod `pm_…`)."""
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int


@dataclass(frozen=True)
class ReturnPages:
    """Where the hosted page sends the cardholder back to: pages the bot serves."""

    success: str
    cancel: str

    def urls(self, locale: str, mode: CheckoutMode) -> tuple[str, str]:
        query = f"?lang={locale}&mode={mode.value}"
        return self.success + query, self.cancel + query


@dataclass(frozen=True)
class CheckoutRequest:
    tenant_id: str
    customer: str
    """The tenant's customer at the processor (see `PaymentGateway.create_customer`)."""
    key: str
    """The order's (or the setup's) idempotency key: one hosted page per key."""
    mode: CheckoutMode
    locale: str
    """The admin's language (a BCP 47 tag such as `pt-BR`): the page speaks it."""
    expires_at: datetime
    amount_minor: int = 0
    currency: str = ""
    save_card: bool = False
    """Payment mode: keep the card for later (off-session) payments."""
    description: str = ""


@dataclass(frozen=True)
class Checkout:
    reference: str
    """The processor's id of the hosted page (a Checkout Session `cs_…`)."""
    url: str
    """What the admin opens (the card's `Action.OpenUrl`)."""


@dataclass(frozen=True)
class ChargeRequest:
    tenant_id: str
    customer: str
    card: str
    """The saved card's reference (`CardOnFile.reference`)."""
    key: str
    amount_minor: int
    currency: str
    description: str = ""


@dataclass(frozen=True)
class Payment:
    """Where a payment stands at the processor."""

    state: PaymentState
    reference: str = ""
    """The payment's id at the processor (a PaymentIntent `pi_…`), when there is one."""
    amount_minor: int = 0
    currency: str = ""
    failure: DeclineReason | None = None
    card: CardOnFile | None = None
    """The card paid with, when the processor kept it for the customer."""
    url: str = ""
    """An open hosted page's address."""


@dataclass(frozen=True)
class LookUp:
    tenant_id: str
    key: str
    checkout: str = ""
    """The hosted page made for the order, if one was: it is asked first."""
    payment: str = ""
    """The payment's reference, when known."""


class PaymentEventKind(StrEnum):
    PAID = "paid"
    """A hosted page was paid (checkout.session.completed) or a payment succeeded
    (payment_intent.succeeded)."""
    CHECKOUT_EXPIRED = "checkout_expired"
    PAYMENT_FAILED = "payment_failed"
    CARD_SAVED = "card_saved"
    """A card was saved on a setup page (setup_intent.succeeded, or its session completed)."""
    REFUNDED = "refunded"
    DISPUTED = "disputed"


@dataclass(frozen=True)
class PaymentEvent:
    """A verified processor event, in the domain's words. Keyed on the order (or setup) it is
    about, never on its arrival: the same event may come twice, late or out of order."""

    kind: PaymentEventKind
    event_id: str
    tenant_id: str
    key: str
    """The order's (or the setup's) idempotency key, from the processor's metadata."""
    customer: str = ""
    amount_minor: int = 0
    """PAID: the amount paid; REFUNDED: the total refunded so far; DISPUTED: the amount disputed."""
    currency: str = ""
    reference: str = ""
    """The payment (PaymentIntent) it is about."""
    checkout: str = ""
    """The hosted page it is about (Checkout Session), when it came from one."""
    card: CardOnFile | None = None
    failure: DeclineReason | None = None


class PaymentGateway(Protocol):
    async def create_customer(self, tenant_id: str) -> str:
        """The tenant's customer at the processor (its tenant id in the metadata): made once,
        the same one again on a repeat."""

    async def start_checkout(self, request: CheckoutRequest) -> Checkout:
        """A hosted page for an order or a setup; the same key gives the same page."""

    async def charge_saved_card(self, request: ChargeRequest) -> Payment:
        """Charge a saved card off session, exactly once per key.

        Raises PaymentDeclined, GatewayTimeout, GatewayUnavailable or IdempotencyConflict.
        """

    async def look_up(self, request: LookUp) -> Payment:
        """Where an order stands at the processor: by its hosted page when it has one, else
        by its payment or its key. Never charges. Raises GatewayTimeout."""

    async def saved_cards(self, tenant_id: str, customer: str) -> list[CardOnFile]:
        """The cards the processor keeps for the tenant's customer."""

    async def event_from(self, payload: bytes, signature: str) -> PaymentEvent | None:
        """A webhook as a domain event, verified on its raw bytes; None for events the product
        does not use. Raises InvalidEvent."""
