"""The Stripe gateway: `credits.payments.PaymentGateway` on Stripe's API, through the official
`stripe` SDK's async client.

- One Customer per tenant, the tenant id in its metadata; saved cards are its PaymentMethods.
- Card entry happens on Stripe Checkout: a session in `payment` mode for an order (with
  `setup_future_usage=off_session` to keep the card) or in `setup` mode to save a card. The
  order's (or setup's) key and the tenant id go in the metadata of the session and of the
  intent it creates, so every event names what it is about.
- Saved cards are charged with an off-session PaymentIntent (`off_session`, `confirm`).
- Every POST carries an idempotency key derived from the order's key, one per endpoint
  (Stripe refuses a key reused on another endpoint): `customer-<tenant>`, `checkout-<key>`,
  `charge-<key>`. The SDK's own retries (`max_network_retries`) reuse it.
- Webhooks are verified on their raw bytes (`construct_event`, Stripe's 300-second tolerance),
  then the object they name is read again from the API: an event's snapshot may be stale when
  it arrives late or out of order.

Errors become the port's: card errors are declines, 429/5xx/timeouts are "ask again with the
same key" (`GatewayTimeout`), a refused request is `GatewayUnavailable`. The secret key is never
logged; neither is anything about a card beyond brand and last four digits.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe

from credits.payments import (
    CardOnFile,
    ChargeRequest,
    Checkout,
    CheckoutMode,
    CheckoutRequest,
    DeclineReason,
    GatewayTimeout,
    GatewayUnavailable,
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

DEFAULT_TIMEOUT = 10.0
# The SDK retries connection errors, 409 (a key in use) and 5xx that Stripe marks retryable,
# with the same idempotency key; it never retries a plain 429.
DEFAULT_RETRIES = 2
PRODUCT_NAME = "Communications Credits"
TENANT = "tenant_id"
ORDER = "order_key"
SETUP = "setup_key"
# Checkout's locales by the product's languages (Stripe wants "pt-BR", "zh", not "pt_BR").
CHECKOUT_LOCALES = {"en": "en", "pt": "pt-BR", "es": "es", "zh": "zh", "ru": "ru", "fr": "fr"}
USED_EVENTS = (
    "checkout.session.completed",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "setup_intent.succeeded",
    "charge.refunded",
    "charge.dispute.created",
)


class StripeGateway:
    def __init__(
        self,
        client: stripe.StripeClient,
        *,
        webhook_secret: str,
        returns: ReturnPages,
        http_client: stripe.AIOHTTPClient | None = None,
    ) -> None:
        """`http_client` is closed by `close()` when given (the client's own transport)."""
        self._client = client
        self._webhook_secret = webhook_secret
        self._returns = returns
        self._http_client = http_client

    @classmethod
    def connect(
        cls,
        secret_key: str,
        *,
        webhook_secret: str,
        returns: ReturnPages,
        api_base: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> StripeGateway:
        """A gateway with its own async HTTP client. `api_base` points it at another address
        than api.stripe.com: tests and fakes only."""
        http_client = stripe.AIOHTTPClient(timeout=timeout)
        options: dict[str, Any] = {"http_client": http_client, "max_network_retries": retries}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        client = stripe.StripeClient(secret_key, **options)
        return cls(client, webhook_secret=webhook_secret, returns=returns, http_client=http_client)

    async def close(self) -> None:
        if self._http_client is not None:
            await self._http_client.close_async()

    # --- customers and cards --------------------------------------------------------------

    async def create_customer(self, tenant_id: str) -> str:
        customer = await _call(
            self._client.v1.customers.create_async(
                {
                    "description": f"{PRODUCT_NAME}, tenant {tenant_id}",
                    "metadata": {TENANT: tenant_id},
                },
                {"idempotency_key": f"customer-{tenant_id}"},
            )
        )
        return customer.id

    async def saved_cards(self, tenant_id: str, customer: str) -> list[CardOnFile]:
        methods = await _call(
            self._client.v1.customers.payment_methods.list_async(
                customer, {"type": "card", "limit": 100}
            )
        )
        return [card for method in methods.data if (card := _card_of(method)) is not None]

    # --- hosted pages ---------------------------------------------------------------------

    async def start_checkout(self, request: CheckoutRequest) -> Checkout:
        success, cancel = self._returns.urls(request.locale, request.mode)
        params: dict[str, Any] = {
            "mode": request.mode.value,
            "customer": request.customer,
            "success_url": success,
            "cancel_url": cancel,
            "locale": checkout_locale(request.locale),
            "expires_at": int(request.expires_at.timestamp()),
            "client_reference_id": request.key[:200],
        }
        if request.mode == CheckoutMode.PAYMENT:
            metadata = {TENANT: request.tenant_id, ORDER: request.key}
            intent: dict[str, Any] = {"metadata": metadata, "description": request.description}
            if request.save_card:
                intent["setup_future_usage"] = "off_session"
            params |= {
                "metadata": metadata,
                "payment_intent_data": intent,
                "line_items": [
                    {
                        "price_data": {
                            "currency": request.currency.lower(),
                            "unit_amount": request.amount_minor,
                            "product_data": {"name": PRODUCT_NAME},
                        },
                        "quantity": 1,
                    }
                ],
            }
        else:
            metadata = {TENANT: request.tenant_id, SETUP: request.key}
            params |= {
                "metadata": metadata,
                "payment_method_types": ["card"],
                "setup_intent_data": {"metadata": metadata, "description": request.description},
            }
        session = await _call(
            self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": f"checkout-{request.key}"}
            )
        )
        return Checkout(session.id, session.url)

    # --- off-session charges --------------------------------------------------------------

    async def charge_saved_card(self, request: ChargeRequest) -> Payment:
        params = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "customer": request.customer,
            "payment_method": request.card,
            "off_session": True,
            "confirm": True,
            "description": request.description,
            "metadata": {TENANT: request.tenant_id, ORDER: request.key},
        }
        intent = await _call(
            self._client.v1.payment_intents.create_async(
                params, {"idempotency_key": f"charge-{request.key}"}
            )
        )
        payment = _payment_of(intent)
        if payment.state == PaymentState.SUCCEEDED:
            return payment
        if intent.status == "requires_action":
            raise PaymentDeclined(DeclineReason.AUTHENTICATION_REQUIRED, reference=intent.id)
        if payment.state == PaymentState.FAILED:
            raise PaymentDeclined(payment.failure or DeclineReason.DECLINED, reference=intent.id)
        # Still processing: its event (or a look-up) tells how it ends.
        raise GatewayTimeout(f"payment {intent.id} is {intent.status}")

    # --- look-ups -------------------------------------------------------------------------

    async def look_up(self, request: LookUp) -> Payment:
        if request.checkout:
            session = await _call(
                self._client.v1.checkout.sessions.retrieve_async(
                    request.checkout, {"expand": ["payment_intent.payment_method"]}
                )
            )
            if session.status == "complete" and session.payment_status == "paid":
                intent = session.payment_intent
                return Payment(
                    PaymentState.SUCCEEDED,
                    intent.id if intent is not None else "",
                    session.amount_total or 0,
                    (session.currency or "").upper(),
                    card=_card_of(intent.payment_method) if intent is not None else None,
                )
            if session.status == "expired":
                return Payment(PaymentState.EXPIRED)
            if session.status == "open":
                return Payment(PaymentState.OPEN, url=session.url or "")
            return Payment(PaymentState.UNKNOWN)
        if request.payment:
            intent = await _call(
                self._client.v1.payment_intents.retrieve_async(
                    request.payment, {"expand": ["payment_method"]}
                )
            )
            return _payment_of(intent)
        # Neither known (the answer to the charge was lost): find it by the order's key in the
        # metadata. Search is eventually consistent, so this is for orders minutes old or more.
        found = await _call(
            self._client.v1.payment_intents.search_async(
                {"query": f"metadata['{ORDER}']:'{_quoted(request.key)}'", "limit": 10}
            )
        )
        intents = [i for i in found.data if _metadata(i).get(TENANT) == request.tenant_id]
        if not intents:
            return Payment(PaymentState.UNKNOWN)
        succeeded = [i for i in intents if i.status == "succeeded"]
        return _payment_of(max(succeeded or intents, key=lambda i: i.created))

    # --- webhooks -------------------------------------------------------------------------

    async def event_from(self, payload: bytes, signature: str) -> PaymentEvent | None:
        try:
            event = self._client.construct_event(payload, signature, self._webhook_secret)
        except stripe.SignatureVerificationError as error:
            raise InvalidEvent(f"signature: {error.user_message or error}") from error
        except ValueError as error:
            raise InvalidEvent("not a Stripe event") from error
        if event.type not in USED_EVENTS:
            return None
        subject = event.data.object
        if event.type == "checkout.session.completed":
            return await self._session_completed(event.id, subject.id)
        if event.type == "checkout.session.expired":
            metadata = _metadata(subject)
            return PaymentEvent(
                PaymentEventKind.CHECKOUT_EXPIRED,
                event.id,
                metadata.get(TENANT, ""),
                metadata.get(ORDER, ""),
                customer=_id(subject.customer),
                checkout=subject.id,
            )
        if event.type == "payment_intent.succeeded":
            intent = await self._intent(subject.id)
            return _intent_event(PaymentEventKind.PAID, event.id, intent)
        if event.type == "payment_intent.payment_failed":
            intent = await self._intent(subject.id)
            return _intent_event(PaymentEventKind.PAYMENT_FAILED, event.id, intent)
        if event.type == "setup_intent.succeeded":
            setup = await _call(
                self._client.v1.setup_intents.retrieve_async(
                    subject.id, {"expand": ["payment_method"]}
                )
            )
            return _setup_event(event.id, setup)
        # Refunds and disputes: the order is named by the PaymentIntent they belong to.
        intent_id = _id(subject.payment_intent)
        if not intent_id:
            return None
        intent = await self._intent(intent_id)
        if event.type == "charge.refunded":
            return _reversal_event(
                PaymentEventKind.REFUNDED, event.id, intent, subject.amount_refunded, subject
            )
        return _reversal_event(PaymentEventKind.DISPUTED, event.id, intent, subject.amount, subject)

    async def _session_completed(self, event_id: str, session_id: str) -> PaymentEvent | None:
        session = await _call(
            self._client.v1.checkout.sessions.retrieve_async(
                session_id,
                {"expand": ["payment_intent.payment_method", "setup_intent.payment_method"]},
            )
        )
        metadata = _metadata(session)
        if session.mode == "setup":
            setup = session.setup_intent
            if setup is None or setup.status != "succeeded":
                return None
            event = _setup_event(event_id, setup)
            return PaymentEvent(
                event.kind,
                event.event_id,
                metadata.get(TENANT, event.tenant_id),
                metadata.get(SETUP, event.key),
                customer=_id(session.customer),
                checkout=session.id,
                card=event.card,
            )
        if session.payment_status != "paid":
            return None  # not a card's answer (delayed methods): its intent's event will come
        intent = session.payment_intent
        return PaymentEvent(
            PaymentEventKind.PAID,
            event_id,
            metadata.get(TENANT, ""),
            metadata.get(ORDER, ""),
            customer=_id(session.customer),
            amount_minor=session.amount_total or 0,
            currency=(session.currency or "").upper(),
            reference=intent.id if intent is not None else "",
            checkout=session.id,
            card=_card_of(intent.payment_method) if intent is not None else None,
        )

    async def _intent(self, intent_id: str) -> Any:
        return await _call(
            self._client.v1.payment_intents.retrieve_async(
                intent_id, {"expand": ["payment_method"]}
            )
        )


