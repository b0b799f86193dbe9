"""The embedded sandbox payment gateway: a card processor's test mode, inside the product.

It implements `credits.payments.PaymentGateway` the way Stripe's test mode behaves, hosted page
included (served by the bot on loopback, `payments/sandbox_page.py`): a hosted page per order
or setup key, where the test card numbers of docs/sandbox-cards.md decide what happens; cards
saved for the tenant; off-session charges of saved cards, idempotent per key, Stripe-style; and
look-ups of an order by its page or its key. Completing the page produces the same domain event
a Stripe webhook does, and the page hands it to the same booking path.

It does no I/O of its own: it persists through `SandboxRecords`, a port small enough for an
Azure Table (storage/sandbox_records.py, so two instances share the sandbox) or a dict in a unit
test. Records per tenant:

    session:<id>     a hosted page: what it is for (mode, amount, key), where it returns to
    paid:<id>        its completion, inserted once: one payment (or saved card) per page
    card:<ref>       a saved card: which test card it was, brand, last four digits, expiry
    charge:<key>     an off-session charge and its outcome, for replays with the same key

The card number and the CVC typed on the page are validated and thrown away: they are never
stored and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

from azure.core.exceptions import AzureError

from credits.payments import (
    CardOnFile,
    ChargeRequest,
    Checkout,
    CheckoutMode,
    CheckoutRequest,
    DeclineReason,
    GatewayTimeout,
    IdempotencyConflict,
    InvalidEvent,
    LookUp,
    Payment,
    PaymentDeclined,
    PaymentEvent,
    PaymentEventKind,
    PaymentState,
    ReturnPages,
)

logger = logging.getLogger(__name__)

SESSION_PREFIX = "cs_sandbox_"
PAYMENT_PREFIX = "pi_sandbox_"
CARD_PREFIX = "pm_sandbox_"
CUSTOMER_PREFIX = "cus_sandbox_"
SESSION = "session:"
PAID = "paid:"
CARD = "card:"
CHARGE = "charge:"

DEFAULT_TIMEOUT = 10.0
MAX_HOLDER_NAME = 100
# Processors refuse expiry dates absurdly far ahead; 50 years is well past any real card.
MAX_YEARS_AHEAD = 50

_DIGITS = re.compile(r"[0-9]{12,19}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class SandboxRecords(Protocol):
    """Where the sandbox keeps its records, per tenant, as small JSON-able dicts."""

    async def get(self, tenant_id: str, key: str) -> dict | None:
        """The record under key, or None."""

    async def insert(self, tenant_id: str, key: str, record: dict) -> bool:
        """Store a new record; False when the key exists already (the duplicate detector)."""

    async def list(self, tenant_id: str, prefix: str) -> list[dict]:
        """Every record of the tenant whose key starts with prefix."""


class Behaviour(StrEnum):
    """What a test card does."""

    SUCCEED = "succeed"
    EXPIRED_CARD = "expired_card"
    DECLINED = "declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PROCESSING_ERROR = "processing_error"
    AUTHENTICATE = "authenticate"
    """The bank always asks for the cardholder (3D Secure): passes on the hosted page, where
    the cardholder is; off session it is declined with `authentication_required`."""
    SUCCEED_THEN_HANG = "succeed_then_hang"
    """Off session: charged, then the answer comes after the caller gave up. On the hosted
    page: paid, then the page's event is lost (the recovery job finds the payment)."""


# Stripe's test numbers; any other valid card succeeds. Documented in docs/sandbox-cards.md.
TEST_CARDS: dict[str, Behaviour] = {
    "4242424242424242": Behaviour.SUCCEED,
    "4000000000000069": Behaviour.EXPIRED_CARD,
    "4000000000000002": Behaviour.DECLINED,
    "4000000000009995": Behaviour.INSUFFICIENT_FUNDS,
    "4000000000000119": Behaviour.PROCESSING_ERROR,
    "4000002760003184": Behaviour.AUTHENTICATE,
    "4000000000000259": Behaviour.SUCCEED_THEN_HANG,
}

_DECLINES: dict[Behaviour, DeclineReason] = {
    Behaviour.EXPIRED_CARD: DeclineReason.EXPIRED_CARD,
    Behaviour.DECLINED: DeclineReason.DECLINED,
    Behaviour.INSUFFICIENT_FUNDS: DeclineReason.INSUFFICIENT_FUNDS,
    Behaviour.PROCESSING_ERROR: DeclineReason.PROCESSING_ERROR,
}
# Funds matter to a charge, not to saving a card (as at Stripe): such a card saves fine and
# fails later, off session.
_SAVES_BUT_FAILS = {Behaviour.INSUFFICIENT_FUNDS}


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


