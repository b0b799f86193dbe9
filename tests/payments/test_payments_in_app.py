"""Real payments through the real app: Stripe Checkout, webhooks, recovery, off-session
recharges, refunds and disputes.

The app runs with `PAYMENT_GATEWAY=stripe`, its Stripe client pointed at the fake Stripe on
loopback (tests/fakes/stripe_api.py: the API, the hosted Checkout page and signed webhook
deliveries, which the test holds, drops, repeats or reorders). The fake Bot Connector stands for
Teams; storage is Azurite. The fake's hooks play the cardholder on Stripe's page, the Dashboard
(refunds) and the cardholder's bank (disputes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from app import SERVICES, create_app
from bot.settings import Settings
from credits import ledger
from credits.model import EntryKind, EventKind, OrderStatus
from credits.usage_charging import UsageCharger
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, Chat, choices, open_urls, submit_data
from tests.support.usage_books import Row

TENANT = activities.TENANT
PERSONAL = "a:personal-chat-1"
WEBHOOK_SECRET = "whsec_test_payments_in_app_0123456789abcdef"


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def stripe_settings(azurite, table_prefix, fake_stripe) -> Settings:
    return Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "PAYMENT_GATEWAY": "stripe",
            "STRIPE_SECRET_KEY": fake_stripe.api_key,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": fake_stripe.url,
        }
    )


@pytest.fixture
async def instance(aiohttp_client, stripe_settings, fake_stripe):
    """Makes an instance of the bot on the shared tables, Stripe's webhooks sent to it."""
    endpoints = []

    async def make():
        client = await aiohttp_client(create_app(stripe_settings))
        url = str(client.make_url("/api/payments/stripe"))
        endpoints.append(fake_stripe.add_webhook_endpoint(url, WEBHOOK_SECRET))
        return client

    make.endpoints = endpoints
    return make


@pytest.fixture
async def bot(instance):
    return await instance()


@pytest.fixture
def books(bot):
    async def read():
        repo = bot.app[SERVICES].credits
        account = await repo.get_account(TENANT)
        lots = await repo.list_lots(TENANT)
        entries = await repo.all_entries(TENANT)
        ledger.check_invariant(account.value, lots, entries)
        return account.value, lots, entries

    return read


async def new_card_order(chat: Chat, amount: str = "500", save_card: str = "true") -> str:
    """Add funds with a new card; the id of the Checkout Session its confirmation opens."""
    await chat.say("add funds")
    form = chat.last_card()
    await chat.submit(
        {
            **submit_data(form, "add_funds"),
            "amount": amount,
            "method": "new_card",
            "save_card": save_card,
        }
    )
    [url] = open_urls(chat.last_card())
    return url.rsplit("/", 1)[-1]


def receipts(connector) -> list[dict]:
    return [
        a["content"]
        for p in connector.posted
        for a in p.activity.get("attachments") or []
        if EN("receipt.title") in card_texts(a["content"])
    ]


def event_ids(fake_stripe, type_: str) -> list[str]:
    return [e["id"] for e in fake_stripe.events(type_)]


async def wait_for(connector, msgid: str) -> dict:
    title = EN(msgid)
    async with asyncio.timeout(15):
        while True:
            for p in connector.posted:
                for a in p.activity.get("attachments") or []:
                    if a["content"]["body"][0].get("text") == title:
                        return a["content"]
            await asyncio.sleep(0.05)


# --- a new card on Stripe's hosted page ---------------------------------------------------------


async def test_a_new_card_on_the_hosted_page_is_booked_once_by_its_webhook(
    bot, connector, fake_stripe, books
):
    chat = Chat(bot, connector)
    session_id = await new_card_order(chat)
    confirmation = connector.posted[-1]
    [session] = fake_stripe.objects("checkout.session")
    assert session["id"] == session_id and session["locale"] == "en"
    assert session["metadata"] == {"tenant_id": TENANT, "order_key": session["client_reference_id"]}
    assert (await books())[0].balance_minor == 0

    # The cardholder pays on Stripe's page, as a browser does.
    async with aiohttp.ClientSession() as browser:
        form = {"cardNumber": "4242 4242 4242 4242", "cardExpiry": "12 / 34", "cardCvc": "123"}
        async with browser.post(session["url"], data=form, allow_redirects=False) as paid:
            assert paid.status == 303
            assert "/payments/done?lang=en-US&mode=payment" in paid.headers["Location"]
    await fake_stripe.settle()

    assert all(d.status == 200 for d in fake_stripe.webhooks.deliveries)
    update, receipt = connector.posted[-2:]
    assert (update.method, update.activity_id) == ("PUT", confirmation.activity_id)
    assert EN("confirm.paid_title") in card_texts(update.activity["attachments"][0]["content"])
    assert receipt.method == "POST" and len(receipts(connector)) == 1
    account, lots, entries = await books()
    assert (account.balance_minor, len(lots), len(entries)) == (50000, 1, 1)
    [card] = account.cards  # kept at Stripe: the customer's PaymentMethod
    assert (card.brand, card.last4, card.saved) == ("visa", "4242", True)
    assert card.token == fake_stripe.objects("payment_method")[0]["id"]
    [customer] = fake_stripe.objects("customer")
    assert (
        account.payment_customer == customer["id"] and customer["metadata"]["tenant_id"] == TENANT
    )
    order = (await bot.app[SERVICES].credits.get_order(TENANT, entries[0].reference)).value
    assert order.checkout_reference == session_id
    assert order.gateway_reference == fake_stripe.objects("payment_intent")[0]["id"]


