"""The embedded sandbox payment gateway: a card processor's test mode, inside the product.

It implements `credits.payments.PaymentGateway` the way a real processor's test mode behaves:
cards are validated and tokenised, fixed test card numbers decide what a charge does (succeed,
decline for a stated reason, or succeed and then not answer in time), and every charge is
idempotent per key, Stripe-style. The test card numbers are listed in docs/sandbox-cards.md.

It does no I/O of its own: it persists through `SandboxRecords`, a port small enough for an
Azure Table (storage/sandbox_records.py) or a dict in a unit test. Only the token's *behaviour*
(which test card it was), brand and last four digits are kept; the card number and the CVC are
never stored and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from credits.payments import (
    CardDetails,
    CardToken,
    ChargeResult,
    DeclineReason,
    GatewayTimeout,
    IdempotencyConflict,
    InvalidCard,
    PaymentDeclined,
    PaymentSource,
)

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "tok_sandbox_"
CHARGE_PREFIX = "ch_sandbox_"
INVOICE_PREFIX = "inv_sandbox_"
TOKEN_KEY = "token:"


def token_key(token: str) -> str:
    """Where a token's record lives: under its SHA-256, so no request URL or storage log line
    ever carries a usable token."""
    return TOKEN_KEY + hashlib.sha256(token.encode("utf-8")).hexdigest()


CHARGE_KEY = "charge:"

DEFAULT_TIMEOUT = 10.0
MAX_HOLDER_NAME = 100
MAX_AGREEMENT = 64
MAX_PURCHASE_ORDER = 64
# Processors refuse expiry dates absurdly far ahead; 50 years is well past any real card.
MAX_YEARS_AHEAD = 50

_DIGITS = re.compile(r"[0-9]{12,19}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class SandboxRecords(Protocol):
    """Where the sandbox keeps its tokens and charges, per tenant, as small JSON-able dicts."""

    async def get(self, tenant_id: str, key: str) -> dict | None:
        """The record under key, or None."""

    async def insert(self, tenant_id: str, key: str, record: dict) -> bool:
        """Store a new record; False when the key exists already (the duplicate detector)."""

    async def list(self, tenant_id: str, prefix: str) -> list[dict]:
        """Every record of the tenant whose key starts with prefix (tests count charges)."""


class Behaviour(StrEnum):
    """What a tokenised test card does when charged."""

    SUCCEED = "succeed"
    EXPIRED_CARD = "expired_card"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PROCESSING_ERROR = "processing_error"
    # The processor charges the card, then its answer never reaches the caller in time.
    SUCCEED_THEN_HANG = "succeed_then_hang"


# Stripe-style test numbers; any other valid card succeeds. Documented in docs/sandbox-cards.md.
TEST_CARDS: dict[str, Behaviour] = {
    "4242424242424242": Behaviour.SUCCEED,
    "4000000000000069": Behaviour.EXPIRED_CARD,
    "4000000000000002": Behaviour.DECLINED,
    "4000000000009995": Behaviour.INSUFFICIENT_FUNDS,
    "4000000000000119": Behaviour.PROCESSING_ERROR,
    "4000000000000259": Behaviour.SUCCEED_THEN_HANG,
}

_DECLINES: dict[Behaviour, DeclineReason] = {
    Behaviour.EXPIRED_CARD: DeclineReason.EXPIRED_CARD,
    Behaviour.DECLINED: DeclineReason.DECLINED,
    Behaviour.INSUFFICIENT_FUNDS: DeclineReason.INSUFFICIENT_FUNDS,
    Behaviour.PROCESSING_ERROR: DeclineReason.PROCESSING_ERROR,
}


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every card number carries (ASCII digits only)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def brand_of(digits: str) -> str:
    """The card network from the issuer identification number (the leading digits)."""
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    return "card"


def redact_token(token: str) -> str:
    """A token as it may appear in a log line: enough to tell two apart, not enough to use."""
    return TOKEN_PREFIX + "…" + token[-4:]


class SandboxGateway:
    """`PaymentGateway` in test mode. Every call is bounded by `timeout` seconds."""

    def __init__(
        self,
        records: SandboxRecords,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._records = records
        self._timeout = timeout
        self._now = now

    # --- tokenising ----------------------------------------------------------------------

    async def tokenize_card(self, tenant_id: str, card: CardDetails) -> CardToken:
        """Validate and tokenise a card; raises InvalidCard naming the field."""
        # Validation first and outside the timeout: it is local and must always answer.
        digits, brand, month, year = self._validate(card)
        behaviour = TEST_CARDS.get(digits, Behaviour.SUCCEED)
        last4 = digits[-4:]
        record = {"kind": "token", "behaviour": behaviour.value, "last4": last4, "brand": brand}
        try:
            async with asyncio.timeout(self._timeout):
                # A collision of 128 random bits does not happen; the loop only keeps the
                # insert honest as the one place a token is claimed.
                while True:
                    token = TOKEN_PREFIX + secrets.token_hex(16)
                    if await self._records.insert(tenant_id, token_key(token), record):
                        break
        except TimeoutError as error:
            logger.warning("sandbox tokenise timed out for tenant %s", tenant_id)
            raise GatewayTimeout("the sandbox did not answer in time") from error
        logger.info(
            "sandbox tokenised a %s card ending %s for tenant %s as %s",
            brand,
            last4,
            tenant_id,
            redact_token(token),
        )
        return CardToken(
            token=token, brand=brand, last4=last4, expiry_month=month, expiry_year=year
        )

    def _validate(self, card: CardDetails) -> tuple[str, str, int, int]:
        digits = card.number.replace(" ", "").replace("-", "")
        # fullmatch on [0-9] rather than str.isdigit: that accepts "²" and non-ASCII digits.
        if not _DIGITS.fullmatch(digits) or not luhn_valid(digits):
            raise InvalidCard("number")
        brand = brand_of(digits)

        month, year = card.expiry_month, card.expiry_year
        if 0 <= year < 100:  # processors take "28" as 2028
            year += 2000
        today = self._now()
        if not 1 <= month <= 12 or year > today.year + MAX_YEARS_AHEAD:
            raise InvalidCard("expiry")
        # A card is good through the last day of its expiry month.
        if (year, month) < (today.year, today.month):
            raise InvalidCard("expiry", DeclineReason.EXPIRED_CARD)

        cvc_lengths = {"amex": (4,), "visa": (3,), "mastercard": (3,)}.get(brand, (3, 4))
        if not (card.cvc.isascii() and card.cvc.isdigit() and len(card.cvc) in cvc_lengths):
            raise InvalidCard("cvc")

        name = card.holder_name.strip()
        if not name or len(name) > MAX_HOLDER_NAME or not name.isprintable():
            raise InvalidCard("name")
        return digits, brand, month, year

    # --- charging ------------------------------------------------------------------------

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

        Raises PaymentDeclined, GatewayTimeout or IdempotencyConflict; ValueError for a
        request no processor would accept (nothing is recorded for it).
        """
        request = _request(amount_minor, currency, source, description)
        if not idempotency_key:
            raise ValueError("an idempotency key is required")
        try:
            async with asyncio.timeout(self._timeout):
                return await self._charge(tenant_id, idempotency_key, request, source)
        except TimeoutError as error:
            # The charge may have been recorded: the caller must replay with the same key.
            logger.warning(
                "sandbox charge %s for tenant %s timed out after %ss",
                idempotency_key,
                tenant_id,
                self._timeout,
            )
            raise GatewayTimeout("the sandbox did not answer in time") from error

    async def _charge(
        self, tenant_id: str, key: str, request: dict[str, Any], source: PaymentSource
    ) -> ChargeResult:
        # Decide, then insert; the insert is the duplicate detector. A new charge costs two
        # round trips (token, insert); only a replay pays the third (reading the winner back).
        behaviour, outcome = await self._decide(tenant_id, source)
        record = {
            "kind": "charge",
            "request": request,
            "outcome": outcome,
            "created_at": self._now().isoformat(),
        }
        if not await self._records.insert(tenant_id, CHARGE_KEY + key, record):
            existing = await self._records.get(tenant_id, CHARGE_KEY + key)
            if existing is None:
                # Records are never deleted; answer as a processor would that lost its reply.
                logger.error(
                    "sandbox charge %s for tenant %s exists but cannot be read", key, tenant_id
                )
                raise GatewayTimeout("the sandbox lost the charge's answer; replay it")
            logger.info("sandbox charge %s for tenant %s replayed", key, tenant_id)
            return _answer(existing, request, key)

        logger.info(
            "sandbox charge %s for tenant %s: %s %s %s",
            key,
            tenant_id,
            request["amount_minor"],
            request["currency"],
            outcome.get("reason") or outcome["status"],
        )
        if behaviour is Behaviour.SUCCEED_THEN_HANG:
            # Charged and recorded, but the answer arrives after the caller gave up; only a
            # replay with the same key learns the result.
            await asyncio.sleep(self._timeout * 3)
        return _answer(record, request, key)

    async def _decide(
        self, tenant_id: str, source: PaymentSource
    ) -> tuple[Behaviour | None, dict[str, str]]:
        """What the processor does with this source: the behaviour and the outcome to record."""
        if source.agreement_number:
            # The domain checks the agreement is the tenant's; the sandbox only its shape.
            number = source.agreement_number
            if len(number) > MAX_AGREEMENT or not number.isprintable() or not number.strip():
                return None, _declined(DeclineReason.UNKNOWN_AGREEMENT)
            return None, {
                "status": "succeeded",
                "gateway_reference": INVOICE_PREFIX + uuid.uuid4().hex,
            }

        # Tokens live in their tenant's partition: another tenant's token is simply unknown.
        token = await self._records.get(tenant_id, token_key(source.card_token))
        if token is None or token.get("kind") != "token":
            logger.info(
                "sandbox charge with unknown token %s for tenant %s",
                redact_token(source.card_token),
                tenant_id,
            )
            return None, _declined(DeclineReason.INVALID_CARD)
        try:
            behaviour = Behaviour(token["behaviour"])
        except (KeyError, ValueError):
            logger.error("sandbox token %s has no known behaviour", redact_token(source.card_token))
            return None, _declined(DeclineReason.PROCESSING_ERROR)
        reason = _DECLINES.get(behaviour)
        if reason is not None:
            return behaviour, _declined(reason)
        return behaviour, {
            "status": "succeeded",
            "gateway_reference": CHARGE_PREFIX + uuid.uuid4().hex,
        }


