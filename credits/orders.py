"""Placing orders: write pending, ask the processor with the order's key, book once.

The phases follow Stripe-style idempotency with recovery points:

1. The order is inserted as *pending* under its idempotency key. A second insert with the same
   key fails, which is how a double click or a redelivered submit is recognised.
2. The processor is asked with the same key, by how the order is paid:
   - an Enterprise Agreement is invoiced: no processor, the order is booked at once;
   - a saved card is charged off session. A timeout leaves the order pending; the processor
     answers a replay with the first result, so a crash here is repaired by replaying, never
     by a second charge. A bank that wants the cardholder (`authentication_required`) turns a
     purchase into a hosted page for the same order;
   - a new card: the processor's hosted page is made for the order (keyed by it) and its
     reference kept on the order. The admin pays there; the processor's event, or the recovery
     job asking the processor about the page, books it.
3. The money is booked in one transaction that moves the account (If-Match), adds the lot and
   the ledger entry, and marks the order succeeded (If-Match). Whoever loses that race reloads
   and finds the order already booked: an event delivered three times, the hosted page, a replay
   and the recovery job all end in one booking.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from credits import ledger
from credits.accounts import ensure_customer, saved_card, with_card
from credits.model import (
    Account,
    EntryKind,
    MethodKind,
    Order,
    OrderStatus,
    OutboxEvent,
    PaymentMethod,
    SavedCard,
)
from credits.money import Money
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
    LookUp,
    Payment,
    PaymentDeclined,
    PaymentGateway,
    PaymentState,
)
from credits.repository import ConcurrencyConflict, CreditsRepository, Versioned

logger = logging.getLogger(__name__)

# Contended bookings retry with jittered back-off: 50 writers on one account all get through.
MAX_BOOKING_ATTEMPTS = 60
# An order's hosted page stays open this long (Stripe allows 30 minutes to 24 hours); a page
# left open is an order that stays pending, so it is kept short.
CHECKOUT_LIFETIME = timedelta(hours=1)
# Declines that say the card itself is failing (not the processor, nor a bank that only wants
# its cardholder): the card is shown as failing until a payment with it succeeds.
CARD_FAULTS = frozenset(
    {
        DeclineReason.EXPIRED_CARD,
        DeclineReason.DECLINED,
        DeclineReason.INSUFFICIENT_FUNDS,
        DeclineReason.INVALID_CARD,
    }
)
SAVE_ATTEMPTS = 10
# Stripe forgets idempotency keys after 24 hours: a charge replayed later could be a second
# charge. Older pending orders are looked up at the processor instead of replayed.
REPLAY_WINDOW = timedelta(hours=23)
DEFAULT_LOCALE = "en-US"


# Applied to the account inside the booking transaction of an order: the auto-recharge state
# an order settles, and the alerts it causes, commit with the money or not at all.
Settle = Callable[[Account, Order], tuple[Account, list[OutboxEvent]]]


def clear_recharge_failures(account: Account, _order: Order) -> tuple[Account, list[OutboxEvent]]:
    """A manual purchase clears auto-recharge's failure state, so the next attempt is prompt."""
    if account.recharge.attempts or account.recharge.last_failure:
        account = replace(
            account,
            recharge=replace(account.recharge, attempts=0, next_attempt_at="", last_failure=""),
        )
    return account, []