async def test_the_same_webhook_three_times_and_out_of_order_books_once(
    bot, connector, fake_stripe, books
):
    chat = Chat(bot, connector)
    fake_stripe.hold_webhooks()
    session_id = await new_card_order(chat)
    fake_stripe.complete_checkout_session(session_id)

    fake_stripe.release_webhooks("reversed")  # checkout.session.completed first
    await fake_stripe.settle()
    [completed] = event_ids(fake_stripe, "checkout.session.completed")
    [succeeded] = event_ids(fake_stripe, "payment_intent.succeeded")
    deliveries = await fake_stripe.deliver(completed, times=3)
    deliveries += await fake_stripe.deliver(succeeded, times=2)

    assert {d.status for d in deliveries} == {200}
    account, lots, entries = await books()
    assert (account.balance_minor, len(lots), len(entries)) == (50000, 1, 1)
    assert len(receipts(connector)) == 1


async def test_two_instances_receiving_the_same_webhook_at_once_book_once(
    instance, connector, fake_stripe
):
    first, second = await instance(), await instance()
    chat = Chat(first, connector)
    fake_stripe.hold_webhooks()
    session_id = await new_card_order(chat)
    fake_stripe.complete_checkout_session(session_id)
    fake_stripe.drop_held_webhooks()
    ids = [
        *event_ids(fake_stripe, "checkout.session.completed"),
        *event_ids(fake_stripe, "payment_intent.succeeded"),
    ]

    deliveries = await asyncio.gather(
        *(
            fake_stripe.deliver(event_id, endpoint_id=endpoint.id)
            for event_id in ids
            for endpoint in instance.endpoints
            for _ in range(2)
        )
    )

    assert {d.status for batch in deliveries for d in batch} == {200}
    repo = second.app[SERVICES].credits
    account = (await repo.get_account(TENANT)).value
    lots, entries = await repo.list_lots(TENANT), await repo.all_entries(TENANT)
    ledger.check_invariant(account, lots, entries)
    assert (account.balance_minor, len(lots), len(entries)) == (50000, 1, 1)
    assert len(receipts(connector)) == 1


async def test_a_lost_webhook_is_booked_by_the_recovery_job(bot, connector, fake_stripe, books):
    chat = Chat(bot, connector)
    fake_stripe.hold_webhooks()
    session_id = await new_card_order(chat)
    fake_stripe.complete_checkout_session(session_id)
    assert fake_stripe.drop_held_webhooks() > 0
    assert (await books())[0].balance_minor == 0

    services = bot.app[SERVICES]
    outcomes = await services.orders.recover(TENANT, older_than=timedelta(0))
    await services.payments.recovered(outcomes)

    assert [o.status for o in outcomes] == [OrderStatus.SUCCEEDED]
    account, lots, _ = await books()
    assert (account.balance_minor, len(lots)) == (50000, 1)
    assert len(receipts(connector)) == 1
    # Stripe was asked about the order's own session, by its id.
    assert fake_stripe.calls("GET", f"/v1/checkout/sessions/{session_id}")


async def test_a_forged_or_stale_signature_is_refused_and_books_nothing(
    bot, connector, fake_stripe, books
):
    chat = Chat(bot, connector)
    fake_stripe.hold_webhooks()
    session_id = await new_card_order(chat)
    fake_stripe.complete_checkout_session(session_id)
    fake_stripe.drop_held_webhooks()
    [completed] = event_ids(fake_stripe, "checkout.session.completed")

    forged = await fake_stripe.deliver(completed, secret="whsec_an_attackers_guess")
    stale = await fake_stripe.deliver(completed, timestamp=int(time.time()) - 301)
    unsigned = await bot.post(
        "/api/payments/stripe", data=b'{"type": "checkout.session.completed"}'
    )

    assert [d.status for d in forged + stale] == [400, 400] and unsigned.status == 400
    assert (await books())[0].balance_minor == 0
    assert receipts(connector) == []
    # The genuine delivery still books it.
    assert [d.status for d in await fake_stripe.deliver(completed)] == [200]
    assert (await books())[0].balance_minor == 50000


