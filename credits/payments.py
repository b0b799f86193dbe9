"""The payment-gateway port: what the credits domain needs from a card processor.

A real processor (Stripe, Adyen, …) and the embedded sandbox both implement `PaymentGateway`.
Every charge carries the order's idempotency key: the same key with the same parameters returns
the first result again, the same key with other parameters is an error, exactly as Stripe's
`Idempotency-Key` works. Card numbers and CVCs go in through `tokenize_card` and never come out.
"""

from __future__ import annotations

from dataclasses import dataclass
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


class PaymentError(Exception):
    """Base of the gateway's errors."""


class PaymentDeclined(PaymentError):
    """The processor answered: no. Final for this key; retrying with the same key repeats it."""

    def __init__(self, reason: DeclineReason, message: str = "") -> None:
        super().__init__(message or reason.value)
        self.reason = reason


class GatewayTimeout(PaymentError):
    """No answer in time: the charge may or may not have happened. Replay with the same key."""


class IdempotencyConflict(PaymentError):
    """The key was used before with other parameters (a bug or a forged request)."""


class InvalidCard(PaymentError):
    """Card details that cannot be tokenised (Luhn, expiry, CVC); says which field."""

    def __init__(self, field: str, reason: DeclineReason = DeclineReason.INVALID_CARD) -> None:
        super().__init__(f"invalid card {field}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class CardDetails:
    """What an admin typed. Lives only for the tokenise call: never stored, never logged."""

    number: str
    expiry_month: int
    expiry_year: int
    cvc: str
    holder_name: str

    def __repr__(self) -> str:
        return "CardDetails(<redacted>)"


@dataclass(frozen=True)
class CardToken:
    """What the account keeps about a card: the processor's token and what an admin may see."""

    token: str
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int


@dataclass(frozen=True)
class PaymentSource:
    """A tokenised card, or an Enterprise Agreement number (invoiced) with an optional PO."""

    card_token: str = ""
    agreement_number: str = ""
    purchase_order: str = ""

    def __post_init__(self) -> None:
        if bool(self.card_token) == bool(self.agreement_number):
            raise ValueError("a payment source is a card token or an agreement number")


@dataclass(frozen=True)
class ChargeResult:
    gateway_reference: str
    amount_minor: int
    currency: str


class PaymentGateway(Protocol):
    async def tokenize_card(self, tenant_id: str, card: CardDetails) -> CardToken:
        """Validate and tokenise a card; raises InvalidCard naming the field."""

    async def charge(
        self,
        *,
        tenant_id: str,
        idempotency_key: str,
        amount_minor: int,
        currency: str,
        source: PaymentSource,
        description: str,
    ) -> ChargeResult:
        """Charge a card token or invoice an agreement, exactly once per idempotency key.

        Raises PaymentDeclined, GatewayTimeout or IdempotencyConflict.
        """