def checkout_locale(tag: str) -> str:
    """Stripe Checkout's locale for a product language tag ("auto" for anything else)."""
    return CHECKOUT_LOCALES.get(tag.replace("_", "-").split("-")[0].lower(), "auto")


async def _call(request):
    """Await an SDK call, its errors as the port's."""
    try:
        return await request
    except stripe.CardError as error:
        detail = error.error
        intent = getattr(detail, "payment_intent", None) if detail is not None else None
        decline_code = getattr(detail, "decline_code", None) if detail is not None else None
        raise PaymentDeclined(
            decline_reason(error.code, decline_code),
            str(error.user_message or error.code),
            reference=_id(intent),
        ) from error
    except stripe.IdempotencyError as error:
        raise IdempotencyConflict(str(error.user_message or "idempotency error")) from error
    except stripe.InvalidRequestError as error:
        if (error.param or "").startswith("payment_method"):
            # A saved card removed at Stripe (detached in the Dashboard) cannot be charged.
            raise PaymentDeclined(DeclineReason.INVALID_CARD, str(error.code)) from error
        logger.error(
            "Stripe refused a request: %s (%s, param %s)",
            error.code,
            error.http_status,
            error.param,
        )
        raise GatewayUnavailable(f"Stripe refused the request: {error.code}") from error
    except (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError) as error:
        logger.warning("Stripe did not answer usably: %s", type(error).__name__)
        raise GatewayTimeout(f"Stripe: {type(error).__name__} {error.http_status}") from error
    except stripe.StripeError as error:  # authentication, permission: an operator's problem
        logger.error("Stripe refused the request: %s %s", type(error).__name__, error.http_status)
        raise GatewayUnavailable(f"Stripe: {type(error).__name__}") from error


