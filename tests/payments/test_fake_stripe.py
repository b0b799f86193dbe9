"""Contract tests of the fake Stripe (tests/fakes/stripe_api.py), driven only through the real
`stripe` SDK (16.1.0, async client) and, for webhooks, `stripe.Webhook.construct_event`.

The fake stands for api.stripe.com in test mode, Stripe Checkout's hosted page and Stripe's
webhook deliveries. The fake's Python hooks play the parts Stripe's users play: the cardholder
on the hosted page, the Dashboard (refunds), the bank (disputes), and the network (faults).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import stripe

ROOT = Path(__file__).resolve().parents[2]
CARD = "4242424242424242"
ORDER = {"order_id": "order-1", "tenant_id": "tenant-a"}


async def a_customer(client: stripe.StripeClient, tenant_id: str = "tenant-a") -> stripe.Customer:
    return await client.v1.customers.create_async(
        {"name": "Contoso", "email": "admin@contoso.example", "metadata": {"tenant_id": tenant_id}}
    )


async def a_payment_session(
    client: stripe.StripeClient, customer_id: str, **extra
) -> stripe.checkout.Session:
    params = {
        "mode": "payment",
        "customer": customer_id,
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 2500,
                    "product_data": {"name": "Communications Credits"},
                },
                "quantity": 2,
            }
        ],
        "success_url": "http://127.0.0.1:3978/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:3978/cancelled",
        "metadata": ORDER,
        "client_reference_id": "order-1",
        "payment_intent_data": {
            "setup_future_usage": "off_session",
            "metadata": ORDER,
            "description": "Communications Credits",
        },
        **extra,
    }
    return await client.v1.checkout.sessions.create_async(params)


async def a_saved_card(client, fake, customer_id: str, card: str = CARD) -> stripe.PaymentMethod:
    """A card saved through a setup-mode Checkout Session, as the product will do it."""
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "setup",
            "currency": "usd",
            "customer": customer_id,
            "success_url": "http://127.0.0.1:3978/saved",
        }
    )
    assert fake.complete_checkout_session(session.id, card).succeeded
    methods = await client.v1.customers.payment_methods.list_async(customer_id, {"type": "card"})
    return methods.data[0]


def off_session_charge(customer_id: str, payment_method: str, amount: int = 5000) -> dict:
    return {
        "amount": amount,
        "currency": "usd",
        "customer": customer_id,
        "payment_method": payment_method,
        "off_session": True,
        "confirm": True,
        "metadata": {"order_id": "auto-1", "tenant_id": "tenant-a"},
    }


# --- customers ------------------------------------------------------------------------------


async def test_a_customer_per_tenant_is_found_by_its_metadata(stripe_client):
    contoso = await a_customer(stripe_client, "tenant-a")
    await a_customer(stripe_client, "tenant-b")

    assert contoso.id.startswith("cus_")
    assert contoso.object == "customer" and contoso.livemode is False
    assert contoso.created > 0 and contoso.metadata.to_dict() == {"tenant_id": "tenant-a"}
    found = await stripe_client.v1.customers.search_async(
        {"query": "metadata['tenant_id']:'tenant-a'"}
    )
    assert [c.id for c in found.data] == [contoso.id]

    updated = await stripe_client.v1.customers.update_async(
        contoso.id, {"metadata": {"plan": "credits"}, "email": "billing@contoso.example"}
    )
    assert updated.metadata.to_dict() == {"tenant_id": "tenant-a", "plan": "credits"}  # merged
    again = await stripe_client.v1.customers.retrieve_async(contoso.id)
    assert again.email == "billing@contoso.example"
    both = await stripe_client.v1.customers.search_async(
        {"query": "metadata['plan']:'credits' AND email:'billing@contoso.example'"}
    )
    assert [c.id for c in both.data] == [contoso.id]


async def test_search_does_not_see_a_write_until_it_is_indexed(stripe_client, fake_stripe):
    fake_stripe.search_lag = 60  # Stripe: "usually under a minute"; never read-after-write
    customer = await a_customer(stripe_client, "tenant-new")
    query = {"query": "metadata['tenant_id']:'tenant-new'"}

    assert (await stripe_client.v1.customers.search_async(query)).data == []
    assert (await stripe_client.v1.customers.retrieve_async(customer.id)).id == customer.id

    fake_stripe.advance(61)
    assert [c.id for c in (await stripe_client.v1.customers.search_async(query)).data] == [
        customer.id
    ]


async def test_a_wrong_secret_key_is_refused(stripe_client_for, fake_stripe):
    client = stripe_client_for(api_key="sk_test_not_the_right_one")
    with pytest.raises(stripe.AuthenticationError) as refused:
        await a_customer(client)
    assert refused.value.http_status == 401
    assert fake_stripe.objects("customer") == []


async def test_unknown_parameters_and_missing_objects_are_invalid_requests(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await stripe_client.v1.customers.create_async({"tenant": "a"})
    assert (unknown.value.http_status, unknown.value.code, unknown.value.param) == (
        400,
        "parameter_unknown",
        "tenant",
    )

    with pytest.raises(stripe.InvalidRequestError) as missing:
        await stripe_client.v1.customers.retrieve_async("cus_nobody")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")

    with pytest.raises(stripe.InvalidRequestError) as bad_locale:
        await a_payment_session(stripe_client, (await a_customer(stripe_client)).id, locale="pt_BR")
    assert bad_locale.value.param == "locale"  # Stripe's locales are "pt-BR", "zh", "fr"…


# --- Checkout: payment mode -----------------------------------------------------------------


async def test_a_payment_session_paid_with_4242_saves_the_card_and_says_so_in_events(
    stripe_client, fake_stripe, webhook_inbox
):
    customer = await a_customer(stripe_client)
    session = await a_payment_session(stripe_client, customer.id, locale="pt-BR")

    assert session.id.startswith("cs_test_")
    assert session.url == f"{fake_stripe.url}/pay/{session.id}"
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert (session.amount_total, session.currency, session.mode) == (5000, "usd", "payment")
    assert session.payment_intent is None  # created when the cardholder pays

    assert fake_stripe.complete_checkout_session(session.id, CARD).succeeded

    paid = await stripe_client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent.payment_method", "line_items"]}
    )
    assert (paid.status, paid.payment_status, paid.customer) == ("complete", "paid", customer.id)
    assert paid.line_items.data[0].quantity == 2
    intent = paid.payment_intent
    assert (intent.status, intent.amount, intent.amount_received) == ("succeeded", 5000, 5000)
    assert intent.metadata.to_dict() == ORDER and intent.setup_future_usage == "off_session"
    card = intent.payment_method.card
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2034)
    assert card.checks.cvc_check == "pass" and card.fingerprint

    charge = await stripe_client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.paid, charge.amount, charge.refunded, charge.disputed) == (
        True,
        5000,
        False,
        False,
    )
    saved = await stripe_client.v1.customers.payment_methods.list_async(
        customer.id, {"type": "card"}
    )
    assert [m.id for m in saved.data] == [intent.payment_method.id]

    await fake_stripe.settle()
    events = webhook_inbox.events()  # each one's signature verified by the SDK
    assert [e.type for e in events] == [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "payment_method.attached",
        "checkout.session.completed",
    ]
    completed = events[-1]
    assert completed.id.startswith("evt_") and completed.api_version == fake_stripe.api_version
    assert completed.data.object.id == session.id
    assert completed.data.object.metadata.to_dict() == ORDER
    assert completed.data.object.payment_intent == intent.id
    assert completed.request.id is None  # made by the cardholder, not by an API request


async def test_a_session_is_found_from_its_payment_intent(stripe_client, fake_stripe):
    session = await a_payment_session(stripe_client, (await a_customer(stripe_client)).id)
    fake_stripe.complete_checkout_session(session.id, CARD)
    intent_id = (await stripe_client.v1.checkout.sessions.retrieve_async(session.id)).payment_intent

    found = await stripe_client.v1.checkout.sessions.list_async({"payment_intent": intent_id})
    assert [s.id for s in found.data] == [session.id]


async def test_a_declined_card_on_the_page_leaves_the_session_open(
    stripe_client, fake_stripe, webhook_inbox
):
    session = await a_payment_session(stripe_client, (await a_customer(stripe_client)).id)

    declined = fake_stripe.complete_checkout_session(session.id, "4000000000000002")
    assert not declined.succeeded
    assert (declined.code, declined.decline_code) == ("card_declined", "generic_decline")
    still = await stripe_client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent"]}
    )
    assert (still.status, still.payment_status) == ("open", "unpaid")
    assert still.payment_intent.status == "requires_payment_method"
    assert still.payment_intent.last_payment_error.decline_code == "generic_decline"

    assert fake_stripe.complete_checkout_session(session.id, CARD).succeeded
    paid = await stripe_client.v1.checkout.sessions.retrieve_async(session.id)
    assert paid.status == "complete" and paid.payment_intent == still.payment_intent.id
    await fake_stripe.settle()
    assert "payment_intent.payment_failed" in webhook_inbox.types()
    assert webhook_inbox.types()[-1] == "checkout.session.completed"


async def test_the_hosted_page_completes_a_session_as_a_browser_would(stripe_client, fake_stripe):
    session = await a_payment_session(stripe_client, (await a_customer(stripe_client)).id)

    async with aiohttp.ClientSession() as browser:
        async with browser.get(session.url) as page:
            html = await page.text()
        assert page.status == 200 and "USD 50.00" in html and 'id="cardNumber"' in html

        form = {
            "email": "payer@contoso.example",
            "cardNumber": "4000 0000 0000 9995",
            "cardExpiry": "12 / 34",
            "cardCvc": "123",
            "billingName": "Ada Admin",
        }
        async with browser.post(session.url, data=form, allow_redirects=False) as declined:
            assert declined.status == 200
            assert "Your card has insufficient funds." in await declined.text()
        reloaded = await stripe_client.v1.checkout.sessions.retrieve_async(session.id)
        assert reloaded.status == "open"

        form["cardNumber"] = "4242 4242 4242 4242"
        async with browser.post(session.url, data=form, allow_redirects=False) as paid:
            assert paid.status == 303
            location = paid.headers["Location"]
    assert location == f"http://127.0.0.1:3978/paid?session={session.id}"
    done = await stripe_client.v1.checkout.sessions.retrieve_async(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.customer_details.email == "payer@contoso.example"
    assert done.customer_details.name == "Ada Admin"


async def test_a_3d_secure_card_passes_on_the_page_and_a_failed_challenge_does_not(
    stripe_client, fake_stripe
):
    customer = await a_customer(stripe_client)
    first = await a_payment_session(stripe_client, customer.id)
    failed = fake_stripe.complete_checkout_session(first.id, "4000002760003184", authenticate=False)
    assert failed.code == "payment_intent_authentication_failure"

    assert fake_stripe.complete_checkout_session(first.id, "4000002760003184").succeeded


# --- Checkout: setup mode and expiry ---------------------------------------------------------


async def test_a_setup_session_saves_a_card_without_charging(
    stripe_client, fake_stripe, webhook_inbox
):
    customer = await a_customer(stripe_client)
    session = await stripe_client.v1.checkout.sessions.create_async(
        {
            "mode": "setup",
            "currency": "usd",
            "customer": customer.id,
            "success_url": "http://127.0.0.1:3978/saved",
            "setup_intent_data": {"metadata": {"tenant_id": "tenant-a"}},
        }
    )
    assert session.amount_total is None and session.setup_intent is None

    assert fake_stripe.complete_checkout_session(session.id, "5555555555554444").succeeded

    done = await stripe_client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["setup_intent"]}
    )
    assert (done.status, done.payment_status) == ("complete", "no_payment_required")
    assert done.payment_intent is None
    assert done.setup_intent.status == "succeeded"
    assert done.setup_intent.metadata.to_dict() == {"tenant_id": "tenant-a"}
    method = await stripe_client.v1.payment_methods.retrieve_async(done.setup_intent.payment_method)
    assert (method.customer, method.card.brand, method.card.last4) == (
        customer.id,
        "mastercard",
        "4444",
    )
    assert fake_stripe.objects("charge") == []
    await fake_stripe.settle()
    assert webhook_inbox.types()[-3:] == [
        "payment_method.attached",
        "setup_intent.succeeded",
        "checkout.session.completed",
    ]


async def test_sessions_expire_through_the_api_and_with_time(
    stripe_client, fake_stripe, webhook_inbox
):
    customer = await a_customer(stripe_client)
    first = await a_payment_session(stripe_client, customer.id)
    expired = await stripe_client.v1.checkout.sessions.expire_async(first.id)
    assert (expired.status, expired.url) == ("expired", None)
    with pytest.raises(stripe.InvalidRequestError):
        await stripe_client.v1.checkout.sessions.expire_async(first.id)
    assert not fake_stripe.complete_checkout_session(first.id, CARD).succeeded

    second = await a_payment_session(stripe_client, customer.id, expires_at=int(time.time()) + 3600)
    fake_stripe.advance(3601)
    later = await stripe_client.v1.checkout.sessions.retrieve_async(second.id)
    assert later.status == "expired"

    await fake_stripe.settle()
    expired_ids = [e.data.object.id for e in webhook_inbox.events() if e.type.endswith("expired")]
    assert expired_ids == [first.id, second.id]


# --- off-session PaymentIntents --------------------------------------------------------------


async def test_a_saved_card_is_charged_off_session(stripe_client, fake_stripe):
    customer = await a_customer(stripe_client)
    method = await a_saved_card(stripe_client, fake_stripe, customer.id)

    intent = await stripe_client.v1.payment_intents.create_async(
        off_session_charge(customer.id, method.id)
    )

    assert intent.id.startswith("pi_") and intent.status == "succeeded"
    assert intent.latest_charge.startswith("ch_")
    charge = await stripe_client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.amount, charge.payment_method, charge.customer) == (5000, method.id, customer.id)
    found = await stripe_client.v1.payment_intents.search_async(
        {"query": "metadata['order_id']:'auto-1' AND status:'succeeded'"}
    )
    assert [i.id for i in found.data] == [intent.id]
    listed = await stripe_client.v1.payment_intents.list_async({"customer": customer.id})
    assert intent.id in [i.id for i in listed.data]


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", None),
        ("pm_card_chargeDeclinedProcessingError", "processing_error", None),
    ],
)
async def test_an_off_session_decline_is_a_card_error_holding_the_payment_intent(
    stripe_client, fake_stripe, webhook_inbox, payment_method, code, decline_code
):
    customer = await a_customer(stripe_client)

    with pytest.raises(stripe.CardError) as declined:
        await stripe_client.v1.payment_intents.create_async(
            off_session_charge(customer.id, payment_method)
        )

    error = declined.value
    assert (error.http_status, error.code, error.error.decline_code) == (402, code, decline_code)
    assert error.error.type == "card_error"
    intent = error.error.payment_intent
    assert intent.id.startswith("pi_") and intent.status == "requires_payment_method"
    stored = await stripe_client.v1.payment_intents.retrieve_async(intent.id)
    assert stored.last_payment_error.code == code
    charge = await stripe_client.v1.charges.retrieve_async(stored.latest_charge)
    assert (charge.status, charge.failure_code) == ("failed", code)
    await fake_stripe.settle()
    failed = [e for e in webhook_inbox.events() if e.type == "payment_intent.payment_failed"]
    assert [e.data.object.id for e in failed] == [intent.id]


async def test_a_card_that_needs_authentication_fails_off_session(stripe_client, fake_stripe):
    customer = await a_customer(stripe_client)
    method = await a_saved_card(stripe_client, fake_stripe, customer.id, "4000002760003184")

    with pytest.raises(stripe.CardError) as declined:
        await stripe_client.v1.payment_intents.create_async(
            off_session_charge(customer.id, method.id)
        )
    assert declined.value.code == "authentication_required"
    assert declined.value.error.payment_intent.status == "requires_payment_method"

    on_session = await stripe_client.v1.payment_intents.create_async(
        {
            "amount": 5000,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
        }
    )
    assert on_session.status == "requires_action"
    assert on_session.next_action.type == "use_stripe_sdk"


async def test_a_saved_card_can_fail_later_for_lack_of_funds(stripe_client, fake_stripe):
    customer = await a_customer(stripe_client)
    method = await a_saved_card(stripe_client, fake_stripe, customer.id, "4000000000009995")

    with pytest.raises(stripe.CardError) as declined:
        await stripe_client.v1.payment_intents.create_async(
            off_session_charge(customer.id, method.id)
        )
    assert declined.value.error.decline_code == "insufficient_funds"


async def test_payment_methods_are_listed_detached_and_then_unusable(stripe_client, fake_stripe):
    customer = await a_customer(stripe_client)
    method = await a_saved_card(stripe_client, fake_stripe, customer.id)

    by_customer = await stripe_client.v1.customers.payment_methods.list_async(
        customer.id, {"type": "card"}
    )
    by_filter = await stripe_client.v1.payment_methods.list_async(
        {"customer": customer.id, "type": "card"}
    )
    assert [m.id for m in by_customer.data] == [m.id for m in by_filter.data] == [method.id]

    detached = await stripe_client.v1.payment_methods.detach_async(method.id)
    assert detached.customer is None
    left = await stripe_client.v1.customers.payment_methods.list_async(customer.id)
    assert left.data == []
    with pytest.raises(stripe.InvalidRequestError) as unusable:
        await stripe_client.v1.payment_intents.create_async(
            off_session_charge(customer.id, method.id)
        )
    assert unusable.value.param == "payment_method"


async def test_an_unknown_expansion_is_refused(stripe_client):
    customer = await a_customer(stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await stripe_client.v1.customers.retrieve_async(customer.id, {"expand": ["sources"]})
    assert refused.value.param == "expand"


# --- idempotency ----------------------------------------------------------------------------


async def test_a_key_replays_the_first_answer(stripe_client, fake_stripe):
    customer = await a_customer(stripe_client)
    method = await a_saved_card(stripe_client, fake_stripe, customer.id)
    params = off_session_charge(customer.id, method.id)
    key = {"idempotency_key": "order-1-charge"}

    first = await stripe_client.v1.payment_intents.create_async(params, key)
    again = await stripe_client.v1.payment_intents.create_async(params, key)

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(fake_stripe.objects("payment_intent")) == 1
    assert len(fake_stripe.objects("charge")) == 1


async def test_a_declined_charge_is_replayed_not_retried(stripe_client, fake_stripe):
    customer = await a_customer(stripe_client)
    params = off_session_charge(customer.id, "pm_card_chargeDeclined")
    key = {"idempotency_key": "order-2-charge"}

    with pytest.raises(stripe.CardError) as first:
        await stripe_client.v1.payment_intents.create_async(params, key)
    with pytest.raises(stripe.CardError) as again:
        await stripe_client.v1.payment_intents.create_async(params, key)

    assert again.value.error.payment_intent.id == first.value.error.payment_intent.id
    assert again.value.headers["Idempotent-Replayed"] == "true"
    assert len(fake_stripe.objects("charge")) == 1


async def test_a_key_with_other_parameters_is_an_idempotency_error(stripe_client):
    customer = await a_customer(stripe_client)
    params = off_session_charge(customer.id, "pm_card_visa")
    await stripe_client.v1.payment_intents.create_async(params, {"idempotency_key": "k-3"})

    with pytest.raises(stripe.IdempotencyError) as mismatch:
        await stripe_client.v1.payment_intents.create_async(
            {**params, "amount": 6000}, {"idempotency_key": "k-3"}
        )
    assert mismatch.value.http_status == 400
    assert mismatch.value.error.type == "idempotency_error"


async def test_after_pruning_the_same_key_makes_a_new_payment(stripe_client, fake_stripe):
    customer = await a_customer(stripe_client)
    params = off_session_charge(customer.id, "pm_card_visa")
    first = await stripe_client.v1.payment_intents.create_async(params, {"idempotency_key": "k-4"})

    assert fake_stripe.prune_idempotency_keys() >= 1  # Stripe: keys at least 24 hours old

    second = await stripe_client.v1.payment_intents.create_async(params, {"idempotency_key": "k-4"})
    assert second.id != first.id
    assert "Idempotent-Replayed" not in second.last_response.headers
    assert len(fake_stripe.objects("charge")) == 2  # charged twice: recovery must look it up


async def test_a_key_still_in_flight_is_in_use(stripe_client_for, fake_stripe):
    customer = await a_customer(stripe_client_for())
    params = off_session_charge(customer.id, "pm_card_visa")
    fake_stripe.hang_next(1, 0.6, stage="during", path="/v1/payment_intents")
    key = {"idempotency_key": "k-5"}

    slow = asyncio.create_task(stripe_client_for().v1.payment_intents.create_async(params, key))
    await asyncio.sleep(0.2)
    with pytest.raises(stripe.APIError) as in_use:
        await stripe_client_for().v1.payment_intents.create_async(params, key)
    assert (in_use.value.http_status, in_use.value.error.code) == (409, "idempotency_key_in_use")

    patient = stripe_client_for(max_network_retries=3)  # the SDK retries 409s
    assert (await patient.v1.payment_intents.create_async(params, key)).id == (await slow).id
    assert len(fake_stripe.objects("payment_intent")) == 1


# --- the SDK's retries ----------------------------------------------------------------------


async def test_the_sdk_retries_a_500_with_its_own_key_and_makes_one_object(
    stripe_client_for, fake_stripe
):
    client = stripe_client_for(max_network_retries=2)
    fake_stripe.fail_next(1, 500, path="/v1/customers")

    customer = await a_customer(client)

    posts = fake_stripe.calls("POST", "/v1/customers")
    assert [p.status for p in posts] == [500, 200]
    assert posts[0].idempotency_key and posts[0].idempotency_key == posts[1].idempotency_key
    assert [c["id"] for c in fake_stripe.objects("customer")] == [customer.id]


async def test_a_stripe_client_does_not_retry_unless_told(stripe_client, fake_stripe):
    fake_stripe.fail_next(1, 500, path="/v1/customers")

    with pytest.raises(stripe.APIError) as outage:
        await a_customer(stripe_client)
    assert outage.value.http_status == 500
    assert len(fake_stripe.calls("POST", "/v1/customers")) == 1


async def test_rate_limits_are_not_retried_but_lock_timeouts_are(stripe_client_for, fake_stripe):
    client = stripe_client_for(max_network_retries=2)
    fake_stripe.fail_next(1, 429, retry_after="1", path="/v1/customers")
    with pytest.raises(stripe.RateLimitError) as limited:
        await a_customer(client)
    assert limited.value.http_status == 429
    assert limited.value.headers["Retry-After"] == "1"
    assert len(fake_stripe.calls("POST", "/v1/customers")) == 1

    fake_stripe.fail_next(1, 429, code="lock_timeout", should_retry=True, path="/v1/customers")
    customer = await a_customer(client)
    assert [p.status for p in fake_stripe.calls("POST", "/v1/customers")] == [429, 429, 200]
    assert customer.id.startswith("cus_")


async def test_a_500_after_the_charge_is_replayed_and_the_payment_is_found_by_metadata(
    stripe_client_for, fake_stripe
):
    client = stripe_client_for(max_network_retries=2)
    customer = await a_customer(client)
    params = off_session_charge(customer.id, "pm_card_visa")
    fake_stripe.fail_next(1, 500, stage="after", path="/v1/payment_intents")

    for _ in range(2):  # Stripe saved the 500 (and says not to retry it): replays repeat it
        with pytest.raises(stripe.APIError) as outage:
            await client.v1.payment_intents.create_async(params, {"idempotency_key": "k-6"})
        assert outage.value.http_status == 500
    assert outage.value.headers["Idempotent-Replayed"] == "true"
    assert len(fake_stripe.calls("POST", "/v1/payment_intents")) == 2

    found = await client.v1.payment_intents.search_async({"query": "metadata['order_id']:'auto-1'"})
    assert [(i.status, i.amount) for i in found.data] == [("succeeded", 5000)]


async def test_a_lost_answer_is_recovered_by_the_sdks_retry(stripe_client_for, fake_stripe):
    client = stripe_client_for(max_network_retries=2, timeout=0.5)
    customer = await a_customer(client)
    fake_stripe.hang_next(1, 2.0, stage="after", path="/v1/payment_intents")

    intent = await client.v1.payment_intents.create_async(
        off_session_charge(customer.id, "pm_card_visa")
    )

    posts = fake_stripe.calls("POST", "/v1/payment_intents")
    assert [p.replayed for p in posts] == [False, True]
    assert [i["id"] for i in fake_stripe.objects("payment_intent")] == [intent.id]


async def test_a_hang_without_retries_is_a_connection_error(stripe_client_for, fake_stripe):
    client = stripe_client_for(timeout=0.3)
    fake_stripe.hang_next(1, 1.0, path="/v1/customers")

    with pytest.raises(stripe.APIConnectionError):
        await a_customer(client)
    assert fake_stripe.objects("customer") == []


# --- refunds and disputes -------------------------------------------------------------------


async def paid_charge(client, fake) -> stripe.Charge:
    session = await a_payment_session(client, (await a_customer(client)).id)
    fake.complete_checkout_session(session.id, CARD)
    intent_id = (await client.v1.checkout.sessions.retrieve_async(session.id)).payment_intent
    intent = await client.v1.payment_intents.retrieve_async(
        intent_id, {"expand": ["latest_charge"]}
    )
    return intent.latest_charge


async def test_refunds_show_on_the_charge_and_in_events(stripe_client, fake_stripe, webhook_inbox):
    charge = await paid_charge(stripe_client, fake_stripe)

    fake_stripe.refund_charge(charge.id, amount=1000)
    partly = await stripe_client.v1.charges.retrieve_async(charge.id)
    assert (partly.amount_refunded, partly.refunded) == (1000, False)

    refund = await stripe_client.v1.refunds.create_async(
        {"payment_intent": charge.payment_intent, "reason": "requested_by_customer"}
    )
    assert refund.id.startswith("re_") and refund.amount == 4000
    whole = await stripe_client.v1.charges.retrieve_async(charge.id)
    assert (whole.amount_refunded, whole.refunded) == (5000, True)
    with pytest.raises(stripe.InvalidRequestError) as again:
        await stripe_client.v1.refunds.create_async({"charge": charge.id})
    assert again.value.code == "charge_already_refunded"

    await fake_stripe.settle()
    refunded = [e for e in webhook_inbox.events() if e.type == "charge.refunded"]
    assert [e.data.object.amount_refunded for e in refunded] == [1000, 5000]
    assert refunded[0].data.previous_attributes.amount_refunded == 0


async def test_a_dispute_marks_the_charge_and_is_announced(
    stripe_client, fake_stripe, webhook_inbox
):
    charge = await paid_charge(stripe_client, fake_stripe)

    dispute = fake_stripe.open_dispute(charge.id)

    assert (await stripe_client.v1.charges.retrieve_async(charge.id)).disputed is True
    fetched = await stripe_client.v1.disputes.retrieve_async(dispute["id"])
    assert (fetched.status, fetched.amount, fetched.charge) == ("needs_response", 5000, charge.id)
    await fake_stripe.settle()
    created = [e for e in webhook_inbox.events() if e.type == "charge.dispute.created"]
    assert [e.data.object.charge for e in created] == [charge.id]


# --- webhooks -------------------------------------------------------------------------------


async def test_a_wrong_secret_or_a_stale_timestamp_fails_verification(
    stripe_client, fake_stripe, webhook_inbox
):
    await a_customer(stripe_client)
    await fake_stripe.settle()
    event_id = webhook_inbox.events()[0].id

    await fake_stripe.deliver(event_id, secret="whsec_not_the_endpoints")
    await fake_stripe.deliver(event_id, timestamp=int(time.time()) - 600)

    forged, stale = webhook_inbox.received[1:]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(forged.body, forged.signature, webhook_inbox.secret)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(stale.body, stale.signature, webhook_inbox.secret)
    with pytest.raises(stripe.SignatureVerificationError):  # the body is what was signed
        stripe.Webhook.construct_event(
            webhook_inbox.received[0].body + b" ",
            webhook_inbox.received[0].signature,
            webhook_inbox.secret,
        )


async def test_while_a_secret_is_rolled_both_secrets_verify(
    stripe_client, fake_stripe, webhook_inbox
):
    old = webhook_inbox.secret
    new = fake_stripe.roll_webhook_secret(webhook_inbox.endpoint_id)

    await a_customer(stripe_client)
    await fake_stripe.settle()

    delivery = webhook_inbox.received[0]
    assert len(re.findall(r"v1=", delivery.signature)) == 2
    for secret in (old, new):
        assert stripe.WebhookSignature.verify_header(delivery.body, delivery.signature, secret)


async def test_held_webhooks_arrive_late_out_of_order_and_twice(
    stripe_client, fake_stripe, webhook_inbox
):
    fake_stripe.hold_webhooks()
    first = await a_customer(stripe_client, "tenant-1")
    second = await a_customer(stripe_client, "tenant-2")
    await fake_stripe.settle()
    assert webhook_inbox.received == []

    fake_stripe.release_webhooks("reversed")
    await fake_stripe.settle()
    assert [e.data.object.id for e in webhook_inbox.events()] == [second.id, first.id]

    await fake_stripe.deliver(webhook_inbox.events()[0].id, times=2)
    ids = [e.id for e in webhook_inbox.events()]
    assert len(ids) == 4 and ids[2] == ids[3] == ids[0]


async def test_lost_webhooks_are_still_readable_as_events(
    stripe_client, fake_stripe, webhook_inbox
):
    fake_stripe.hold_webhooks()
    customer = await a_customer(stripe_client)
    assert fake_stripe.drop_held_webhooks() == 1
    await fake_stripe.settle()
    assert webhook_inbox.received == []

    listed = await stripe_client.v1.events.list_async({"type": "customer.created"})
    assert [e.data.object.id for e in listed.data] == [customer.id]
    event = await stripe_client.v1.events.retrieve_async(listed.data[0].id)
    assert event.type == "customer.created" and event.pending_webhooks == 1
    assert event.request.id  # the API request that created the customer


async def test_a_failed_delivery_stays_pending_until_redelivered(
    stripe_client, fake_stripe, webhook_inbox
):
    webhook_inbox.status = 500
    await a_customer(stripe_client)
    await fake_stripe.settle()
    event_id = webhook_inbox.events()[0].id
    assert (await stripe_client.v1.events.retrieve_async(event_id)).pending_webhooks == 1

    webhook_inbox.status = 200
    assert fake_stripe.redeliver_failed_webhooks() == 1
    await fake_stripe.settle()
    assert (await stripe_client.v1.events.retrieve_async(event_id)).pending_webhooks == 0


# --- standalone -----------------------------------------------------------------------------


async def test_the_fake_runs_standalone_for_other_processes():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.stripe_api",
        "--port",
        "0",
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    http_client = stripe.AIOHTTPClient()
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), timeout=20)
        url = re.search(r"listening on (\S+)", line.decode()).group(1)
        from tests.fakes.stripe_api import TEST_SECRET_KEY

        client = stripe.StripeClient(
            TEST_SECRET_KEY, base_addresses={"api": url}, http_client=http_client
        )
        customer = await a_customer(client)
        paid, left = [await a_payment_session(client, customer.id) for _ in range(2)]
        async with aiohttp.ClientSession(
            base_url=url, headers={"Authorization": f"Bearer {TEST_SECRET_KEY}"}
        ) as control:
            done = await control.post(
                f"/_fake/checkout/sessions/{paid.id}/complete", json={"card": CARD}
            )
            assert (await done.json())["succeeded"] is True
            fault = await control.post(
                "/_fake/faults", json={"status": 503, "path": "/v1/customers"}
            )
            assert fault.status == 200
            with pytest.raises(stripe.APIError):
                await client.v1.customers.retrieve_async(customer.id)
            later = await control.post("/_fake/clock/advance", json={"seconds": 24 * 3600 + 1})
            assert later.status == 200
            seen = await (await control.get("/_fake/requests")).json()
        assert (await client.v1.checkout.sessions.retrieve_async(paid.id)).status == "complete"
        assert (await client.v1.checkout.sessions.retrieve_async(left.id)).status == "expired"
        assert [r["status"] for r in seen if r["path"] == f"/v1/customers/{customer.id}"] == [503]
    finally:
        await http_client.close_async()
        process.terminate()
        await process.wait()
