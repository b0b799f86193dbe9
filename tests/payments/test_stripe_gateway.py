"""The Stripe gateway (payments/stripe_gateway.py) against the fake Stripe on loopback.

The fake (tests/fakes/stripe_api.py) stands for api.stripe.com in test mode, Stripe Checkout's
hosted page and Stripe's webhook deliveries; the gateway talks to it through the real `stripe`
SDK, pointed there with the SDK's own base-address setting. The fake's hooks play the parts of
the cardholder (on the hosted page), the Dashboard (refunds), the bank (disputes) and the
network (faults).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from credits.payments import (
    ChargeRequest,
    CheckoutMode,
    CheckoutRequest,
    DeclineReason,
    GatewayTimeout,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidEvent,
    LookUp,
    PaymentDeclined,
    PaymentEventKind,
    PaymentGateway,
    PaymentState,
    ReturnPages,
)
from payments.stripe_gateway import StripeGateway, checkout_locale, decline_reason

TENANT = "00000000-0000-0000-0000-0000000000001"
RETURNS = ReturnPages(
    "http://127.0.0.1:3978/payments/done", "http://127.0.0.1:3978/payments/cancelled"
)


@pytest.fixture
async def gateway(fake_stripe, webhook_inbox):
    made = StripeGateway.connect(
        fake_stripe.api_key,
        webhook_secret=webhook_inbox.secret,
        returns=RETURNS,
        api_base=fake_stripe.url,
    )
    yield made
    await made.close()


def a_page(customer: str, key: str = "order-1", **changes) -> CheckoutRequest:
    fields = dict(
        tenant_id=TENANT,
        customer=customer,
        key=key,
        mode=CheckoutMode.PAYMENT,
        locale="pt-BR",
        expires_at=datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1),
        amount_minor=50000,
        currency="USD",
        save_card=True,
        description="Communications Credits purchase",
    )
    return CheckoutRequest(**{**fields, **changes})


def a_charge(customer: str, card: str, key: str = "recharge-1", amount: int = 10000):
    return ChargeRequest(TENANT, customer, card, key, amount, "USD", "Communications Credits")


async def events_of(fake_stripe, webhook_inbox, gateway, type_: str):
    """The deliveries of one event type, as the gateway reads them (signature verified)."""
    await fake_stripe.settle()
    return [
        await gateway.event_from(item.body, item.signature)
        for item, event in zip(webhook_inbox.received, webhook_inbox.events(), strict=True)
        if event.type == type_
    ]


def test_it_is_a_payment_gateway(gateway) -> None:
    port: PaymentGateway = gateway
    assert port is gateway


async def test_one_customer_per_tenant_with_the_tenant_in_its_metadata(gateway, fake_stripe):
    first = await gateway.create_customer(TENANT)
    again = await gateway.create_customer(TENANT)  # a repeat within Stripe's 24 hours
    assert first == again and first.startswith("cus_")
    [customer] = fake_stripe.objects("customer")
    assert customer["metadata"] == {"tenant_id": TENANT}
    assert [c.idempotency_key for c in fake_stripe.calls("POST", "/v1/customers")] == [
        f"customer-{TENANT}"
    ] * 2


async def test_a_payment_page_is_made_once_per_order_in_the_admins_language(gateway, fake_stripe):
    customer = await gateway.create_customer(TENANT)
    request = a_page(customer)

    checkout = await gateway.start_checkout(request)
    again = await gateway.start_checkout(request)

    assert again == checkout and checkout.url == f"{fake_stripe.url}/pay/{checkout.reference}"
    [session] = fake_stripe.objects("checkout.session")
    assert (session["mode"], session["locale"], session["amount_total"], session["currency"]) == (
        "payment",
        "pt-BR",
        50000,
        "usd",
    )
    assert session["metadata"] == {"tenant_id": TENANT, "order_key": "order-1"}
    assert session["expires_at"] == int(request.expires_at.timestamp())
    assert session["success_url"] == RETURNS.success + "?lang=pt-BR&mode=payment"
    assert session["customer"] == customer
    with pytest.raises(IdempotencyConflict):
        await gateway.start_checkout(a_page(customer, amount_minor=60000))


async def test_a_paid_page_is_found_and_its_event_names_the_order_and_the_kept_card(
    gateway, fake_stripe, webhook_inbox
):
    customer = await gateway.create_customer(TENANT)
    checkout = await gateway.start_checkout(a_page(customer))
    assert (await gateway.look_up(LookUp(TENANT, "order-1", checkout.reference))).state == (
        PaymentState.OPEN
    )

    assert fake_stripe.complete_checkout_session(checkout.reference, "5555555555554444").succeeded

    found = await gateway.look_up(LookUp(TENANT, "order-1", checkout=checkout.reference))
    assert (found.state, found.amount_minor, found.currency) == (
        PaymentState.SUCCEEDED,
        50000,
        "USD",
    )
    assert found.reference.startswith("pi_") and found.card.last4 == "4444"
    [completed] = await events_of(fake_stripe, webhook_inbox, gateway, "checkout.session.completed")
    assert (completed.kind, completed.tenant_id, completed.key) == (
        PaymentEventKind.PAID,
        TENANT,
        "order-1",
    )
    assert (completed.amount_minor, completed.currency, completed.customer) == (
        50000,
        "USD",
        customer,
    )
    assert completed.reference == found.reference and completed.checkout == checkout.reference
    assert (completed.card.brand, completed.card.last4, completed.card.expiry_year) == (
        "mastercard",
        "4444",
        2034,
    )
    [succeeded] = await events_of(fake_stripe, webhook_inbox, gateway, "payment_intent.succeeded")
    assert (succeeded.kind, succeeded.key, succeeded.amount_minor) == (
        PaymentEventKind.PAID,
        "order-1",
        50000,
    )
    # The card was kept (setup_future_usage): it is the customer's now.
    [kept] = await gateway.saved_cards(TENANT, customer)
    assert kept == completed.card


async def test_an_expired_page_is_said_so(gateway, fake_stripe, webhook_inbox):
    customer = await gateway.create_customer(TENANT)
    checkout = await gateway.start_checkout(a_page(customer))
    fake_stripe.expire_checkout_session(checkout.reference)
    found = await gateway.look_up(LookUp(TENANT, "order-1", checkout=checkout.reference))
    assert found.state == PaymentState.EXPIRED
    [expired] = await events_of(fake_stripe, webhook_inbox, gateway, "checkout.session.expired")
    assert (expired.kind, expired.key, expired.checkout) == (
        PaymentEventKind.CHECKOUT_EXPIRED,
        "order-1",
        checkout.reference,
    )


async def test_a_setup_page_saves_a_card_and_says_which(gateway, fake_stripe, webhook_inbox):
    customer = await gateway.create_customer(TENANT)
    checkout = await gateway.start_checkout(
        a_page(customer, "setup-1", mode=CheckoutMode.SETUP, amount_minor=0, currency="")
    )
    [session] = fake_stripe.objects("checkout.session")
    assert (session["mode"], session["metadata"]) == (
        "setup",
        {"tenant_id": TENANT, "setup_key": "setup-1"},
    )

    assert fake_stripe.complete_checkout_session(checkout.reference, "4000002760003184").succeeded

    saved = await events_of(fake_stripe, webhook_inbox, gateway, "setup_intent.succeeded")
    completed = await events_of(fake_stripe, webhook_inbox, gateway, "checkout.session.completed")
    for event in (*saved, *completed):
        assert (event.kind, event.tenant_id, event.key) == (
            PaymentEventKind.CARD_SAVED,
            TENANT,
            "setup-1",
        )
        assert event.card.last4 == "3184"


async def test_a_saved_card_is_charged_off_session_once_per_key(gateway, fake_stripe):
    customer = await gateway.create_customer(TENANT)
    card = fake_stripe.attach_card(customer)["id"]

    first = await gateway.charge_saved_card(a_charge(customer, card))
    again = await gateway.charge_saved_card(a_charge(customer, card))

    assert first == again and first.state == PaymentState.SUCCEEDED
    [intent] = fake_stripe.objects("payment_intent")
    assert intent["metadata"] == {"tenant_id": TENANT, "order_key": "recharge-1"}
    assert [c.idempotency_key for c in fake_stripe.calls("POST", "/v1/payment_intents")] == [
        "charge-recharge-1"
    ] * 2
    with pytest.raises(IdempotencyConflict):
        await gateway.charge_saved_card(a_charge(customer, card, amount=1))
    # Found again by its id, and by the order's key (the answer to a charge can be lost).
    by_key = await gateway.look_up(LookUp(TENANT, "recharge-1"))
    by_id = await gateway.look_up(LookUp(TENANT, "recharge-1", payment=first.reference))
    assert by_key.reference == by_id.reference == first.reference
    assert (await gateway.look_up(LookUp(TENANT, "never-charged"))).state == PaymentState.UNKNOWN


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ("4000002760003184", DeclineReason.AUTHENTICATION_REQUIRED),
        ("4000000000009995", DeclineReason.INSUFFICIENT_FUNDS),
        ("4000000000000341", DeclineReason.DECLINED),
    ],
)
async def test_off_session_declines_are_the_domains_reasons(
    gateway, fake_stripe, webhook_inbox, card, reason
):
    customer = await gateway.create_customer(TENANT)
    method = fake_stripe.attach_card(customer, card)["id"]

    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge_saved_card(a_charge(customer, method))

    assert declined.value.reason == reason and declined.value.reference.startswith("pi_")
    failed = await gateway.look_up(LookUp(TENANT, "recharge-1", payment=declined.value.reference))
    assert (failed.state, failed.failure) == (PaymentState.FAILED, reason)
    [event] = await events_of(fake_stripe, webhook_inbox, gateway, "payment_intent.payment_failed")
    assert (event.kind, event.key, event.failure) == (
        PaymentEventKind.PAYMENT_FAILED,
        "recharge-1",
        reason,
    )


@pytest.mark.parametrize(
    ("code", "decline_code", "reason"),
    [
        ("expired_card", None, DeclineReason.EXPIRED_CARD),
        ("card_declined", "generic_decline", DeclineReason.DECLINED),
        ("card_declined", "insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
        ("processing_error", None, DeclineReason.PROCESSING_ERROR),
        ("incorrect_cvc", None, DeclineReason.INVALID_CARD),
        (
            "authentication_required",
            "authentication_required",
            DeclineReason.AUTHENTICATION_REQUIRED,
        ),
        ("card_declined", "authentication_required", DeclineReason.AUTHENTICATION_REQUIRED),
    ],
)
def test_stripe_decline_codes_in_the_domains_words(code, decline_code, reason):
    assert decline_reason(code, decline_code) == reason


async def test_a_card_removed_at_stripe_is_an_invalid_card(gateway, fake_stripe, stripe_client):
    customer = await gateway.create_customer(TENANT)
    card = fake_stripe.attach_card(customer)["id"]
    await stripe_client.v1.payment_methods.detach_async(card)

    assert await gateway.saved_cards(TENANT, customer) == []
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge_saved_card(a_charge(customer, card))
    assert declined.value.reason == DeclineReason.INVALID_CARD


async def test_outages_are_timeouts_and_a_refused_key_is_unavailable(gateway, fake_stripe):
    customer = await gateway.create_customer(TENANT)
    card = fake_stripe.attach_card(customer)["id"]
    # Three 503s outlast the SDK's two retries (with the same idempotency key).
    fake_stripe.fail_next(3, 503, path="/v1/payment_intents")
    with pytest.raises(GatewayTimeout):
        await gateway.charge_saved_card(a_charge(customer, card))
    assert fake_stripe.objects("payment_intent") == []
    fake_stripe.fail_next(1, 429, path="/v1/payment_intents")
    with pytest.raises(GatewayTimeout):
        await gateway.charge_saved_card(a_charge(customer, card))
    paid = await gateway.charge_saved_card(a_charge(customer, card))  # then it goes through
    assert paid.state == PaymentState.SUCCEEDED

    wrong = StripeGateway.connect(
        "sk_test_wrong", webhook_secret="whsec_x", returns=RETURNS, api_base=fake_stripe.url
    )
    try:
        with pytest.raises(GatewayUnavailable):
            await wrong.create_customer(TENANT)
    finally:
        await wrong.close()


async def test_refunds_and_disputes_name_their_order(gateway, fake_stripe, webhook_inbox):
    customer = await gateway.create_customer(TENANT)
    checkout = await gateway.start_checkout(a_page(customer))
    fake_stripe.complete_checkout_session(checkout.reference)
    paid = await gateway.look_up(LookUp(TENANT, "order-1", checkout=checkout.reference))
    [charge] = fake_stripe.objects("charge")
    fake_stripe.refund_charge(charge["id"], amount=1000)
    fake_stripe.refund_charge(charge["id"], amount=2000)
    other = await gateway.start_checkout(a_page(customer, "order-2"))
    fake_stripe.complete_checkout_session(other.reference, "4000000000000259")  # disputed

    refunds = await events_of(fake_stripe, webhook_inbox, gateway, "charge.refunded")
    assert [(e.kind, e.key, e.amount_minor, e.currency) for e in refunds] == [
        (PaymentEventKind.REFUNDED, "order-1", 1000, "USD"),
        (PaymentEventKind.REFUNDED, "order-1", 3000, "USD"),  # the running total
    ]
    assert refunds[0].reference == paid.reference and refunds[0].tenant_id == TENANT
    [dispute] = await events_of(fake_stripe, webhook_inbox, gateway, "charge.dispute.created")
    assert (dispute.kind, dispute.key, dispute.amount_minor) == (
        PaymentEventKind.DISPUTED,
        "order-2",
        50000,
    )


async def test_a_forged_or_stale_webhook_is_refused_and_others_are_not_used(
    gateway, fake_stripe, webhook_inbox
):
    await gateway.create_customer(TENANT)
    await fake_stripe.settle()
    [created] = webhook_inbox.received
    assert await gateway.event_from(created.body, created.signature) is None  # customer.created
    event_id = webhook_inbox.events()[0].id

    await fake_stripe.deliver(event_id, secret="whsec_somebody_elses")
    await fake_stripe.deliver(event_id, timestamp=int(time.time()) - 301)
    forged, stale = webhook_inbox.received[1:]
    for delivery in (forged, stale):
        with pytest.raises(InvalidEvent):
            await gateway.event_from(delivery.body, delivery.signature)
    with pytest.raises(InvalidEvent):
        await gateway.event_from(created.body + b" ", created.signature)  # the bytes are signed
    with pytest.raises(InvalidEvent):
        await gateway.event_from(created.body, "")


@pytest.mark.parametrize(
    ("tag", "locale"),
    [("en-US", "en"), ("pt-BR", "pt-BR"), ("es-ES", "es"), ("zh-CN", "zh"), ("ru-RU", "ru"),
     ("fr-FR", "fr"), ("de-DE", "auto")],
)  # fmt: skip
def test_checkout_speaks_the_admins_language(tag, locale):
    assert checkout_locale(tag) == locale
