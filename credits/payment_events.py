"""Processor events applied to the books: payments booked, hosted pages expired, cards saved,
refunds and disputes reversed.

An event is keyed on what it is about (the order or setup named in the processor's metadata),
never on when it arrives: the same event delivered three times, late, out of order, or on two
instances at once changes the books once, because every change is conditional on the state it
was decided from (the order's and the account's ETags) and idempotent in what it writes.

An event naming a tenant without an account, an order the tenant never placed, a customer that
is not the tenant's, or an amount or currency other than the order's changes nothing: it is
logged and answered as handled, so the processor does not send it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from credits import ledger
from credits.accounts import saved_card, with_card
from credits.model import (
    Account,
    EntryKind,
    EventKind,
    Order,
    OrderStatus,
    OutboxEvent,
    SavedCard,
)
from credits.orders import OrderService
from credits.payments import Payment, PaymentEvent, PaymentEventKind, PaymentState
from credits.repository import ConcurrencyConflict, CreditsRepository, DuplicateRecord, Versioned

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 60
CARD_PREFIX = "card-"


class Settled(StrEnum):
    BOOKED = "booked"
    FAILED = "failed"
    REVERSED = "reversed"
    CARD_SAVED = "card_saved"
    UNCHANGED = "unchanged"
    """Already applied (a repeat), or nothing to do yet (a page still open)."""
    IGNORED = "ignored"
    """Not this product's, or not believable: nothing changed, and it was logged."""


@dataclass(frozen=True)
class Settlement:
    """What an event (or the recovery job) did, for whoever tells the admin."""

    result: Settled
    tenant_id: str
    key: str
    order: Order | None = None
    account: Account | None = None
    card: SavedCard | None = None
    why: str = ""


class PaymentEvents:
    def __init__(
        self,
        repository: CreditsRepository,
        orders: OrderService,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self._repo = repository
        self._orders = orders
        self._clock = clock
        self._sleep = sleep

    async def apply(self, event: PaymentEvent) -> Settlement:
        account = await self._repo.get_account(event.tenant_id) if event.tenant_id else None
        if account is None:
            return _ignored(event, "unknown tenant")
        customer = account.value.payment_customer
        if event.customer and event.customer != customer:
            return _ignored(event, "a customer that is not the tenant's")
        if event.kind == PaymentEventKind.CARD_SAVED:
            return await self._card_saved(event)
        order = await self._repo.get_order(event.tenant_id, event.key) if event.key else None
        if order is None:
            return _ignored(event, "an order the tenant never placed")
        if event.kind in (PaymentEventKind.REFUNDED, PaymentEventKind.DISPUTED):
            return await self._reverse(order, event)
        return await self._settle(order, event, account)

    # --- payments -------------------------------------------------------------------------

    async def _settle(
        self, order: Versioned[Order], event: PaymentEvent, account: Versioned[Account]
    ) -> Settlement:
        value = order.value
        if event.kind == PaymentEventKind.PAID:
            if (event.amount_minor, event.currency) != (value.amount_minor, value.currency):
                return _ignored(
                    event, f"{event.amount_minor} {event.currency} paid, not the order's"
                )
            payment = Payment(
                PaymentState.SUCCEEDED,
                event.reference,
                event.amount_minor,
                event.currency,
                card=event.card,
            )
        elif event.kind == PaymentEventKind.CHECKOUT_EXPIRED:
            if event.checkout != value.checkout_reference:
                return _ignored(event, "a hosted page that is not the order's")
            payment = Payment(PaymentState.EXPIRED, event.reference)
        elif event.kind == PaymentEventKind.PAYMENT_FAILED:
            if value.checkout_reference:
                # A card declined on the hosted page: the page stays open for another card.
                return _unchanged(event, value, "declined on the hosted page, still open")
            payment = Payment(PaymentState.FAILED, event.reference, failure=event.failure)
        else:
            return _ignored(event, f"no handling for {event.kind}")
        if value.status != OrderStatus.PENDING:
            return _unchanged(event, value, f"already {value.status}")
        if value.kind != EntryKind.PURCHASE:
            # The auto-recharge engine replays its order with the same key and settles its
            # state in the booking transaction; an event here would settle it without.
            return _unchanged(event, value, "a recharge: the auto-recharge engine finishes it")
        outcome = await self._orders.settle(order, payment, account=account)
        if outcome.replayed or outcome.status == OrderStatus.PENDING:
            return _unchanged(event, outcome.order, "settled meanwhile")
        result = Settled.BOOKED if outcome.status == OrderStatus.SUCCEEDED else Settled.FAILED
        logger.info(
            "order %s of tenant %s %s by %s", value.key, value.tenant_id, result, event.kind
        )
        return Settlement(result, value.tenant_id, value.key, outcome.order, outcome.account)

    # --- cards ----------------------------------------------------------------------------

    async def _card_saved(self, event: PaymentEvent) -> Settlement:
        if event.card is None:
            return _ignored(event, "a saved card without its details")
        card = saved_card(event.card)
        for _attempt in range(MAX_ATTEMPTS):
            current = await self._repo.get_account(event.tenant_id)
            assert current is not None  # accounts are never deleted
            updated = _card_for_auto_recharge(with_card(current.value, card), card)
            if updated == current.value:
                return Settlement(
                    Settled.UNCHANGED, event.tenant_id, event.key, None, current.value, card
                )
            try:
                saved = await self._repo.save_account(current, updated)
            except ConcurrencyConflict:
                continue
            logger.info("tenant %s saved a %s card on the hosted page", event.tenant_id, card.brand)
            return Settlement(
                Settled.CARD_SAVED, event.tenant_id, event.key, None, saved.value, card
            )
        raise ConcurrencyConflict(f"account of tenant {event.tenant_id} kept changing")

    # --- refunds and disputes -------------------------------------------------------------

    async def _reverse(self, order: Versioned[Order], event: PaymentEvent) -> Settlement:
        refund = event.kind == PaymentEventKind.REFUNDED
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                order = await self._repo.get_order(event.tenant_id, event.key) or order
            value = order.value
            if value.status != OrderStatus.SUCCEEDED or not value.lot_id:
                return _ignored(event, f"an order that is {value.status}, not booked")
            if event.currency and event.currency != value.currency:
                return _ignored(event, f"a reversal in {event.currency}, not {value.currency}")
            done = value.refunded_minor if refund else value.disputed_minor
            amount = _still_to_reverse(value, event.amount_minor, done)
            if amount <= 0:
                return _unchanged(event, value, "reversed already")
            account = await self._repo.get_account(event.tenant_id)
            assert account is not None
            lots = await self._repo.list_lots(event.tenant_id)
            lot = next((lot for lot in lots if lot.lot_id == value.lot_id), None)
            if lot is None:
                logger.error("order %s has no lot %s: not reversed", value.key, value.lot_id)
                return _ignored(event, "the order's lot is missing")
            now = self._clock()
            reversal = ledger.reverse(
                account.value,
                lot,
                amount,
                kind=EntryKind.REFUND if refund else EntryKind.DISPUTE,
                actor="processor",
                reference=value.key,
                at=now,
            )
            total = done + amount
            reversed_order = replace(
                value,
                refunded_minor=total if refund else value.refunded_minor,
                disputed_minor=value.disputed_minor if refund else total,
                updated_at=now,
            )
            alert = _reversal_alert(value, reversal, amount, total, refund, now)
            try:
                saved = await self._repo.commit(
                    account.etag, reversal.change, order=(order, reversed_order), inserts=[alert]
                )
            except (ConcurrencyConflict, DuplicateRecord):
                await self._sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 5)))
                continue
            logger.warning(
                "order %s of tenant %s: %s %s reversed (%s taken back, %s owed)",
                value.key,
                value.tenant_id,
                amount,
                value.currency,
                reversal.taken_minor,
                reversal.owed_minor,
            )
            return Settlement(
                Settled.REVERSED, value.tenant_id, value.key, reversed_order, saved.value
            )
        raise ConcurrencyConflict(f"order {event.key} of {event.tenant_id} kept changing")