class OrderRejected(ValueError):
    """The order cannot be placed as asked (an unknown method, a key reused differently)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OrderOutcome:
    order: Order
    account: Account | None = None
    """The account after booking, when the order succeeded."""
    replayed: bool = False
    """True when this key had been placed before and its first result is returned."""
    checkout: Checkout | None = None
    """The hosted page where the admin pays, while the order waits for it."""

    @property
    def status(self) -> OrderStatus:
        return self.order.status


class OrderService:
    def __init__(
        self,
        repository: CreditsRepository,
        gateway: PaymentGateway,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self._repo = repository
        self._gateway = gateway
        self._clock = clock
        self._sleep = sleep

    async def place(
        self,
        tenant_id: str,
        key: str,
        amount: Money,
        method: PaymentMethod,
        *,
        actor: str,
        kind: EntryKind = EntryKind.PURCHASE,
        settle: Settle = clear_recharge_failures,
        locale: str = DEFAULT_LOCALE,
    ) -> OrderOutcome:
        """`locale` is the admin's language, for a hosted page the order may need."""
        if amount.minor <= 0:
            raise OrderRejected("amount")
        account = await self._repo.get_account(tenant_id)
        if account is None:
            raise OrderRejected("account")
        if amount.currency != account.value.currency:
            raise OrderRejected("currency")
        _check_method(account.value, method, kind)
        now = self._clock()
        pending = Order(
            tenant_id=tenant_id,
            key=key,
            amount_minor=amount.minor,
            currency=amount.currency,
            method=method,
            kind=kind,
            actor=actor,
            status=OrderStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        inserted = await self._repo.insert_order(pending)
        if inserted is None:
            return await self._repeat(tenant_id, key, pending, settle, locale)
        return await self._complete(inserted, account, settle=settle, replayed=False, locale=locale)

    async def recover(self, tenant_id: str, *, older_than: timedelta) -> list[OrderOutcome]:
        """Finish purchases left pending by a timeout, a crash or a lost event: ask the
        processor about their hosted page or payment, replay a charge while its key is
        remembered, book an agreement. Orders still waiting for the admin stay pending."""
        cutoff = self._clock() - older_than
        outcomes = []
        for order in await self._repo.pending_orders(tenant_id):
            if order.value.created_at > cutoff or order.value.kind != EntryKind.PURCHASE:
                # Recharges are finished by the auto-recharge engine, which settles its state.
                continue
            try:
                outcomes.append(await self._resume(order, recovering=True))
            except OrderRejected:
                # The card is gone from the account; only an operator can tell the processor
                # which charge this was, so the order stays pending and visible.
                logger.error("pending order %s has no payment method any more", order.value.key)
        return outcomes

    async def settle(
        self,
        order: Versioned[Order],
        payment: Payment,
        *,
        settle: Settle = clear_recharge_failures,
        account: Versioned[Account] | None = None,
    ) -> OrderOutcome:
        """Finish a pending order as the processor says it stands (from an event or a look-up).

        A payment whose amount or currency differs from the order's books nothing: it is not
        this order's, whatever its metadata says. `account`, when the caller read it already,
        saves a read (a stale one only costs a retry).
        """
        value = order.value
        if value.status != OrderStatus.PENDING:
            account = await self._repo.get_account(value.tenant_id)
            return OrderOutcome(value, account.value if account else None, replayed=True)
        if payment.state == PaymentState.SUCCEEDED:
            if (payment.amount_minor, payment.currency) != (value.amount_minor, value.currency):
                logger.error(
                    "payment %s of %s %s does not match order %s of %s %s: not booked",
                    payment.reference,
                    payment.amount_minor,
                    payment.currency,
                    value.key,
                    value.amount_minor,
                    value.currency,
                )
                return OrderOutcome(value, replayed=True)
            return await self._book(
                order,
                payment.reference,
                replayed=False,
                settle=settle,
                account=account,
                card=payment.card,
            )
        if payment.state == PaymentState.FAILED:
            reason = payment.failure or DeclineReason.PROCESSING_ERROR
            return await self._fail(order, reason, payment.reference)
        if payment.state == PaymentState.EXPIRED:
            return await self._fail(order, DeclineReason.CHECKOUT_EXPIRED, payment.reference)
        if payment.state == PaymentState.OPEN:
            return OrderOutcome(value, checkout=Checkout(value.checkout_reference, payment.url))
        # UNKNOWN: the request never reached the processor, so nothing was charged.
        return await self._fail(order, DeclineReason.PROCESSING_ERROR)

    async def _repeat(
        self, tenant_id: str, key: str, asked: Order, settle: Settle, locale: str
    ) -> OrderOutcome:
        existing = await self._repo.get_order(tenant_id, key)
        if existing is None:  # orders are never deleted
            raise OrderRejected("order vanished")
        order = existing.value
        if (order.amount_minor, order.currency, _as_asked(order.method)) != (
            asked.amount_minor,
            asked.currency,
            _as_asked(asked.method),
        ):
            raise OrderRejected("key reused")
        if order.status == OrderStatus.PENDING:
            return await self._resume(existing, settle=settle, locale=locale)
        account = await self._repo.get_account(tenant_id)
        return OrderOutcome(order, account.value if account else None, replayed=True)

    async def _resume(
        self,
        order: Versioned[Order],
        *,
        settle: Settle = clear_recharge_failures,
        locale: str = DEFAULT_LOCALE,
        recovering: bool = False,
    ) -> OrderOutcome:
        """Carry on with a pending order found again (a repeat, or the recovery job)."""
        value = order.value
        if value.checkout_reference:
            return await self._ask(order, settle)
        if value.method.kind == MethodKind.NEW_CARD and recovering:
            # Its hosted page was never made (or never shown): nobody can have paid.
            return await self._fail(order, DeclineReason.CHECKOUT_EXPIRED)
        if (
            value.method.kind == MethodKind.CARD
            and self._clock() - value.created_at > REPLAY_WINDOW
        ):
            return await self._ask(order, settle)
        return await self._complete(
            order, None, settle=settle, replayed=True, locale=locale, attended=not recovering
        )

    async def _ask(self, order: Versioned[Order], settle: Settle) -> OrderOutcome:
        value = order.value
        try:
            payment = await self._gateway.look_up(
                LookUp(
                    value.tenant_id,
                    value.key,
                    checkout=value.checkout_reference,
                    payment=value.gateway_reference,
                )
            )
        except (GatewayTimeout, GatewayUnavailable):
            logger.warning("order %s: the processor did not say where it stands", value.key)
            return OrderOutcome(value, replayed=True)
        outcome = await self.settle(order, payment, settle=settle)
        return replace(outcome, replayed=True)

    async def _complete(
        self,
        order: Versioned[Order],
        account: Versioned[Account] | None,
        *,
        settle: Settle,
        replayed: bool,
        locale: str,
        attended: bool = True,
    ) -> OrderOutcome:
        """`attended`: an admin is in the chat to open a hosted page (not the recovery job)."""
        method = order.value.method
        if method.kind == MethodKind.AGREEMENT:
            # Invoiced against the agreement: no processor is involved.
            reference = f"invoice:{method.agreement_number}"
            return await self._book(
                order, reference, replayed=replayed, settle=settle, account=account
            )
        if method.kind == MethodKind.NEW_CARD:
            return await self._open_checkout(order, locale, replayed=replayed)
        return await self._charge(
            order, account, settle=settle, replayed=replayed, locale=locale, attended=attended
        )

    async def _charge(
        self,
        order: Versioned[Order],
        account: Versioned[Account] | None,
        *,
        settle: Settle,
        replayed: bool,
        locale: str,
        attended: bool,
    ) -> OrderOutcome:
        value = order.value
        account = account or await self._repo.get_account(value.tenant_id)
        assert account is not None  # accounts are never deleted
        card = account.value.card(value.method.card_id)
        if card is None:
            raise OrderRejected("card")
        try:
            payment = await self._gateway.charge_saved_card(
                ChargeRequest(
                    tenant_id=value.tenant_id,
                    customer=account.value.payment_customer,
                    card=card.token,
                    key=value.key,
                    amount_minor=value.amount_minor,
                    currency=value.currency,
                    description=f"Communications Credits {value.kind.value}",
                )
            )
        except GatewayTimeout:
            logger.warning("gateway timeout, order %s stays pending", value.key)
            return OrderOutcome(value, replayed=replayed)
        except GatewayUnavailable:
            logger.error("the processor refused order %s; it stays pending", value.key)
            return OrderOutcome(value, replayed=replayed)
        except PaymentDeclined as declined:
            if (
                declined.reason == DeclineReason.AUTHENTICATION_REQUIRED
                and value.kind == EntryKind.PURCHASE
                and attended
            ):
                # The admin is in the chat: the bank's check happens on the hosted page.
                return await self._open_checkout(order, locale, replayed=replayed)
            return await self._fail(order, declined.reason, declined.reference)
        except IdempotencyConflict as error:
            raise OrderRejected("key reused") from error
        return await self._book(
            order, payment.reference, replayed=replayed, settle=settle, account=account
        )

    async def _open_checkout(
        self, order: Versioned[Order], locale: str, *, replayed: bool
    ) -> OrderOutcome:
        value = order.value
        try:
            customer = await ensure_customer(self._repo, self._gateway, value.tenant_id)
            checkout = await self._gateway.start_checkout(
                CheckoutRequest(
                    tenant_id=value.tenant_id,
                    customer=customer,
                    key=value.key,
                    mode=CheckoutMode.PAYMENT,
                    locale=locale,
                    # From the order, not the clock: a repeat asks with the same parameters.
                    expires_at=value.created_at + CHECKOUT_LIFETIME,
                    amount_minor=value.amount_minor,
                    currency=value.currency,
                    save_card=value.method.kind == MethodKind.NEW_CARD and value.method.save_card,
                    description=f"Communications Credits {value.kind.value}",
                )
            )
        except (GatewayTimeout, GatewayUnavailable):
            logger.warning("no hosted page for order %s; it stays pending", value.key)
            return OrderOutcome(value, replayed=replayed)
        except IdempotencyConflict as error:
            raise OrderRejected("key reused") from error
        if value.checkout_reference == checkout.reference:
            return OrderOutcome(value, replayed=replayed, checkout=checkout)
        updated = replace(value, checkout_reference=checkout.reference, updated_at=self._clock())
        try:
            await self._repo.update_order(order, updated)
        except ConcurrencyConflict:
            current = await self._repo.get_order(value.tenant_id, value.key)
            if current is not None and current.value.status != OrderStatus.PENDING:
                return OrderOutcome(current.value, replayed=True)
            # Another request kept the same page (the same key makes the same page).
        return OrderOutcome(updated, replayed=replayed, checkout=checkout)

    async def _fail(
        self, order: Versioned[Order], reason: DeclineReason, reference: str = ""
    ) -> OrderOutcome:
        failed = replace(
            order.value,
            status=OrderStatus.FAILED,
            failure_reason=reason.value,
            gateway_reference=reference or order.value.gateway_reference,
            updated_at=self._clock(),
        )
        try:
            await self._repo.update_order(order, failed)
        except ConcurrencyConflict:
            current = await self._repo.get_order(order.value.tenant_id, order.value.key)
            if current is not None:
                if current.value.status == OrderStatus.PENDING:
                    # Only its hosted page changed meanwhile: fail it as read now.
                    return await self._fail(current, reason, reference)
                return OrderOutcome(current.value, replayed=True)
        if failed.method.kind == MethodKind.CARD and reason in CARD_FAULTS:
            await self._card_failed(failed, reason)
        return OrderOutcome(failed)

    async def _card_failed(self, order: Order, reason: DeclineReason) -> None:
        """Show the saved card as failing (an expired one is no longer offered). What a form
        shows, not money: written after the order, on its own; a crash in between only loses
        the mark, which the card's next failure sets again."""
        day = self._clock().date().isoformat()
        for _attempt in range(SAVE_ATTEMPTS):
            current = await self._repo.get_account(order.tenant_id)
            card = current.value.card(order.method.card_id) if current is not None else None
            if current is None or card is None:
                return
            if (card.failure, card.failed_on) == (reason.value, day):
                return
            marked = replace(card, failure=reason.value, failed_on=day)
            try:
                await self._repo.save_account(current, _with_card_replaced(current.value, marked))
            except ConcurrencyConflict:
                continue
            logger.info("card %s of tenant %s failed: %s", card.id, order.tenant_id, reason.value)
            return
        logger.warning("card %s of tenant %s not marked as failing", card.id, order.tenant_id)

    async def _book(
        self,
        order: Versioned[Order],
        gateway_reference: str,
        *,
        replayed: bool,
        settle: Settle,
        account: Versioned[Account] | None = None,
        card: CardOnFile | None = None,
    ) -> OrderOutcome:
        """`account` is the account as read before the charge: the first attempt books on it,
        saving a read; if it changed meanwhile, its ETag fails the commit and we reload.
        `card` is the card paid with on the hosted page: kept on the account with the money."""
        tenant_id, key = order.value.tenant_id, order.value.key
        for attempt in range(MAX_BOOKING_ATTEMPTS):
            current_order = order if attempt == 0 else await self._repo.get_order(tenant_id, key)
            assert current_order is not None
            if current_order.value.status != OrderStatus.PENDING:
                # Another request booked (or failed) it meanwhile: its result is the result.
                latest = await self._repo.get_account(tenant_id)
                return OrderOutcome(
                    current_order.value, latest.value if latest else None, replayed=True
                )
            if attempt > 0 or account is None:
                account = await self._repo.get_account(tenant_id)
            assert account is not None
            change, booked, events = _booking(
                account.value, current_order.value, gateway_reference, card, settle, self._clock()
            )
            try:
                saved = await self._repo.commit(
                    account.etag, change, order=(current_order, booked), inserts=events
                )
            except ConcurrencyConflict:
                await self._sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 5)))
                continue
            return OrderOutcome(booked, saved.value, replayed=replayed)
        # Still pending: the recovery job will book it, through the same path.
        logger.error("order %s could not be booked after %d attempts", key, MAX_BOOKING_ATTEMPTS)
        return OrderOutcome(order.value, replayed=replayed)