async def test_unknown_tenants_other_amounts_and_other_currencies_change_nothing(
    bot, connector, fake_stripe, books, stripe_client, caplog
):
    caplog.set_level(logging.WARNING, logger="credits.payment_events")
    chat = Chat(bot, connector)
    session_id = await new_card_order(chat)
    [session] = fake_stripe.objects("checkout.session")
    order_key = session["metadata"]["order_key"]
    customer = session["customer"]

    async def paid_session(metadata: dict, amount: int = 50000, currency: str = "usd") -> None:
        made = await stripe_client.v1.checkout.sessions.create_async(
            {
                "mode": "payment",
                "customer": customer,
                "line_items": [
                    {
                        "price_data": {
                            "currency": currency,
                            "unit_amount": amount,
                            "product_data": {"name": "Communications Credits"},
                        },
                        "quantity": 1,
                    }
                ],
                "success_url": "http://127.0.0.1/done",
                "metadata": metadata,
                "payment_intent_data": {"metadata": metadata},
            }
        )
        assert fake_stripe.complete_checkout_session(made.id).succeeded

    await paid_session({"tenant_id": "tenant-nobody", "order_key": order_key})
    await paid_session({"tenant_id": TENANT, "order_key": "an-order-never-placed"})
    await paid_session({"tenant_id": TENANT, "order_key": order_key}, amount=100)
    await paid_session({"tenant_id": TENANT, "order_key": order_key}, currency="eur")
    await fake_stripe.settle()

    assert {d.status for d in fake_stripe.webhooks.deliveries} == {200}
    account, lots, _ = await books()
    assert (account.balance_minor, lots) == (0, [])
    assert receipts(connector) == []
    logged = caplog.text
    for why in ("unknown tenant", "never placed", "100 USD paid", "50000 EUR paid"):
        assert why in logged
    # The order is still waiting for its own page, which books it.
    fake_stripe.complete_checkout_session(session_id)
    await fake_stripe.settle()
    assert (await books())[0].balance_minor == 50000


async def test_a_declined_card_leaves_the_page_open_and_an_expired_page_fails_the_order(
    bot, connector, fake_stripe, books
):
    chat = Chat(bot, connector)
    session_id = await new_card_order(chat)
    confirmation = connector.posted[-1]
    assert not fake_stripe.complete_checkout_session(session_id, "4000000000000002").succeeded
    await fake_stripe.settle()
    assert connector.posted[-1] is confirmation  # payment_intent.payment_failed: nothing to say

    fake_stripe.expire_checkout_session(session_id)
    await fake_stripe.settle()

    update = connector.posted[-1]
    assert (update.method, update.activity_id) == ("PUT", confirmation.activity_id)
    texts = card_texts(update.activity["attachments"][0]["content"])
    assert EN("failed.title") in texts and EN("failed.reason.checkout_expired") in texts
    assert (await books())[0].balance_minor == 0
    [order] = [o.value for o in await bot.app[SERVICES].credits.pending_orders(TENANT)] or [None]
    assert order is None  # failed, not pending


async def test_a_card_declined_on_stripes_page_is_never_offered(bot, connector, fake_stripe):
    """Issue 14: a declined card must not join the saved cards. Stripe attaches a card to the
    Customer only once a payment (or a setup) with it succeeded; the lists come from there."""
    chat = Chat(bot, connector)
    session_id = await new_card_order(chat)
    assert not fake_stripe.complete_checkout_session(session_id, "4000000000000002").succeeded
    await fake_stripe.settle()

    for command in ("add funds", "auto-recharge"):
        await chat.say(command)
        offered = [c["title"] for c in choices(chat.last_card(), "method") or []]
        assert not any("0002" in title for title in offered), (command, offered)
    assert (await bot.app[SERVICES].accounts.sync_cards(TENANT)).cards == ()


# --- saved cards, off session ---------------------------------------------------------------------