def decline_reason(code: str | None, decline_code: str | None) -> DeclineReason:
    """Stripe's card error codes in the domain's words."""
    if "authentication_required" in (code, decline_code):
        return DeclineReason.AUTHENTICATION_REQUIRED
    if code == "expired_card" or decline_code == "expired_card":
        return DeclineReason.EXPIRED_CARD
    if decline_code == "insufficient_funds":
        return DeclineReason.INSUFFICIENT_FUNDS
    if code == "processing_error":
        return DeclineReason.PROCESSING_ERROR
    if code in ("incorrect_cvc", "invalid_cvc", "incorrect_number", "invalid_number"):
        return DeclineReason.INVALID_CARD
    return DeclineReason.DECLINED


def _payment_of(intent: Any) -> Payment:
    currency = (intent.currency or "").upper()
    if intent.status == "succeeded":
        card = _card_of(intent.payment_method)
        return Payment(PaymentState.SUCCEEDED, intent.id, intent.amount, currency, card=card)
    error = intent.last_payment_error
    if intent.status == "canceled" or (intent.status == "requires_payment_method" and error):
        failure = decline_reason(error.code, error.decline_code) if error else None
        return Payment(
            PaymentState.FAILED,
            intent.id,
            intent.amount,
            currency,
            failure=failure or DeclineReason.DECLINED,
        )
    if intent.status == "requires_payment_method":
        return Payment(PaymentState.UNKNOWN, intent.id)  # never tried with a card
    return Payment(PaymentState.OPEN, intent.id, intent.amount, currency)


