"""Telling the chat what became of a payment made on the card processor's hosted page.

The card that opened the page (an order's confirmation, or a card-saving page) changes in place
to say how it ended, and a booked order's receipt is posted under it, through the Bot
Connector as proactive alerts are (`ProactiveSender`). Whoever claims the remembered card (an
ETag-guarded mark) tells, so an event delivered three times, on two instances at once, or the
recovery job after it, tells once; a telling that fails is released for the next try (Stripe
redelivers an event answered with an error).
"""

from __future__ import annotations

import logging
from datetime import datetime

from botbuilder.schema import Activity, ActivityTypes, Attachment, ConversationReference

from bot.proactive import Outcome, ProactiveSender
from cards import CardRenderer
from credits.accounts import AccountService
from credits.conversations import CheckoutCard, CheckoutCards
from credits.ledger import expiry_of
from credits.model import Account, Order, OrderStatus
from credits.payment_events import Settled, Settlement
from dialogs.add_funds import (
    PAID,
    card_label,
    confirmation_attachment,
    failed_attachment,
    receipt_attachment,
)
from locales import Localizer, Translator

logger = logging.getLogger(__name__)


class NoticeFailed(RuntimeError):
    """The chat could not be told now (Teams throttled or failed): try again later."""


class CheckoutNotices:
    def __init__(
        self,
        store: CheckoutCards,
        sender: ProactiveSender,
        cards: CardRenderer,
        localizer: Localizer,
        accounts: AccountService,
    ) -> None:
        self._store = store
        self._sender = sender
        self._cards = cards
        self._localizer = localizer
        self._accounts = accounts

    async def tell(self, settlement: Settlement) -> bool:
        """Tell the chat, once, if there is something to tell and a card to tell it on; True
        when told now. Raises NoticeFailed when the connector should be asked again later."""
        order = settlement.order
        if order is not None:
            if order.status == OrderStatus.PENDING or settlement.result == Settled.REVERSED:
                return False
        elif settlement.card is None:
            return False
        stored = await self._store.get(settlement.tenant_id, settlement.key)
        if stored is None or stored.value.told:
            return False
        claimed = await self._store.claim(stored)
        if claimed is None:
            return False  # another event (or instance) is telling it
        card = claimed.value
        t = self._localizer.translator(card.locale)
        try:
            if order is None:
                label = card_label(t, settlement.card)
                update = self._cards.attachment("payment_method", t, checkout_url="", saved=label)
                await self._post(card, update)
            else:
                await self._tell_order(card, t, order, settlement.account)
        except NoticeFailed:
            await self._store.release(claimed)
            raise
        logger.info("told the chat of tenant %s about %s", card.tenant_id, card.key)
        return True

    async def _tell_order(
        self, card: CheckoutCard, t: Translator, order: Order, account: Account | None
    ) -> None:
        # The account as the booking left it, when the settlement has it (a read saved).
        account = account or await self._accounts.get_or_create(order.tenant_id)
        if order.status == OrderStatus.FAILED:
            await self._post(card, failed_attachment(self._cards, t, order))
            return
        paid = confirmation_attachment(
            self._cards, t, account, order, expires=_expiry(order), state=PAID
        )
        await self._post(card, paid)
        await self._post(card, receipt_attachment(self._cards, t, account, order), new=True)

    async def _post(self, card: CheckoutCard, attachment: Attachment, *, new: bool = False) -> None:
        reference = ConversationReference().deserialize(card.reference)
        activity = Activity(type=ActivityTypes.message, attachments=[attachment])
        if new or not card.activity_id:
            result = await self._sender.send(reference, activity)
        else:
            result = await self._sender.update(reference, card.activity_id, activity)
            if result.outcome == Outcome.REJECTED:
                # The card cannot be changed (deleted, too old): say it in a new message.
                result = await self._sender.send(reference, activity)
        if result.outcome == Outcome.RETRY:
            raise NoticeFailed(result.error)
        if result.outcome != Outcome.SENT:
            logger.warning(
                "could not tell tenant %s about %s: %s %s",
                card.tenant_id,
                card.key,
                result.outcome,
                result.error,
            )


def _expiry(order: Order) -> datetime:
    return expiry_of(order.updated_at)