def _booking(
    account: Account,
    order: Order,
    gateway_reference: str,
    card: CardOnFile | None,
    settle: Settle,
    now: datetime,
) -> tuple[ledger.Change, Order, list[OutboxEvent]]:
    """The money an order adds (its own lot), the order as booked, and what settling it writes.

    A card paid with on the hosted page is kept on the account with the money, and a saved card
    that had been failing works again: a payment with it went through.
    """
    change = ledger.credit(
        account,
        order.amount_minor,
        kind=order.kind,
        actor=order.actor,
        reference=order.key,
        at=now,
        order_key=order.key,
    )
    method = order.method
    if card is not None and method.kind == MethodKind.NEW_CARD:
        used = saved_card(card, saved=method.save_card)
        method = replace(method, card_id=used.id)
        change = replace(change, account=with_card(change.account, used))
    paid_with = change.account.card(method.card_id) if method.card_id else None
    if paid_with is not None and paid_with.failure:
        working = replace(paid_with, failure="", failed_on="")
        change = replace(change, account=_with_card_replaced(change.account, working))
    booked = replace(
        order,
        status=OrderStatus.SUCCEEDED,
        gateway_reference=gateway_reference,
        lot_id=change.lots[0].lot_id,
        method=method,
        updated_at=now,
    )
    settled, events = settle(change.account, booked)
    return replace(change, account=settled), booked, events


def _with_card_replaced(account: Account, card: SavedCard) -> Account:
    return replace(account, cards=tuple(card if c.id == card.id else c for c in account.cards))


def _as_asked(method: PaymentMethod) -> PaymentMethod:
    """A method as an order asks for it: a new card learns its card id only once paid."""
    return replace(method, card_id="") if method.kind == MethodKind.NEW_CARD else method


def _check_method(account: Account, method: PaymentMethod, kind: EntryKind) -> None:
    if method.kind == MethodKind.CARD:
        if account.card(method.card_id) is None:
            raise OrderRejected("card")
    elif method.kind == MethodKind.NEW_CARD:
        if kind != EntryKind.PURCHASE:
            raise OrderRejected("method")  # nobody is there to type a card for a recharge
    elif method.agreement_number not in account.agreements:
        raise OrderRejected("agreement")
