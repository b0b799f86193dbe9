"""Checkout Sessions: created through the API, paid (or a card saved) on the hosted page,
expired through the API or by time.

As since API version 2022-08-01, a session's PaymentIntent (payment mode) or SetupIntent (setup
mode) is created when the cardholder first submits the page, not with the session; a declined
attempt leaves it attached to the still open session, and the next attempt reuses it. Session
`metadata` stays on the session: the intent gets `payment_intent_data` / `setup_intent_data`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.stripe import objects
from tests.fakes.stripe.cards import (
    AUTHENTICATION_FAILED,
    LIVE_CARD,
    TEST_CARDS,
    entry_problem,
    error_object,
)
from tests.fakes.stripe.customers import Customers
from tests.fakes.stripe.errors import invalid, missing, no_such
from tests.fakes.stripe.forms import (
    FREE,
    MAXIMUM_AMOUNT,
    Each,
    card_only,
    check_amount,
    check_known,
    currency,
    descriptor_suffix,
    email,
    integer,
    metadata,
    one_of,
    string,
    url,
)
from tests.fakes.stripe.payments import Payments
from tests.fakes.stripe.store import Origin, Store

LOCALES = (
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hr hu id it ja ko lt lv ms mt "
    "nb nl pl pt pt-BR ro ru sk sl sv th tr vi zh zh-HK zh-TW"
).split()
CREATE = {
    "mode": None,
    "line_items": Each(
        {
            "price": None,
            "price_data": {
                "currency": None,
                "unit_amount": None,
                "product_data": {"name": None, "description": None, "metadata": FREE},
            },
            "quantity": None,
        }
    ),
    "currency": None,
    "customer": None,
    "customer_email": None,
    "customer_creation": None,
    "success_url": None,
    "cancel_url": None,
    "metadata": FREE,
    "client_reference_id": None,
    "locale": None,
    "payment_intent_data": {
        "setup_future_usage": None,
        "metadata": FREE,
        "description": None,
        "receipt_email": None,
        "statement_descriptor_suffix": None,
    },
    "setup_intent_data": {"metadata": FREE, "description": None},
    "expires_at": None,
    "payment_method_types": Each(),
    "allowed_payment_method_types": Each(),
    "ui_mode": None,
}
DAY = 24 * 3600


@dataclass(frozen=True)
class CardEntry:
    """What a cardholder types on the hosted page."""

    number: str
    exp_month: str
    exp_year: str
    cvc: str
    name: str | None = None
    email: str | None = None
    authenticate: bool = True
    """How the cardholder answers a 3D Secure challenge (for cards that always ask)."""


@dataclass
class Attempt:
    """The outcome of paying (or saving a card) on a Checkout Session's page."""

    session: dict[str, Any]
    error: str | None = None
    code: str | None = None
    decline_code: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