def _still_to_reverse(order: Order, asked_minor: int, done_minor: int) -> int:
    """What a refund or dispute of `asked_minor` (the processor's running total) adds now: never
    more than the order, nor than what refunds and disputes together have left of it."""
    room = order.amount_minor - order.refunded_minor - order.disputed_minor
    return min(min(asked_minor, order.amount_minor) - done_minor, room)


def _reversal_alert(
    order: Order, reversal: ledger.Reversal, amount: int, total: int, refund: bool, at: datetime
) -> OutboxEvent:
    """The admins' alert, named by the order, the kind and the running total: written once."""
    after = reversal.change.account
    reason = "refund" if refund else "dispute"
    return OutboxEvent(
        f"payment_reversed-{order.key}-{reason}-{total}",
        EventKind.PAYMENT_REVERSED,
        at,
        {
            "reason": reason,
            "amount_minor": amount,
            "taken_minor": reversal.taken_minor,
            "owed_minor": reversal.owed_minor,
            "balance_minor": after.balance_minor,
            "owed_total_minor": after.owed_minor,
            "order_amount_minor": order.amount_minor,
            "order": order.key[:12].upper(),
            "currency": order.currency,
        },
    )


def _card_for_auto_recharge(account: Account, card: SavedCard) -> Account:
    """A card saved on a setup page is the admin updating their payment method: it becomes
    the default, auto-recharge paying by card uses it, and a failing recharge is tried again
    at once with it (an agreement chosen for auto-recharge stays)."""
    auto = account.auto_recharge
    if auto.method_id and not auto.method_id.startswith(CARD_PREFIX):
        return replace(account, default_method_id=card.id)
    recharge = account.recharge
    if auto.method_id != card.id and (recharge.attempts or recharge.last_failure):
        recharge = replace(recharge, attempts=0, next_attempt_at="", last_failure="")
    return replace(
        account,
        default_method_id=card.id,
        auto_recharge=replace(auto, method_id=card.id),
        recharge=recharge,
    )


def _ignored(event: PaymentEvent, why: str) -> Settlement:
    logger.warning(
        "payment event %s (%s) for tenant %r, key %r changes nothing: %s",
        event.event_id,
        event.kind,
        event.tenant_id,
        event.key,
        why,
    )
    return Settlement(Settled.IGNORED, event.tenant_id, event.key, why=why)


def _unchanged(event: PaymentEvent, order: Order, why: str) -> Settlement:
    logger.info("payment event %s for order %s: %s", event.event_id, order.key, why)
    return Settlement(Settled.UNCHANGED, order.tenant_id, order.key, order, why=why)