def session_id_of(tenant_id: str, key: str) -> str:
    """A page's id: one per tenant and key (the same key opens the same page), and as hard to
    guess as the key, a random nonce."""
    digest = hashlib.sha256(f"{tenant_id}\n{key}".encode()).hexdigest()
    return SESSION_PREFIX + digest[:40]


@dataclass(frozen=True)
class TypedCard:
    """What the cardholder typed on the page. Lives only for one submit: never stored, never
    logged."""

    number: str
    expiry_month: int
    expiry_year: int
    cvc: str
    holder_name: str

    def __repr__(self) -> str:
        return "TypedCard(<redacted>)"


@dataclass(frozen=True)
class SandboxPage:
    """What the hosted page shows."""

    tenant_id: str
    session_id: str
    mode: CheckoutMode
    amount_minor: int
    currency: str
    locale: str
    state: PaymentState
    """OPEN, SUCCEEDED (paid or card saved) or EXPIRED."""
    success_url: str
    cancel_url: str


@dataclass(frozen=True)
class PageResult:
    """What submitting the page did."""

    page: SandboxPage
    problem: str = ""
    """"" when it went through; else a typed field that is wrong (`number`, `expiry`, `cvc`,
    `name`), a decline reason, or `closed` (paid, or expired, already)."""
    event: PaymentEvent | None = None
    """The event to apply, as a webhook would bring it (None when it is "lost")."""


