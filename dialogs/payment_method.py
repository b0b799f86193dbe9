"""`update payment method`: a card saved on the card processor's hosted page, never in Teams.

A one-turn answer (from the recharge-failed alert, the auto-recharge form, or typed): a hosted
page in setup mode is made for a new key, and a card whose button opens it is sent. When the
processor says the card was saved, that card changes in place to show it
(bot/checkout_notices.py), and auto-recharge pays with it from then on.
"""

from __future__ import annotations

import logging
import uuid

from botbuilder.core import TurnContext

from cards import CardRenderer
from credits.accounts import AccountService
from credits.conversations import CheckoutCard, CheckoutCards
from credits.payments import PaymentError
from dialogs.card_actions import say, show
from dialogs.commands import ParsedCommand
from dialogs.turn import tenant_id_of, translator_of

logger = logging.getLogger(__name__)


class UpdatePaymentMethod:
    def __init__(
        self, accounts: AccountService, checkout_cards: CheckoutCards, cards: CardRenderer
    ) -> None:
        self._accounts = accounts
        self._checkout_cards = checkout_cards
        self._cards = cards

    async def __call__(self, turn_context: TurnContext, _parsed: ParsedCommand) -> None:
        tenant_id = tenant_id_of(turn_context.activity)
        t = translator_of(turn_context)
        key = "setup-" + uuid.uuid4().hex
        try:
            checkout = await self._accounts.start_card_setup(tenant_id, key, t.tag)
        except PaymentError:
            logger.warning("no card-saving page for tenant %s", tenant_id, exc_info=True)
            await say(turn_context, t("payment_method.unavailable"))
            return
        card = self._cards.attachment("payment_method", t, checkout_url=checkout.url, saved="")
        activity_id = await show(turn_context, card)
        await self._checkout_cards.remember(
            CheckoutCard(
                tenant_id=tenant_id,
                key=key,
                reference=TurnContext.get_conversation_reference(turn_context.activity).serialize(),
                activity_id=activity_id,
                locale=t.tag,
                purpose="setup",
            )
        )
