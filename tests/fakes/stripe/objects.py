"""The JSON shapes of the Stripe objects the fake keeps, as the API returns them.

Each builder gives the object's documented fields that the product may read (a subset of
Stripe's full objects, with Stripe's names, nulls and defaults); ids carry Stripe's prefixes.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"


def _base(object_id: str, kind: str, created: int) -> dict[str, Any]:
    return {"id": object_id, "object": kind, "created": created, "livemode": False}


def customer(
    created: int,
    *,
    name: str | None,
    email: str | None,
    description: str | None,
    phone: str | None,
    metadata: dict[str, str],
    preferred_locales: list[str],
    default_payment_method: str | None,
) -> dict[str, Any]:
    return {
        **_base(new_id("cus", 14), "customer", created),
        "address": None,
        "balance": 0,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "email": email,
        "invoice_prefix": new_id("x", 8)[2:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": preferred_locales,
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def card_payment_method(
    created: int,
    *,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    fingerprint: str,
    funding: str,
    country: str,
    cvc_check: str | None,
    name: str | None,
    email: str | None,
) -> dict[str, Any]:
    return {
        **_base(new_id("pm"), "payment_method", created),
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": email,
            "name": name,
            "phone": None,
        },
        "card": {
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": cvc_check,
            },
            "country": country,
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": fingerprint,
            "funding": funding,
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "customer": None,
        "metadata": {},
        "type": "card",
    }


def checkout_session(
    created: int,
    *,
    mode: str,
    amount_total: int | None,
    currency: str | None,
    customer: str | None,
    customer_email: str | None,
    customer_creation: str | None,
    client_reference_id: str | None,
    locale: str | None,
    metadata: dict[str, str],
    success_url: str | None,
    cancel_url: str | None,
    expires_at: int,
    base_url: str,
) -> dict[str, Any]:
    session_id = new_id("cs_test", 58)
    return {
        **_base(session_id, "checkout.session", created),
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "currency": currency,
        "customer": customer,
        "customer_creation": customer_creation,
        "customer_details": None,
        "customer_email": customer_email,
        "expires_at": expires_at,
        "invoice": None,
        "locale": locale,
        "metadata": metadata,
        "mode": mode,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always" if mode == "setup" else "if_required",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "recovered_from": None,
        "setup_intent": None,
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"{base_url}/pay/{session_id}",
    }


def line_item(
    created: int, *, name: str, unit_amount: int, quantity: int, currency: str
) -> dict[str, Any]:
    total = unit_amount * quantity
    return {
        "id": new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": total,
        "amount_tax": 0,
        "amount_total": total,
        "currency": currency,
        "description": name,
        "metadata": {},
        "price": {
            **_base(new_id("price"), "price", created),
            "active": False,
            "billing_scheme": "per_unit",
            "currency": currency,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": new_id("prod", 14),
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


def payment_intent(
    created: int,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    description: str | None,
    metadata: dict[str, str],
    payment_method: str | None,
    receipt_email: str | None,
    setup_future_usage: str | None,
    statement_descriptor_suffix: str | None,
) -> dict[str, Any]:
    intent_id = new_id("pi")
    return {
        **_base(intent_id, "payment_intent", created),
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{new_id('x')[2:]}",
        "confirmation_method": "automatic",
        "currency": currency,
        "customer": customer,
        "description": description,
        "last_payment_error": None,
        "latest_charge": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": statement_descriptor_suffix,
        "status": "requires_confirmation" if payment_method else "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def setup_intent(
    created: int,
    *,
    customer: str | None,
    description: str | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    intent_id = new_id("seti")
    return {
        **_base(intent_id, "setup_intent", created),
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{intent_id}_secret_{new_id('x')[2:]}",
        "customer": customer,
        "description": description,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "mandate": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": "off_session",
    }


def charge(
    created: int,
    *,
    intent: dict[str, Any],
    method: dict[str, Any],
    failure: tuple[str, str | None, str] | None,
) -> dict[str, Any]:
    """A card charge of `intent` with `method`; `failure` is (code, decline_code, message)."""
    card = method["card"]
    paid = failure is None
    if paid:
        outcome = {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    else:
        outcome = {
            "network_status": "declined_by_network",
            "reason": failure[1] or failure[0],
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    charge_id = new_id("ch")
    return {
        **_base(charge_id, "charge", created),
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if paid else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": method["billing_details"],
        "calculated_statement_descriptor": "FAKE STRIPE",
        "captured": paid,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if paid else failure[0],
        "failure_message": None if paid else failure[2],
        "fraud_details": {},
        "metadata": {},
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": paid,
        "payment_intent": intent["id"],
        "payment_method": method["id"],
        "payment_method_details": {
            "card": {
                "amount_authorized": intent["amount"] if paid else None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "last4": card["last4"],
                "network": card["brand"],
                "three_d_secure": None,
            },
            "type": "card",
        },
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{charge_id}" if paid else None,
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "succeeded" if paid else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    created: int,
    *,
    of_charge: dict[str, Any],
    amount: int,
    reason: str | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    return {
        **_base(new_id("re"), "refund", created),
        "amount": amount,
        "balance_transaction": None,
        "charge": of_charge["id"],
        "currency": of_charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": metadata,
        "payment_intent": of_charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def dispute(created: int, *, of_charge: dict[str, Any], amount: int, reason: str) -> dict:
    return {
        **_base(new_id("dp"), "dispute", created),
        "amount": amount,
        "balance_transactions": [],
        "charge": of_charge["id"],
        "currency": of_charge["currency"],
        "evidence": {},
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "metadata": {},
        "network_reason_code": None,
        "payment_intent": of_charge["payment_intent"],
        "reason": reason,
        "status": "needs_response",
    }


def event(
    created: int,
    *,
    type_: str,
    data_object: dict[str, Any],
    previous_attributes: dict[str, Any] | None,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type_,
    }


def page(kind: str, data: list[dict[str, Any]], *, url: str, has_more: bool, **extra) -> dict:
    """A list (`kind="list"`) or a search result (`kind="search_result"`)."""
    return {"object": kind, "data": data, "has_more": has_more, "url": url, **extra}