@dataclass
class Checkout:
    store: Store
    customers: Customers
    payments: Payments
    _intent_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What each session passes on to the intent it creates when the cardholder pays."""

    def create(self, params: dict[str, Any], origin: Origin, base_url: str) -> dict[str, Any]:
        check_known(params, CREATE)
        mode = one_of(params, "mode", ("payment", "setup", "subscription"))
        if mode is None:
            raise missing("mode")
        if mode == "subscription":
            raise invalid("The fake models the payment and setup modes only.", param="mode")
        card_only(params)
        one_of(params, "ui_mode", ("hosted",))
        customer_id = string(params, "customer") or None
        if customer_id:
            self.store.get("customer", customer_id, param="customer", status=400)
        customer_email = email(params, "customer_email")
        if customer_id and customer_email:
            raise invalid(
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        customer_creation = one_of(params, "customer_creation", ("always", "if_required"))
        if customer_id and customer_creation:
            raise invalid(
                "`customer_creation` can only be used when `customer` is not set.",
                param="customer_creation",
            )
        now = self.store.now()
        expires_at = self._expires_at(params, now)
        currency_ = currency(params, "currency")
        if mode == "payment":
            items, currency_, total, intent_data = self._payment_terms(params, currency_, now)
        else:
            items, total, intent_data = [], None, self._setup_terms(params, currency_)
        session = objects.checkout_session(
            now,
            mode=mode,
            amount_total=total,
            currency=currency_,
            customer=customer_id,
            customer_email=customer_email,
            customer_creation=customer_creation or (None if customer_id else "if_required"),
            client_reference_id=string(params, "client_reference_id", max_length=200) or None,
            locale=one_of(params, "locale", LOCALES),
            metadata=metadata(params.get("metadata")),
            success_url=url(params, "success_url"),
            cancel_url=url(params, "cancel_url"),
            expires_at=expires_at,
            base_url=base_url,
        )
        self.store.line_items[session["id"]] = items
        self._intent_data[session["id"]] = intent_data
        return self.store.add(session)

    @staticmethod
    def _expires_at(params: dict[str, Any], now: int) -> int:
        expires_at = integer(params, "expires_at")
        if expires_at is None:
            return now + DAY
        if expires_at - now > DAY:
            raise invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                "creation.",
                param="expires_at",
            )
        if expires_at - now < 30 * 60:
            raise invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                "creation.",
                param="expires_at",
            )
        return expires_at

    def _payment_terms(
        self, params: dict[str, Any], currency_: str | None, now: int
    ) -> tuple[list[dict], str, int, dict[str, Any]]:
        if "setup_intent_data" in params:
            raise invalid(
                "You can not pass `setup_intent_data` in `payment` mode.",
                param="setup_intent_data",
            )
        raw_items = params.get("line_items")
        if not raw_items:
            raise invalid("`line_items` is required in `payment` mode.", param="line_items")
        items = [_line_item(item, index, now) for index, item in enumerate(raw_items)]
        currencies = {item["currency"] for item in items} | ({currency_} - {None})
        if len(currencies) > 1:
            raise invalid("All line items must use the same currency.", param="line_items")
        (session_currency,) = currencies
        total = sum(item["amount_total"] for item in items)
        check_amount(total, session_currency, param="line_items")
        data = params.get("payment_intent_data") or {}
        intent_data = {
            "setup_future_usage": one_of(data, "setup_future_usage", ("on_session", "off_session")),
            "metadata": metadata(data.get("metadata"), "payment_intent_data[metadata]"),
            "description": string(data, "description", max_length=1000) or None,
            "receipt_email": email(data, "receipt_email"),
            "statement_descriptor_suffix": descriptor_suffix(data),
        }
        return items, session_currency, total, intent_data

    @staticmethod
    def _setup_terms(params: dict[str, Any], currency_: str | None) -> dict[str, Any]:
        for name in ("line_items", "payment_intent_data"):
            if name in params:
                raise invalid(f"You can not pass `{name}` in `setup` mode.", param=name)
        if currency_ is None and "payment_method_types" not in params:
            raise invalid(
                "`currency` is required in `setup` mode when `payment_method_types` is not set.",
                param="currency",
            )
        data = params.get("setup_intent_data") or {}
        return {
            "metadata": metadata(data.get("metadata"), "setup_intent_data[metadata]"),
            "description": string(data, "description", max_length=1000) or None,
        }

    # --- expiry ---------------------------------------------------------------------------

    def expire(self, session_id: str, origin: Origin) -> dict[str, Any]:
        session = self.store.get("checkout.session", session_id)
        if session["status"] != "open":
            raise invalid(
                'Only Checkout Sessions with a status in ["open"] can be expired.',
                param="session",
            )
        self._expire(session, origin)
        return session

    def _expire(self, session: dict[str, Any], origin: Origin) -> None:
        self.store.change(session, status="expired", url=None)
        if session["payment_intent"]:
            self.payments.cancel_abandoned(self.store.objects[session["payment_intent"]], origin)
        if session["setup_intent"]:
            intent = self.store.objects[session["setup_intent"]]
            if intent["status"] not in ("succeeded", "canceled"):
                previous = self.store.change(
                    intent, status="canceled", cancellation_reason="abandoned"
                )
                self.store.emit("setup_intent.canceled", intent, origin, previous)
        self.store.emit("checkout.session.expired", session, origin)

    def expire_due(self) -> None:
        """Expire open sessions whose `expires_at` has passed (Stripe does it on its own)."""
        now = self.store.now()
        for session in self.store.of_kind("checkout.session")[::-1]:
            if session["status"] == "open" and session["expires_at"] <= now:
                self._expire(session, Origin())

    # --- the cardholder -------------------------------------------------------------------

    def pay(self, session_id: str, entry: CardEntry) -> Attempt:
        """The cardholder submits the hosted page: pay (payment mode) or save the card."""
        session = self.store.get("checkout.session", session_id)
        self.expire_due()
        if session["status"] != "open":
            return Attempt(session, "This Checkout Session is no longer active.")
        today = dt.datetime.fromtimestamp(self.store.clock.now(), dt.UTC)
        problem = entry_problem(
            entry.number,
            entry.exp_month,
            entry.exp_year,
            entry.cvc,
            year=today.year,
            month=today.month,
        )
        if problem:
            return Attempt(session, problem)
        if entry.number not in TEST_CARDS:  # never keep what may be a real card number
            return Attempt(session, LIVE_CARD.message, LIVE_CARD.code, LIVE_CARD.decline_code)
        year = int(entry.exp_year)
        method = self.customers.new_card(
            entry.number,
            exp_month=int(entry.exp_month),
            exp_year=year + 2000 if year < 100 else year,
            name=entry.name,
            email=entry.email,
        )
        if session["mode"] == "payment":
            return self._pay(session, method, entry)
        return self._save(session, method, entry)

    def _pay(self, session: dict[str, Any], method: dict[str, Any], entry: CardEntry) -> Attempt:
        data = self._intent_data[session["id"]]
        if session["payment_intent"]:
            intent = self.store.objects[session["payment_intent"]]
        else:
            intent = self.payments.new_intent_for_checkout(session, data)
            self.store.change(session, payment_intent=intent["id"])
        self.store.change(intent, payment_method=method["id"])
        decline = self.payments.confirm(
            intent, method, unattended=False, authenticated=entry.authenticate
        )
        if decline is not None:
            self.customers.spend(method)
            return Attempt(session, decline.message, decline.code, decline.decline_code)
        customer_id = session["customer"]
        if customer_id is None and (
            data["setup_future_usage"] or session["customer_creation"] == "always"
        ):
            customer_id = self.customers.create_for_checkout(email=entry.email, name=entry.name)
            self.store.change(intent, customer=customer_id)
        self.payments.keep_or_spend(method, intent)
        self._complete(session, "paid", customer_id, entry)
        return Attempt(session)

    def _save(self, session: dict[str, Any], method: dict[str, Any], entry: CardEntry) -> Attempt:
        origin = Origin()
        card = self.customers.card_of(method)
        if session["setup_intent"]:
            intent = self.store.objects[session["setup_intent"]]
        else:
            data = self._intent_data[session["id"]]
            intent = objects.setup_intent(self.store.now(), customer=session["customer"], **data)
            self.store.add(intent)
            self.store.emit("setup_intent.created", intent, origin)
            self.store.change(session, setup_intent=intent["id"])
        decline = card.setup_decline
        if decline is None and card.always_authenticate and not entry.authenticate:
            decline = AUTHENTICATION_FAILED
        if decline is not None:
            self.customers.spend(method)
            previous = self.store.change(
                intent,
                status="requires_payment_method",
                last_setup_error=error_object(decline, method),
            )
            self.store.emit("setup_intent.setup_failed", intent, origin, previous)
            return Attempt(session, decline.message, decline.code, decline.decline_code)
        customer_id = session["customer"]
        if customer_id is None and session["customer_creation"] == "always":
            customer_id = self.customers.create_for_checkout(email=entry.email, name=entry.name)
        if customer_id is not None:
            self.customers.link(method, customer_id, origin)
        previous = self.store.change(
            intent,
            status="succeeded",
            customer=customer_id,
            payment_method=method["id"],
            last_setup_error=None,
        )
        self.store.emit("setup_intent.succeeded", intent, origin, previous)
        self._complete(session, "no_payment_required", customer_id, entry)
        return Attempt(session)

    def _complete(
        self,
        session: dict[str, Any],
        payment_status: str,
        customer_id: str | None,
        entry: CardEntry,
    ) -> None:
        customer = self.store.objects.get(customer_id or "") or {}
        details = {
            "address": {
                "city": None,
                "country": "US",
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": entry.email or session["customer_email"] or customer.get("email"),
            "name": entry.name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        self.store.change(
            session,
            status="complete",
            payment_status=payment_status,
            customer=customer_id,
            customer_details=details,
            url=None,
        )
        self.store.emit("checkout.session.completed", session, Origin())


def _line_item(item: dict[str, Any], index: int, now: int) -> dict[str, Any]:
    prefix = f"line_items[{index}]"
    if "price" in item:
        raise no_such("price", str(item["price"]), param=f"{prefix}[price]")
    price = item.get("price_data")
    if not price:
        raise missing(f"{prefix}[price_data]")
    item_currency = currency(price, "currency", label=f"{prefix}[price_data][currency]")
    if item_currency is None:
        raise missing(f"{prefix}[price_data][currency]")
    unit_amount = integer(price, "unit_amount", label=f"{prefix}[price_data][unit_amount]")
    if unit_amount is None:
        raise missing(f"{prefix}[price_data][unit_amount]")
    if not 0 <= unit_amount <= MAXIMUM_AMOUNT:
        raise invalid(
            f"Invalid unit_amount: must be between 0 and {MAXIMUM_AMOUNT}.",
            param=f"{prefix}[price_data][unit_amount]",
        )
    name = string(price.get("product_data") or {}, "name", max_length=250)
    if not name:
        raise missing(f"{prefix}[price_data][product_data][name]")
    quantity = integer(item, "quantity", label=f"{prefix}[quantity]")
    if quantity is None:
        raise missing(f"{prefix}[quantity]")
    if quantity < 1:
        raise invalid("Quantity must be at least 1.", param=f"{prefix}[quantity]")
    return objects.line_item(
        now, name=name, unit_amount=unit_amount, quantity=quantity, currency=item_currency
    )
