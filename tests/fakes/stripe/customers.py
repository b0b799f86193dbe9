"""Customers and their saved cards (card PaymentMethods): create, update, attach, detach.

A PaymentMethod used without being attached to a customer, or detached from one, cannot be
used again (Stripe refuses it); a PaymentMethod's card is one of the test cards (`cards.py`),
whose number the fake keeps only to decide outcomes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.stripe import objects
from tests.fakes.stripe.cards import SHORTCUTS, TEST_CARDS, TestCard, card_failure, error_object
from tests.fakes.stripe.errors import invalid, missing
from tests.fakes.stripe.forms import (
    FREE,
    Each,
    check_known,
    email,
    merged_metadata,
    metadata,
    string,
    strings,
)
from tests.fakes.stripe.store import Origin, Store

CREATE = {
    "name": None,
    "email": None,
    "description": None,
    "phone": None,
    "metadata": FREE,
    "preferred_locales": Each(),
}
UPDATE = {**CREATE, "invoice_settings": {"default_payment_method": None}}


@dataclass
class Customers:
    store: Store
    _cards: dict[str, TestCard] = field(default_factory=dict)
    """The test card behind each PaymentMethod id."""
    _spent: set[str] = field(default_factory=set)
    _salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    # --- customers ------------------------------------------------------------------------

    def create(self, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
        check_known(params, CREATE)
        customer = objects.customer(
            self.store.now(),
            name=string(params, "name", max_length=256) or None,
            email=email(params),
            description=string(params, "description", max_length=350) or None,
            phone=string(params, "phone", max_length=20) or None,
            metadata=metadata(params.get("metadata")),
            preferred_locales=strings(params, "preferred_locales") or [],
            default_payment_method=None,
        )
        self.store.add(customer)
        self.store.emit("customer.created", customer, origin)
        return customer

    def update(self, customer_id: str, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
        customer = self.store.get("customer", customer_id)
        check_known(params, UPDATE)
        changes: dict[str, Any] = {}
        for name, limit in (("name", 256), ("description", 350), ("phone", 20)):
            if name in params:
                changes[name] = string(params, name, max_length=limit) or None
        if "email" in params:
            changes["email"] = email(params)
        if "metadata" in params:
            changes["metadata"] = merged_metadata(customer["metadata"], params["metadata"])
        if "preferred_locales" in params:
            changes["preferred_locales"] = strings(params, "preferred_locales") or []
        if "invoice_settings" in params:
            changes["invoice_settings"] = self._invoice_settings(customer, params)
        previous = self.store.change(customer, **changes)
        if previous:
            self.store.emit("customer.updated", customer, origin, previous)
        return customer

    def _invoice_settings(self, customer: dict[str, Any], params: dict[str, Any]) -> dict:
        default = string(params["invoice_settings"], "default_payment_method") or None
        param = "invoice_settings[default_payment_method]"
        if default is not None:
            method = self.store.get("payment_method", default, param=param, status=400)
            if method["customer"] != customer["id"]:
                raise invalid(
                    f"The customer does not have a payment method with the ID {default}. "
                    "The payment method must be attached to the customer.",
                    param=param,
                )
        return {**customer["invoice_settings"], "default_payment_method": default}

    def create_for_checkout(self, *, email: str | None, name: str | None) -> str:
        """A customer Checkout creates for a cardholder (to keep their card)."""
        params = {k: v for k, v in (("email", email), ("name", name)) if v}
        return self.create(params, Origin())["id"]

    # --- payment methods ------------------------------------------------------------------

    def new_card(
        self,
        number: str,
        *,
        exp_month: int | None = None,
        exp_year: int | None = None,
        name: str | None = None,
        email: str | None = None,
    ) -> dict[str, Any]:
        """A card PaymentMethod for a test card number, as Stripe.js creates one."""
        card = TEST_CARDS[number]
        today = dt.datetime.fromtimestamp(self.store.clock.now(), dt.UTC)
        # Stripe's fingerprint: the same card number gives the same value within an account.
        digest = hmac.new(self._salt, card.number.encode(), hashlib.sha256).hexdigest()
        wrong_cvc = card.charge_decline is not None and card.charge_decline.param == "cvc"
        method = objects.card_payment_method(
            self.store.now(),
            brand=card.brand,
            last4=card.last4,
            exp_month=exp_month or today.month,
            exp_year=exp_year or today.year + 1,
            fingerprint=digest[:16],
            funding=card.funding,
            country=card.country,
            cvc_check="fail" if wrong_cvc else "pass",
            name=name,
            email=email,
        )
        self._cards[method["id"]] = card
        return self.store.add(method)

    def card_of(self, method: dict[str, Any]) -> TestCard:
        return self._cards[method["id"]]

    def method_for(self, value: str, *, param: str) -> dict[str, Any]:
        """The PaymentMethod a request names; each `pm_card_*` shortcut makes a new one."""
        if value in SHORTCUTS:
            return self.new_card(SHORTCUTS[value])
        return self.store.get("payment_method", value, param=param, status=400)

    def attach(self, method_id: str, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
        check_known(params, {"customer": None})
        method = self.store.get("payment_method", method_id)
        customer_id = string(params, "customer")
        if not customer_id:
            raise missing("customer")
        self.store.get("customer", customer_id, param="customer", status=400)
        if method["customer"] == customer_id:
            return method
        if method["customer"] is not None:
            raise invalid(
                "The payment method you provided has already been attached to a customer.",
                param="payment_method",
            )
        self.check_reusable(method)
        decline = self._cards[method_id].setup_decline
        if decline is not None:  # attaching checks the card with the bank
            self._spent.add(method_id)
            raise card_failure(decline, error_object(decline, method))
        self.link(method, customer_id, origin)
        return method

    def link(self, method: dict[str, Any], customer_id: str, origin: Origin) -> None:
        if self.store.change(method, customer=customer_id):
            self.store.emit("payment_method.attached", method, origin)

    def detach(self, method_id: str, origin: Origin) -> dict[str, Any]:
        method = self.store.get("payment_method", method_id)
        customer_id = method["customer"]
        if customer_id is None:
            raise invalid(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible.",
                param="payment_method",
            )
        previous = self.store.change(method, customer=None)
        self._spent.add(method_id)
        self.store.emit("payment_method.detached", method, origin, previous)
        customer = self.store.objects[customer_id]
        if customer["invoice_settings"]["default_payment_method"] == method_id:
            settings = {**customer["invoice_settings"], "default_payment_method": None}
            previous = self.store.change(customer, invoice_settings=settings)
            self.store.emit("customer.updated", customer, origin, previous)
        return method

    def spend(self, method: dict[str, Any]) -> None:
        """A PaymentMethod used without being attached cannot be used again."""
        if method["customer"] is None:
            self._spent.add(method["id"])

    def check_reusable(self, method: dict[str, Any]) -> None:
        if method["id"] in self._spent:
            raise invalid(
                "The provided PaymentMethod was previously used without being attached to a "
                "Customer or was detached from a Customer, and may not be used again.",
                param="payment_method",
            )

    def check_usable(self, method: dict[str, Any], customer_id: str | None) -> None:
        """Whether a payment for `customer_id` may use `method`."""
        self.check_reusable(method)
        owner = method["customer"]
        if owner is not None and customer_id is None:
            raise invalid(
                "The provided PaymentMethod is attached to a Customer: pass that `customer` too.",
                param="customer",
            )
        if owner is not None and owner != customer_id:
            raise invalid(
                "The provided PaymentMethod belongs to a different Customer.",
                param="payment_method",
            )

    def methods_of(self, customer_id: str, type_: str | None) -> list[dict[str, Any]]:
        return self.store.of_kind(
            "payment_method",
            lambda m: m["customer"] == customer_id and type_ in (None, m["type"]),
        )