class SandboxGateway:
    """`PaymentGateway` in test mode. Every call is bounded by `timeout` seconds."""

    def __init__(
        self,
        records: SandboxRecords,
        *,
        page_url: str = "http://127.0.0.1:3978/sandbox/pay",
        returns: ReturnPages | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`page_url` is where the bot serves the hosted page; `returns`, its pages for the
        cardholder coming back."""
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._records = records
        self._page_url = page_url.rstrip("/")
        self._returns = returns or ReturnPages(
            "http://127.0.0.1:3978/payments/done", "http://127.0.0.1:3978/payments/cancelled"
        )
        self._timeout = timeout
        self._now = now

    # --- customers and saved cards --------------------------------------------------------

    async def create_customer(self, tenant_id: str) -> str:
        # The sandbox keeps everything in the tenant's partition: the customer is a name.
        return CUSTOMER_PREFIX + hashlib.sha256(tenant_id.encode()).hexdigest()[:14]

    async def saved_cards(self, tenant_id: str, customer: str) -> list[CardOnFile]:
        async with self._bounded("list cards", tenant_id):
            records = await self._records.list(tenant_id, CARD)
        return [_card_on_file(record) for record in records if record.get("kind") == "card"]

    async def seed_card(
        self, tenant_id: str, number: str, *, expiry_month: int = 12, expiry_year: int = 0
    ) -> CardOnFile:
        """Save a test card for a tenant directly, as if typed on a setup page (the local
        demo and tests). The number decides the card's behaviour and is not kept."""
        digits = number.replace(" ", "").replace("-", "")
        if not _DIGITS.fullmatch(digits) or not luhn_valid(digits):
            raise ValueError("not a valid card number")
        year = expiry_year or self._now().year + 3
        return await self._save_card(
            tenant_id, TEST_CARDS.get(digits, Behaviour.SUCCEED), digits, expiry_month, year
        )

    async def _save_card(
        self, tenant_id: str, behaviour: Behaviour, digits: str, month: int, year: int
    ) -> CardOnFile:
        reference = CARD_PREFIX + secrets.token_hex(12)
        record = {
            "kind": "card",
            "reference": reference,
            "behaviour": behaviour.value,
            "brand": brand_of(digits),
            "last4": digits[-4:],
            "expiry_month": month,
            "expiry_year": year,
        }
        async with self._bounded("save card", tenant_id):
            await self._records.insert(tenant_id, CARD + reference, record)
        return _card_on_file(record)

    # --- hosted pages ---------------------------------------------------------------------

    async def start_checkout(self, request: CheckoutRequest) -> Checkout:
        if request.mode == CheckoutMode.PAYMENT:
            _check_amount(request.amount_minor, request.currency)
        session_id = session_id_of(request.tenant_id, request.key)
        success, cancel = self._returns.urls(request.locale, request.mode)
        asked = {
            "mode": request.mode.value,
            "customer": request.customer,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "save_card": request.save_card,
            "expires_at": request.expires_at.isoformat(),
        }
        record = {
            "kind": "session",
            "key": request.key,
            "request": asked,
            "locale": request.locale,
            "success_url": success,
            "cancel_url": cancel,
            "created_at": self._now().isoformat(),
        }
        async with self._bounded("open a page", request.tenant_id):
            if not await self._records.insert(request.tenant_id, SESSION + session_id, record):
                existing = await self._records.get(request.tenant_id, SESSION + session_id)
                if existing is None or existing.get("request") != asked:
                    raise IdempotencyConflict(f"key {request.key} was used for another page")
        logger.info(
            "sandbox page %s (%s) for tenant %s", session_id, request.mode, request.tenant_id
        )
        return Checkout(session_id, self.page_url(request.tenant_id, session_id))

    def page_url(self, tenant_id: str, session_id: str) -> str:
        return f"{self._page_url}/{quote(tenant_id, safe='')}/{session_id}"

    async def page(self, tenant_id: str, session_id: str) -> SandboxPage | None:
        """The hosted page as it stands, or None when there is no such page."""
        if not session_id.startswith(SESSION_PREFIX):
            return None
        async with self._bounded("show a page", tenant_id):
            session = await self._records.get(tenant_id, SESSION + session_id)
            if session is None:
                return None
            paid = await self._records.get(tenant_id, PAID + session_id)
        return self._page(tenant_id, session_id, session, paid)

    def _page(
        self, tenant_id: str, session_id: str, session: dict, paid: dict | None
    ) -> SandboxPage:
        asked = session["request"]
        state = PaymentState.OPEN
        if paid is not None:
            state = PaymentState.SUCCEEDED
        elif datetime.fromisoformat(asked["expires_at"]) <= self._now():
            state = PaymentState.EXPIRED
        return SandboxPage(
            tenant_id=tenant_id,
            session_id=session_id,
            mode=CheckoutMode(asked["mode"]),
            amount_minor=asked["amount_minor"],
            currency=asked["currency"],
            locale=session.get("locale", ""),
            state=state,
            success_url=session["success_url"],
            cancel_url=session["cancel_url"],
        )

    async def complete(
        self,
        tenant_id: str,
        session_id: str,
        *,
        number: str,
        expiry_month: int,
        expiry_year: int,
        cvc: str,
        holder_name: str,
    ) -> PageResult:
        """The cardholder submits the page: pay the order, or save the card (setup).

        Raises LookupError when there is no such page."""
        card = TypedCard(number, expiry_month, expiry_year, cvc, holder_name)
        session, page = await self._open_page(tenant_id, session_id)
        if page.state != PaymentState.OPEN:
            return PageResult(page, "closed")
        try:
            digits, month, year = self._validate(card)
        except _Invalid as invalid:
            return PageResult(page, invalid.field)
        behaviour = TEST_CARDS.get(digits, Behaviour.SUCCEED)
        decline = _DECLINES.get(behaviour)
        if decline is not None and not (
            page.mode == CheckoutMode.SETUP and behaviour in _SAVES_BUT_FAILS
        ):
            # Like Stripe's page: the bank's answer is shown, the page stays open.
            logger.info("sandbox page %s: card ending %s declined", session_id, digits[-4:])
            return PageResult(page, decline.value)
        keep = page.mode == CheckoutMode.SETUP or bool(session["request"]["save_card"])
        payment = (
            PAYMENT_PREFIX + secrets.token_hex(12) if page.mode == CheckoutMode.PAYMENT else ""
        )
        used = _card_record(digits, month, year, behaviour)
        paid = {"kind": "paid", "payment": payment, "card": used, "at": self._now().isoformat()}
        async with self._bounded("complete a page", tenant_id):
            # The insert is the one place a page is completed: a second submit finds it taken.
            if not await self._records.insert(tenant_id, PAID + session_id, paid):
                return PageResult(await self.page(tenant_id, session_id) or page, "closed")
            if keep:
                record = {"kind": "card", **used}
                await self._records.insert(tenant_id, CARD + used["reference"], record)
        logger.info(
            "sandbox page %s of tenant %s completed with a %s card ending %s",
            session_id,
            tenant_id,
            used["brand"],
            used["last4"],
        )
        done = self._page(tenant_id, session_id, session, paid)
        if behaviour is Behaviour.SUCCEED_THEN_HANG:
            return PageResult(done)  # its event is lost: only a look-up finds the payment
        return PageResult(done, event=_event_of(tenant_id, session_id, session, paid))

    async def _open_page(self, tenant_id: str, session_id: str) -> tuple[dict, SandboxPage]:
        """The page's session record and where it stands; LookupError when there is none."""
        async with self._bounded("show a page", tenant_id):
            session = await self._records.get(tenant_id, SESSION + session_id)
            if session is None:
                raise LookupError("no such page")
            paid = await self._records.get(tenant_id, PAID + session_id)
        return session, self._page(tenant_id, session_id, session, paid)

    def _validate(self, card: TypedCard) -> tuple[str, int, int]:
        digits = card.number.replace(" ", "").replace("-", "")
        # fullmatch on [0-9] rather than str.isdigit: that accepts "²" and non-ASCII digits.
        if not _DIGITS.fullmatch(digits) or not luhn_valid(digits):
            raise _Invalid("number")
        brand = brand_of(digits)
        month, year = card.expiry_month, card.expiry_year
        if 0 <= year < 100:  # processors take "28" as 2028
            year += 2000
        today = self._now()
        if not 1 <= month <= 12 or year > today.year + MAX_YEARS_AHEAD:
            raise _Invalid("expiry")
        # A card is good through the last day of its expiry month.
        if (year, month) < (today.year, today.month):
            raise _Invalid("expiry")
        cvc_lengths = {"amex": (4,), "visa": (3,), "mastercard": (3,)}.get(brand, (3, 4))
        if not (card.cvc.isascii() and card.cvc.isdigit() and len(card.cvc) in cvc_lengths):
            raise _Invalid("cvc")
        name = card.holder_name.strip()
        if not name or len(name) > MAX_HOLDER_NAME or not name.isprintable():
            raise _Invalid("name")
        return digits, month, year

    # --- off-session charges --------------------------------------------------------------

    async def charge_saved_card(self, request: ChargeRequest) -> Payment:
        """Charge a saved card exactly once per key; raises PaymentDeclined, GatewayTimeout or
        IdempotencyConflict, and ValueError for what no processor would accept."""
        _check_amount(request.amount_minor, request.currency)
        if not request.key:
            raise ValueError("an idempotency key is required")
        asked = {
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "card": request.card,
            # A hash: a replay must repeat the description, but the record need not hold it.
            "description_sha256": hashlib.sha256(request.description.encode()).hexdigest(),
        }
        try:
            async with asyncio.timeout(self._timeout):
                return await self._charge(request.tenant_id, request.key, asked)
        except AzureError as error:
            # The sandbox's store failed mid-call: like a processor's network error, the charge
            # may or may not be recorded, and only a replay with the same key can tell.
            logger.warning("sandbox charge %s: its store failed", request.key)
            raise GatewayTimeout("the sandbox's store did not answer") from error
        except TimeoutError as error:
            # The charge may have been recorded: the caller must replay with the same key.
            logger.warning(
                "sandbox charge %s for tenant %s timed out after %ss",
                request.key,
                request.tenant_id,
                self._timeout,
            )
            raise GatewayTimeout("the sandbox did not answer in time") from error

    async def _charge(self, tenant_id: str, key: str, asked: dict[str, Any]) -> Payment:
        # Decide, then insert; the insert is the duplicate detector. A new charge costs two
        # round trips (card, insert); only a replay pays the third (reading the winner back).
        card = await self._records.get(tenant_id, CARD + asked["card"])
        behaviour, outcome = _decide(card)
        record = {
            "kind": "charge",
            "request": asked,
            "outcome": outcome,
            "created_at": self._now().isoformat(),
        }
        if not await self._records.insert(tenant_id, CHARGE + key, record):
            existing = await self._records.get(tenant_id, CHARGE + key)
            if existing is None:
                # Records are never deleted; answer as a processor would that lost its reply.
                logger.error("sandbox charge %s for tenant %s cannot be read", key, tenant_id)
                raise GatewayTimeout("the sandbox lost the charge's answer; replay it")
            logger.info("sandbox charge %s for tenant %s replayed", key, tenant_id)
            return _answer(existing, asked, key)
        logger.info(
            "sandbox charge %s for tenant %s: %s %s %s",
            key,
            tenant_id,
            asked["amount_minor"],
            asked["currency"],
            outcome.get("reason") or outcome["status"],
        )
        if behaviour is Behaviour.SUCCEED_THEN_HANG:
            # Charged and recorded, but the answer arrives after the caller gave up; only a
            # replay with the same key learns the result.
            await asyncio.sleep(self._timeout * 3)
        return _answer(record, asked, key)

    # --- look-ups and events --------------------------------------------------------------

    async def look_up(self, request: LookUp) -> Payment:
        async with self._bounded("look up", request.tenant_id):
            if request.checkout:
                session = await self._records.get(request.tenant_id, SESSION + request.checkout)
                if session is None:
                    return Payment(PaymentState.UNKNOWN)
                paid = await self._records.get(request.tenant_id, PAID + request.checkout)
                page = self._page(request.tenant_id, request.checkout, session, paid)
                if paid is not None:
                    return Payment(
                        PaymentState.SUCCEEDED,
                        paid["payment"],
                        page.amount_minor,
                        page.currency,
                        card=_card_on_file(paid["card"]),
                    )
                url = self.page_url(request.tenant_id, request.checkout)
                return Payment(page.state, url=url if page.state == PaymentState.OPEN else "")
            charge = await self._records.get(request.tenant_id, CHARGE + request.key)
        if charge is None:
            return Payment(PaymentState.UNKNOWN)
        outcome, asked = charge["outcome"], charge["request"]
        if outcome["status"] == "declined":
            return Payment(PaymentState.FAILED, failure=DeclineReason(outcome["reason"]))
        return Payment(
            PaymentState.SUCCEEDED,
            outcome["reference"],
            asked["amount_minor"],
            asked["currency"],
        )

    async def event_from(self, payload: bytes, signature: str) -> PaymentEvent | None:
        raise InvalidEvent("the sandbox sends no webhooks: its page applies its own events")

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str, tenant_id: str) -> AsyncIterator[None]:
        """A sandbox call bounded by the timeout, failing as a processor's would."""
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except (TimeoutError, AzureError) as error:
            # Its store failing is the sandbox not answering, as a processor's outage would be.
            logger.warning("sandbox: %s for tenant %s failed: %r", what, tenant_id, error)
            raise GatewayTimeout(f"the sandbox did not {what} in time") from error


