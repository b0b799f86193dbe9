"""PaymentIntents and their Charges, refunds and disputes.

Confirming an intent charges its card at once; the test card decides the outcome (`cards.py`).
A decline leaves the intent in `requires_payment_method` with `last_payment_error`, a failed
Charge as `latest_charge`, and answers the API request with a 402 card error that holds the
intent. A card that always asks for 3D Secure fails off session (`authentication_required`),
asks for action when confirmed through the API with nobody there (`requires_action`), and
passes or fails as the cardholder answers on the hosted page.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tests.fakes.stripe import objects
from tests.fakes.stripe.cards import (
    AUTHENTICATION_FAILED,
    AUTHENTICATION_REQUIRED,
    Decline,
    TestCard,
    card_failure,
    error_object,
)
from tests.fakes.stripe.customers import Customers
from tests.fakes.stripe.errors import invalid, missing
from tests.fakes.stripe.forms import (
    FREE,
    Each,
    boolean,
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
)
from tests.fakes.stripe.store import Origin, Store

CREATE = {
    "amount": None,
    "currency": None,
    "customer": None,
    "payment_method": None,
    "confirm": None,
    "off_session": None,
    "error_on_requires_action": None,
    "metadata": FREE,
    "description": None,
    "setup_future_usage": None,
    "receipt_email": None,
    "statement_descriptor_suffix": None,
    "capture_method": None,
    "payment_method_types": Each(),
    "allowed_payment_method_types": Each(),
    "automatic_payment_methods": {"enabled": None, "allow_redirects": None},
    "return_url": None,
}
REFUND = {"charge": None, "payment_intent": None, "amount": None, "reason": None, "metadata": FREE}


@dataclass
class Payments:
    store: Store
    customers: Customers

    def create_intent(self, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
        check_known(params, CREATE)
        amount = integer(params, "amount")
        if amount is None:
            raise missing("amount")
        currency_ = currency(params, "currency")
        if currency_ is None:
            raise missing("currency")
        check_amount(amount, currency_, param="amount")
        customer_id = string(params, "customer") or None
        if customer_id:
            self.store.get("customer", customer_id, param="customer", status=400)
        confirm = boolean(params, "confirm") or False
        off_session = one_of(params, "off_session", ("true", "false", "one_off", "recurring"))
        if off_session is not None and not confirm:
            raise invalid(
                "You can only set `off_session` when `confirm` is true.", param="off_session"
            )
        one_of(params, "capture_method", ("automatic", "automatic_async"))
        card_only(params)
        method = None
        method_id = string(params, "payment_method")
        if method_id:
            method = self.customers.method_for(method_id, param="payment_method")
            self.customers.check_usable(method, customer_id)
        if confirm and method is None:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                param="payment_method",
                code="payment_intent_unexpected_state",
            )
        intent = objects.payment_intent(
            self.store.now(),
            amount=amount,
            currency=currency_,
            customer=customer_id,
            description=string(params, "description", max_length=1000) or None,
            metadata=metadata(params.get("metadata")),
            payment_method=method["id"] if method else None,
            receipt_email=email(params, "receipt_email"),
            setup_future_usage=one_of(params, "setup_future_usage", ("on_session", "off_session")),
            statement_descriptor_suffix=descriptor_suffix(params),
        )
        self.store.add(intent)
        self.store.emit("payment_intent.created", intent, origin)
        if not confirm or method is None:
            return intent
        # Nobody can answer a 3D Secure challenge off session, nor when the caller said so.
        unattended = off_session not in (None, "false") or bool(
            boolean(params, "error_on_requires_action")
        )
        decline = self.confirm(intent, method, unattended=unattended, origin=origin)
        self.keep_or_spend(method, intent, origin)
        if decline is not None:
            raise card_failure(
                decline, intent["last_payment_error"], payment_intent=copy.deepcopy(intent)
            )
        return intent

    def new_intent_for_checkout(self, session: dict[str, Any], data: dict[str, Any]) -> dict:
        intent = objects.payment_intent(
            self.store.now(),
            amount=session["amount_total"],
            currency=session["currency"],
            customer=session["customer"],
            payment_method=None,
            **data,
        )
        self.store.add(intent)
        self.store.emit("payment_intent.created", intent, Origin())
        return intent

    def keep_or_spend(
        self, method: dict[str, Any], intent: dict[str, Any], origin: Origin | None = None
    ) -> None:
        """After a payment its card is kept for the customer if asked (setup_future_usage);
        otherwise an unattached card is spent."""
        if (
            intent["status"] == "succeeded"
            and intent["setup_future_usage"]
            and intent["customer"]
            and method["customer"] is None
        ):
            self.customers.link(method, intent["customer"], origin or Origin())
        if intent["status"] != "requires_action":
            self.customers.spend(method)

    def confirm(
        self,
        intent: dict[str, Any],
        method: dict[str, Any],
        *,
        unattended: bool,
        authenticated: bool | None = None,
        origin: Origin | None = None,
    ) -> Decline | None:
        """Charge `intent` with `method`: the decline, or None. `authenticated` is the
        cardholder's answer to 3D Secure on the page (None: nobody there to answer)."""
        origin = origin or Origin()
        card: TestCard = self.customers.card_of(method)
        decline: Decline | None = None
        if card.always_authenticate:
            if unattended:
                decline = AUTHENTICATION_REQUIRED
            elif authenticated is None:
                self._ask_for_action(intent, origin)
                return None
            elif not authenticated:
                decline = AUTHENTICATION_FAILED
        decline = decline or card.charge_decline
        charge = None
        if decline is not AUTHENTICATION_FAILED:  # a failed challenge never reaches the bank
            failure = (decline.code, decline.decline_code, decline.message) if decline else None
            charge = self.store.add(
                objects.charge(self.store.now(), intent=intent, method=method, failure=failure)
            )
        if decline is not None:
            previous = self.store.change(
                intent,
                status="requires_payment_method",
                payment_method=None,
                latest_charge=charge["id"] if charge else intent["latest_charge"],
                last_payment_error=error_object(decline, method, charge),
                next_action=None,
            )
            if charge is not None:
                self.store.emit("charge.failed", charge, origin)
            self.store.emit("payment_intent.payment_failed", intent, origin, previous)
            return decline
        assert charge is not None
        previous = self.store.change(
            intent,
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=charge["id"],
            last_payment_error=None,
            next_action=None,
        )
        self.store.emit("charge.succeeded", charge, origin)
        self.store.emit("payment_intent.succeeded", intent, origin, previous)
        if card.disputed:
            self.open_dispute(charge["id"])
        return None

    def _ask_for_action(self, intent: dict[str, Any], origin: Origin) -> None:
        previous = self.store.change(
            intent,
            status="requires_action",
            next_action={
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "stripe_js": "https://hooks.stripe.com/3d_secure_2/hosted"
                    f"?payment_intent={intent['id']}",
                },
            },
        )
        self.store.emit("payment_intent.requires_action", intent, origin, previous)

    def cancel_abandoned(self, intent: dict[str, Any], origin: Origin) -> None:
        if intent["status"] not in ("succeeded", "canceled"):
            previous = self.store.change(
                intent,
                status="canceled",
                canceled_at=self.store.now(),
                cancellation_reason="abandoned",
            )
            self.store.emit("payment_intent.canceled", intent, origin, previous)

    # --- refunds and disputes -------------------------------------------------------------

    def create_refund(self, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
        check_known(params, REFUND)
        charge_id = string(params, "charge")
        intent_id = string(params, "payment_intent")
        if bool(charge_id) == bool(intent_id):
            raise invalid("Pass one of `charge` or `payment_intent`.", param="charge")
        if intent_id:
            intent = self.store.get("payment_intent", intent_id, param="payment_intent", status=400)
            if intent["status"] != "succeeded":
                raise invalid(
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to "
                    "refund.",
                    param="payment_intent",
                )
            charge_id = intent["latest_charge"]
        assert charge_id is not None
        return self.refund(
            charge_id,
            amount=integer(params, "amount"),
            reason=one_of(params, "reason", ("duplicate", "fraudulent", "requested_by_customer")),
            metadata=metadata(params.get("metadata")),
            origin=origin,
        )

    def refund(
        self,
        charge_id: str,
        *,
        amount: int | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
        origin: Origin | None = None,
    ) -> dict[str, Any]:
        """Refund a charge, all that is left of it or `amount`."""
        charge = self.store.get("charge", charge_id, param="charge", status=400)
        if charge["status"] != "succeeded":
            raise invalid(f"Charge {charge_id} has failed and cannot be refunded.", param="charge")
        if charge["disputed"]:
            raise invalid(
                f"Charge {charge_id} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise invalid(
                f"Charge {charge_id} has already been refunded.", code="charge_already_refunded"
            )
        amount = remaining if amount is None else amount
        if amount <= 0:
            raise invalid("Refund amount must be greater than 0.", param="amount")
        if amount > remaining:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                param="amount",
                code="amount_too_large",
            )
        origin = origin or Origin()
        refund = self.store.add(
            objects.refund(
                self.store.now(),
                of_charge=charge,
                amount=amount,
                reason=reason,
                metadata=metadata or {},
            )
        )
        refunded = charge["amount_refunded"] + amount
        previous = self.store.change(
            charge, amount_refunded=refunded, refunded=refunded == charge["amount"]
        )
        self.store.emit("refund.created", refund, origin)
        self.store.emit("charge.refunded", charge, origin, previous)
        return refund

    def open_dispute(self, charge_id: str, *, reason: str = "fraudulent") -> dict[str, Any]:
        """The cardholder's bank disputes a charge; its amount is withdrawn at once."""
        charge = self.store.get("charge", charge_id, param="charge", status=400)
        if charge["status"] != "succeeded" or charge["disputed"]:
            raise invalid(f"Charge {charge_id} cannot be disputed.", param="charge")
        dispute = self.store.add(
            objects.dispute(
                self.store.now(), of_charge=charge, amount=charge["amount"], reason=reason
            )
        )
        self.store.change(charge, disputed=True)
        self.store.emit("charge.dispute.created", dispute, Origin())
        self.store.emit("charge.dispute.funds_withdrawn", dispute, Origin())
        return dispute

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        dispute = self.store.get("dispute", dispute_id)
        previous = self.store.change(dispute, status="won" if won else "lost")
        self.store.emit("charge.dispute.closed", dispute, Origin(), previous)
        if won:
            self.store.emit("charge.dispute.funds_reinstated", dispute, Origin())
        return dispute