async def test_an_auto_recharge_whose_card_needs_authentication_alerts_and_a_new_card_fixes_it(
    bot, connector, fake_stripe, books
):
    chat = Chat(bot, connector)
    await chat.say("status")  # installs the admin's chat for alerts
    services = bot.app[SERVICES]
    repo = services.credits
    customer = await services.accounts.payment_customer(TENANT)
    fake_stripe.attach_card(customer, "4000002760003184")
    # The auto-recharge form opens with the card Stripe holds for the tenant.
    await chat.say("auto-recharge")
    form = chat.last_card()
    [card_choice] = [c for c in choices(form, "method") if c["value"].startswith("card:")]
    assert "3184" in card_choice["title"]
    await chat.submit(
        {
            **submit_data(form, "auto_recharge"),
            "enabled": "true",
            "recharge_with": "100",
            "trigger": "50",
            "method": card_choice["value"],
        }
    )
    await chat.submit(submit_data(chat.last_card(), "auto_recharge_confirm", "save"))
    agreement = (await repo.get_account(TENANT)).value.agreements[0]
    ea = {"method": f"agreement:{agreement}", "po": ""}
    await chat.say("add funds")
    await chat.submit({**submit_data(chat.last_card(), "add_funds"), "amount": "60", **ea})
    await chat.submit(submit_data(chat.last_card(), "add_funds_confirm", "place"))
    charger = UsageCharger(repo, clock=now)

    await charger.charge(TENANT, [Row("call-1", 2_000)], source="csv")  # $60 → $40 < $50
    result = await services.recharger.run(TENANT)

    assert result.status == "failed"
    assert result.outcome.order.failure_reason == "authentication_required"
    alert = await wait_for(connector, "alert.recharge_failed.title")
    assert EN("failed.reason.authentication_required") in card_texts(alert)
    assert [a["data"]["command"] for a in alert["actions"]] == [
        "update_payment_method",
        "add_funds",
    ]

    # The alert's button: a card-saving page at Stripe, in setup mode.
    await chat.submit({"command": "update_payment_method"})
    setup_card = connector.posted[-1]
    [url] = open_urls(setup_card.activity["attachments"][0]["content"])
    setup_id = url.rsplit("/", 1)[-1]
    setup = next(s for s in fake_stripe.objects("checkout.session") if s["id"] == setup_id)
    assert (setup["mode"], setup["customer"]) == ("setup", customer)
    assert fake_stripe.complete_checkout_session(setup_id, "5555555555554444").succeeded
    await fake_stripe.settle()

    saved = [p for p in connector.posted if p.activity_id == setup_card.activity_id][-1]
    assert saved.method == "PUT"
    assert EN("payment_method.saved_title") in card_texts(
        saved.activity["attachments"][0]["content"]
    )
    account = (await repo.get_account(TENANT)).value
    new = next(c for c in account.cards if c.last4 == "4444")
    assert (account.auto_recharge.method_id, account.default_method_id) == (new.id, new.id)
    assert account.recharge.attempts == 0  # tried again at once, with the new card
    assert (await services.recharger.run(TENANT)).status == "succeeded"
    account, _, entries = await books()
    assert [e.amount_minor for e in entries if e.kind == EntryKind.RECHARGE] == [10_000]
    assert account.balance_minor == 14_000


# --- refunds and disputes -------------------------------------------------------------------------


async def test_a_refund_and_a_dispute_take_back_what_is_left_and_the_rest_is_owed(
    bot, connector, fake_stripe, books
):
    chat = Chat(bot, connector)
    first = await new_card_order(chat, "500")
    fake_stripe.complete_checkout_session(first)
    await fake_stripe.settle()
    second = await new_card_order(chat, "300", save_card="false")
    fake_stripe.complete_checkout_session(second, "5555555555554444")
    await fake_stripe.settle()
    services = bot.app[SERVICES]
    # $600 of calls: all of the first purchase (it expires first), $100 of the second.
    await UsageCharger(services.credits, clock=now).charge(
        TENANT, [Row("call-1", 60_000)], source="csv"
    )
    charges = {c["payment_intent"]: c["id"] for c in fake_stripe.objects("charge")}
    intents = {s["id"]: s["payment_intent"] for s in fake_stripe.objects("checkout.session")}

    fake_stripe.refund_charge(charges[intents[first]], amount=10_000)  # $100 of the spent one
    await fake_stripe.settle()
    refunded = await wait_for(connector, "alert.payment_reversed.title")
    fake_stripe.open_dispute(charges[intents[second]])  # all $300 of the other
    await fake_stripe.settle()

    account, lots, entries = await books()
    assert (account.balance_minor, account.owed_minor) == (0, 20_000)
    assert sorted(lot.remaining_minor for lot in lots) == [0, 0]
    assert [(e.kind, e.amount_minor) for e in entries[-1:]] == [(EntryKind.DISPUTE, -20_000)]
    assert EN("alert.payment_reversed.owed", owed="$100.00") in card_texts(refunded)
    outbox = [
        e for e in await services.credits.outbox(TENANT) if e.kind == EventKind.PAYMENT_REVERSED
    ]
    assert sorted(
        (e.data["reason"], e.data["taken_minor"], e.data["owed_minor"]) for e in outbox
    ) == [
        ("dispute", 20_000, 10_000),
        ("refund", 0, 10_000),
    ]
    # The same events again change nothing.
    for event_id in (
        *event_ids(fake_stripe, "charge.refunded"),
        *event_ids(fake_stripe, "charge.dispute.created"),
    ):
        await fake_stripe.deliver(event_id, times=2)
    assert (await books())[0].owed_minor == 20_000
    await chat.say("status")
    assert "$200.00" in str(chat.last_card()) and EN("status.owed") in chat.last_texts()