class _Invalid(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _check_amount(amount_minor: int, currency: str) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError("amount_minor must be a positive integer")
    if not _CURRENCY.fullmatch(currency):
        raise ValueError("currency must be an upper-case ISO 4217 code")


def _card_on_file(record: dict) -> CardOnFile:
    return CardOnFile(
        reference=record["reference"],
        brand=record["brand"],
        last4=record["last4"],
        expiry_month=int(record["expiry_month"]),
        expiry_year=int(record["expiry_year"]),
    )


def _decide(card: dict | None) -> tuple[Behaviour | None, dict[str, str]]:
    """What the processor does with this saved card: the behaviour and the outcome to record.
    Cards live in their tenant's partition: another tenant's card is simply unknown."""
    if card is None or card.get("kind") != "card":
        return None, _declined(DeclineReason.INVALID_CARD)
    try:
        behaviour = Behaviour(card["behaviour"])
    except (KeyError, ValueError):
        logger.error("sandbox card %s has no known behaviour", card.get("reference"))
        return None, _declined(DeclineReason.PROCESSING_ERROR)
    if behaviour is Behaviour.AUTHENTICATE:
        return behaviour, _declined(DeclineReason.AUTHENTICATION_REQUIRED)
    reason = _DECLINES.get(behaviour)
    if reason is not None:
        return behaviour, _declined(reason)
    return behaviour, {"status": "succeeded", "reference": PAYMENT_PREFIX + secrets.token_hex(12)}


def _declined(reason: DeclineReason) -> dict[str, str]:
    return {"status": "declined", "reason": reason.value}


def _answer(record: dict, asked: dict[str, Any], key: str) -> Payment:
    """The result recorded for a key, provided it is asked for with the same parameters."""
    if record.get("request") != asked:
        raise IdempotencyConflict(f"idempotency key {key} was used with other parameters")
    outcome = record["outcome"]
    if outcome["status"] == "declined":
        raise PaymentDeclined(DeclineReason(outcome["reason"]))
    return Payment(
        PaymentState.SUCCEEDED, outcome["reference"], asked["amount_minor"], asked["currency"]
    )


def _event_of(tenant_id: str, session_id: str, session: dict, paid: dict) -> PaymentEvent:
    asked = session["request"]
    setup = asked["mode"] == CheckoutMode.SETUP.value
    return PaymentEvent(
        kind=PaymentEventKind.CARD_SAVED if setup else PaymentEventKind.PAID,
        event_id="evt_sandbox_" + secrets.token_hex(12),
        tenant_id=tenant_id,
        key=session["key"],
        customer=asked["customer"],
        amount_minor=asked["amount_minor"],
        currency=asked["currency"],
        reference=paid["payment"],
        checkout=session_id,
        card=_card_on_file(paid["card"]),
    )


def _card_record(digits: str, month: int, year: int, behaviour: Behaviour) -> dict[str, Any]:
    """What the sandbox keeps of a card typed on its page: never the number nor the CVC."""
    return {
        "reference": CARD_PREFIX + secrets.token_hex(12),
        "behaviour": behaviour.value,
        "brand": brand_of(digits),
        "last4": digits[-4:],
        "expiry_month": month,
        "expiry_year": year,
    }