def _request(amount_minor: int, currency: str, source: PaymentSource, description: str) -> dict:
    """The parameters a replay must repeat exactly; refuses what no processor would accept."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError("amount_minor must be a positive integer")
    if not _CURRENCY.fullmatch(currency):
        raise ValueError("currency must be an upper-case ISO 4217 code")
    po = source.purchase_order
    if len(po) > MAX_PURCHASE_ORDER or not po.isprintable():
        raise ValueError("purchase order must be printable and at most 64 characters")
    return {
        "amount_minor": amount_minor,
        "currency": currency,
        "card_token": source.card_token,
        "agreement_number": source.agreement_number,
        "purchase_order": po,
        # A hash: a replay must repeat the description, but the record need not hold it.
        "description_sha256": hashlib.sha256(description.encode("utf-8")).hexdigest(),
    }


def _declined(reason: DeclineReason) -> dict[str, str]:
    return {"status": "declined", "reason": reason.value}


def _answer(record: dict, request: dict[str, Any], key: str) -> ChargeResult:
    """The result recorded for a key, provided it is asked for with the same parameters."""
    if record.get("request") != request:
        raise IdempotencyConflict(f"idempotency key {key} was used with other parameters")
    outcome = record["outcome"]
    if outcome["status"] == "declined":
        raise PaymentDeclined(DeclineReason(outcome["reason"]))
    return ChargeResult(
        gateway_reference=outcome["gateway_reference"],
        amount_minor=request["amount_minor"],
        currency=request["currency"],
    )