def _intent_event(kind: PaymentEventKind, event_id: str, intent: Any) -> PaymentEvent:
    metadata = _metadata(intent)
    payment = _payment_of(intent)
    return PaymentEvent(
        kind,
        event_id,
        metadata.get(TENANT, ""),
        metadata.get(ORDER, ""),
        customer=_id(intent.customer),
        amount_minor=intent.amount,
        currency=(intent.currency or "").upper(),
        reference=intent.id,
        card=payment.card,
        failure=payment.failure if kind == PaymentEventKind.PAYMENT_FAILED else None,
    )


def _setup_event(event_id: str, setup: Any) -> PaymentEvent:
    metadata = _metadata(setup)
    return PaymentEvent(
        PaymentEventKind.CARD_SAVED,
        event_id,
        metadata.get(TENANT, ""),
        metadata.get(SETUP, ""),
        customer=_id(setup.customer),
        card=_card_of(setup.payment_method),
    )


def _reversal_event(
    kind: PaymentEventKind, event_id: str, intent: Any, amount: int, subject: Any
) -> PaymentEvent:
    metadata = _metadata(intent)
    return PaymentEvent(
        kind,
        event_id,
        metadata.get(TENANT, ""),
        metadata.get(ORDER, ""),
        customer=_id(intent.customer),
        amount_minor=amount or 0,
        currency=(subject.currency or "").upper(),
        reference=intent.id,
    )


def _card_of(method: Any) -> CardOnFile | None:
    """A PaymentMethod (expanded) as the card an admin may see; None when it is only an id."""
    if method is None or isinstance(method, str) or getattr(method, "card", None) is None:
        return None
    card = method.card
    return CardOnFile(
        reference=method.id,
        brand=card.brand or "card",
        last4=card.last4 or "",
        expiry_month=card.exp_month or 0,
        expiry_year=card.exp_year or 0,
    )


def _metadata(obj: Any) -> dict[str, str]:
    metadata = getattr(obj, "metadata", None)
    return metadata.to_dict() if metadata is not None else {}


def _id(value: Any) -> str:
    """An expandable field's id, whether it came as an id or as the object."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(getattr(value, "id", "") or "")


def _quoted(value: str) -> str:
    """A value inside a search query's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
