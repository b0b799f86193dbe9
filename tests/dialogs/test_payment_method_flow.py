"""`update payment method` through the real app: a card saved on the sandbox's hosted page.

The sandbox's page is served by the app itself (on the test server's loopback address); the fake
Bot Connector stands for Teams; storage is Azurite.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from urllib.parse import urlsplit

from app import SERVICES
from credits.model import AutoRecharge, RechargeState
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import L10N, Chat, open_urls


async def test_a_card_saved_on_the_hosted_page_becomes_auto_recharges_card(client, connector):
    pt = L10N.translator("pt-BR")
    chat = Chat(client, connector, locale="pt-BR")
    await chat.say("status")
    repo = client.app[SERVICES].credits
    current = await repo.get_account(activities.TENANT)
    failing = RechargeState(due_key="x", attempts=1, serial=1, last_failure="expired_card")
    auto = AutoRecharge(True, 10_000, 5_000, current.value.cards[0].id)
    await repo.save_account(current, replace(current.value, auto_recharge=auto, recharge=failing))

    await chat.say("atualizar cartão")  # typed, or the button of a recharge-failed alert

    setup = connector.posted[-1]
    card = setup.activity["attachments"][0]["content"]
    assert pt("payment_method.title") in card_texts(card)
    [url] = open_urls(card)
    path = urlsplit(url).path
    page = await client.get(path)
    html = await page.text()
    assert escape(pt("hosted.save_intro")) in html and escape(pt("hosted.save_button")) in html
    form = {
        "cardNumber": "5555 5555 5555 4444",
        "cardExpiry": "03 / 31",
        "cardCvc": "123",
        "billingName": "Alex Wilber",
    }
    saved = await client.post(path, data=form, allow_redirects=False)

    assert saved.status == 303
    assert saved.headers["Location"].endswith("/payments/done?lang=pt-BR&mode=setup")
    update = connector.posted[-1]
    assert (update.method, update.activity_id) == ("PUT", setup.activity_id)
    texts = card_texts(update.activity["attachments"][0]["content"])
    assert pt("payment_method.saved_title") in texts
    assert any("4444" in text and "03/2031" in text for text in texts)
    account = (await repo.get_account(activities.TENANT)).value
    new = next(c for c in account.cards if c.last4 == "4444")
    assert (account.default_method_id, account.auto_recharge.method_id) == (new.id, new.id)
    # The failing recharge is tried again at once, with the new card; nothing was charged.
    assert (account.recharge.attempts, account.recharge.last_failure) == (0, "")
    assert account.recharge.due_key == "x" and account.balance_minor == 0
