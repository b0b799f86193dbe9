"""Placing orders: write pending, charge with the order's key, book once.

The three phases follow Stripe-style idempotency with recovery points:

1. The order is inserted as *pending* under its idempotency key. A second insert with the same
   key fails, which is how a double click or a redelivered submit is recognised.
2. The gateway is charged with the same key. A timeout leaves the order pending; the processor
   answers a replay with the first result, so a crash here is repaired by replaying, never by a
   second charge.
3. The money is booked in one transaction that moves the account (If-Match), adds the lot and
   the ledger entry, and marks the order succeeded (If-Match). Whoever loses that race reloads
   and finds the order already booked.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from credits import ledger
from credits.model import (
    Account,
    EntryKind,
    MethodKind,
    Order,
    OrderStatus,
    OutboxEvent,
    PaymentMethod,
)
from credits.money import Money
from credits.payments import (
    DeclineReason,
    GatewayTimeout,
    IdempotencyConflict,
    PaymentDeclined,
    PaymentGateway,
    PaymentSource,
)
from credits.repository import ConcurrencyConflict, CreditsRepository, Versioned

logger = logging.getLogger(__name__)

# Contended bookings retry with jittered back-off: 50 writers on one account all get through.
MAX_BOOKING_ATTEMPTS = 60


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
    ) -> OrderOutcome:
        if amount.minor <= 0:
            raise OrderRejected("amount")
        account = await self._repo.get_account(tenant_id)
        if account is None:
            raise OrderRejected("account")
        if amount.currency != account.value.currency:
            raise OrderRejected("currency")
        source = _source(account.value, method)
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
            return await self._repeat(tenant_id, key, pending, settle)
        return await self._complete(
            inserted, source, replayed=False, settle=settle, account=account
        )

    async def recover(self, tenant_id: str, *, older_than: timedelta) -> list[OrderOutcome]:
        """Finish orders left pending by a timeout or a crash, by replaying their charge."""
        account = await self._repo.get_account(tenant_id)
        if account is None:
            return []
        cutoff = self._clock() - older_than
        outcomes = []
        for order in await self._repo.pending_orders(tenant_id):
            if order.value.created_at > cutoff or order.value.kind != EntryKind.PURCHASE:
                # Recharges are finished by the auto-recharge engine, which settles its state.
                continue
            try:
                source = _source(account.value, order.value.method)
            except OrderRejected:
                # The method is gone from the account; only an operator can tell the processor
                # which charge this was, so the order stays pending and visible.
                logger.error("pending order %s has no payment method any more", order.value.key)
                continue
            outcomes.append(
                await self._complete(order, source, replayed=True, settle=clear_recharge_failures)
            )
        return outcomes

    async def _repeat(self, tenant_id: str, key: str, asked: Order, settle: Settle) -> OrderOutcome:
        existing = await self._repo.get_order(tenant_id, key)
        if existing is None:  # orders are never deleted
            raise OrderRejected("order vanished")
        order = existing.value
        if (order.amount_minor, order.currency, order.method) != (
            asked.amount_minor,
            asked.currency,
            asked.method,
        ):
            raise OrderRejected("key reused")
        if order.status == OrderStatus.PENDING:
            account = await self._repo.get_account(tenant_id)
            assert account is not None
            source = _source(account.value, order.method)
            return await self._complete(existing, source, replayed=True, settle=settle)
        account = await self._repo.get_account(tenant_id)
        return OrderOutcome(order, account.value if account else None, replayed=True)

    async def _complete(
        self,
        order: Versioned[Order],
        source: PaymentSource,
        *,
        replayed: bool,
        settle: Settle,
        account: Versioned[Account] | None = None,
    ) -> OrderOutcome:
        value = order.value
        try:
            result = await self._gateway.charge(
                tenant_id=value.tenant_id,
                idempotency_key=value.key,
                amount_minor=value.amount_minor,
                currency=value.currency,
                source=source,
                description=f"Communications Credits {value.kind.value}",
            )
        except GatewayTimeout:
            logger.warning("gateway timeout, order %s stays pending", value.key)
            return OrderOutcome(value, replayed=replayed)
        except PaymentDeclined as declined:
            return await self._fail(order, declined.reason)
        except IdempotencyConflict as error:
            raise OrderRejected("key reused") from error
        return await self._book(
            order, result.gateway_reference, replayed=replayed, settle=settle, account=account
        )

    async def _fail(self, order: Versioned[Order], reason: DeclineReason) -> OrderOutcome:
        failed = replace(
            order.value,
            status=OrderStatus.FAILED,
            failure_reason=reason.value,
            updated_at=self._clock(),
        )
        try:
            await self._repo.update_order(order, failed)
        except ConcurrencyConflict:
            current = await self._repo.get_order(order.value.tenant_id, order.value.key)
            if current is not None:
                return OrderOutcome(current.value, replayed=True)
        return OrderOutcome(failed)

    async def _book(
        self,
        order: Versioned[Order],
        gateway_reference: str,
        *,
        replayed: bool,
        settle: Settle,
        account: Versioned[Account] | None = None,
    ) -> OrderOutcome:
        """`account` is the account as read before the charge: the first attempt books on it,
        saving a read; if it changed meanwhile, its ETag fails the commit and we reload."""
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
            now = self._clock()
            change = ledger.credit(
                account.value,
                current_order.value.amount_minor,
                kind=current_order.value.kind,
                actor=current_order.value.actor,
                reference=key,
                at=now,
                order_key=key,
            )
            booked = replace(
                current_order.value,
                status=OrderStatus.SUCCEEDED,
                gateway_reference=gateway_reference,
                lot_id=change.lots[0].lot_id,
                updated_at=now,
            )
            settled, events = settle(change.account, booked)
            change = replace(change, account=settled)
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


def _source(account: Account, method: PaymentMethod) -> PaymentSource:
    if method.kind == MethodKind.CARD:
        card = account.card(method.card_id)
        if card is None:
            raise OrderRejected("card")
        return PaymentSource(card_token=card.token)
    if method.agreement_number not in account.agreements:
        raise OrderRejected("agreement")
    return PaymentSource(
        agreement_number=method.agreement_number, purchase_order=method.purchase_order
    )
