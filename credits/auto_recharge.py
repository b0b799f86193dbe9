"""The auto-recharge engine: one recharge per crossing, retried with back-off, then disabled.

A debit that leaves the balance below the trigger records a due recharge on the account, in
the same transaction (credits/usage_charging.py). This engine turns that into an order whose
key is the crossing's key plus the attempt number, so any number of instances running it at
once place one order per attempt, and the booking of a success clears the due recharge in the
transaction that adds the money.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from credits import ledger
from credits.alerts import DUE_KEY
from credits.model import (
    Account,
    EntryKind,
    EventKind,
    MethodKind,
    Order,
    OrderStatus,
    OutboxEvent,
    PaymentMethod,
    RechargeState,
)
from credits.money import Money
from credits.orders import OrderOutcome, OrderRejected, OrderService
from credits.repository import ConcurrencyConflict, CreditsRepository, DuplicateRecord

logger = logging.getLogger(__name__)

# Attempts over about a day (Microsoft documents no retry policy; peers retry a few times and
# then switch auto-reload off): the first at once, then after 1 h, then after 23 h.
DEFAULT_BACKOFF = (timedelta(0), timedelta(hours=1), timedelta(hours=23))


@dataclass(frozen=True)
class RechargeResult:
    status: str
    """`none` (nothing due), `waiting` (back-off), `succeeded`, `failed`, `disabled`, `pending`."""
    outcome: OrderOutcome | None = None


class AutoRecharger:
    def __init__(
        self,
        repository: CreditsRepository,
        orders: OrderService,
        *,
        clock: Callable[[], datetime],
        backoff: tuple[timedelta, ...] = DEFAULT_BACKOFF,
    ) -> None:
        self._repo = repository
        self._orders = orders
        self._clock = clock
        self._backoff = backoff

    @property
    def max_attempts(self) -> int:
        return len(self._backoff)

    async def run(self, tenant_id: str) -> RechargeResult:
        current = await self._repo.get_account(tenant_id)
        if current is None:
            return RechargeResult("none")
        account = current.value
        state = account.recharge
        settings = account.auto_recharge
        if not state.due_key or not settings.enabled:
            return RechargeResult("none")
        now = self._clock()
        if state.next_attempt_at and datetime.fromisoformat(state.next_attempt_at) > now:
            return RechargeResult("waiting")
        serial = state.serial + 1
        key = f"{state.due_key}-a{serial}"
        method = _method(account)
        try:
            outcome = await self._orders.place(
                tenant_id,
                key,
                Money(settings.recharge_with_minor, account.currency),
                method,
                actor="auto-recharge",
                kind=EntryKind.RECHARGE,
                settle=_settle(state.due_key),
            )
        except OrderRejected as rejected:
            # The saved method is gone or invalid: a failure like a declined card.
            return await self._failed(tenant_id, key, serial, f"method_{rejected.reason}")
        if outcome.status == OrderStatus.SUCCEEDED:
            return RechargeResult("succeeded", outcome)
        if outcome.status == OrderStatus.PENDING:
            return RechargeResult("pending", outcome)
        return await self._failed(tenant_id, key, serial, outcome.order.failure_reason, outcome)

    async def _failed(
        self,
        tenant_id: str,
        key: str,
        serial: int,
        reason: str,
        outcome: OrderOutcome | None = None,
    ) -> RechargeResult:
        now = self._clock()
        for _ in range(10):
            current = await self._repo.get_account(tenant_id)
            account = current.value
            if account.recharge.serial >= serial:
                return RechargeResult("failed", outcome)  # another instance recorded it
            updated, events, status = self._after_failure(account, key, serial, reason, now)
            change = ledger.Change(updated, (), ())
            try:
                await self._repo.commit(current.etag, change, inserts=events)
            except (ConcurrencyConflict, DuplicateRecord):
                continue  # reload: another instance may have recorded this failure
            logger.warning(
                "auto-recharge attempt %d of %d failed for tenant %s: %s",
                updated.recharge.attempts,
                self.max_attempts,
                tenant_id,
                reason,
            )
            return RechargeResult(status, outcome)
        raise ConcurrencyConflict(f"could not record the failed recharge of {tenant_id}")

    def _after_failure(
        self, account: Account, key: str, serial: int, reason: str, now: datetime
    ) -> tuple[Account, list[OutboxEvent], str]:
        """The account after a failed attempt, its alerts, and `failed` or `disabled`: the
        next attempt after the back-off, or auto-recharge switched off once attempts run out."""
        attempt = account.recharge.attempts + 1
        failed = OutboxEvent(
            f"recharge_failed-{key}",
            EventKind.RECHARGE_FAILED,
            now,
            {
                "reason": reason,
                "attempt": attempt,
                "of": self.max_attempts,
                # The crossing announced by this failure (not by a low-balance alert), and the
                # balance it left: a later success supersedes the failure before it is sent.
                DUE_KEY: account.recharge.due_key,
                "balance_minor": account.balance_minor,
            },
        )
        if attempt >= self.max_attempts:
            updated = replace(
                account,
                auto_recharge=replace(account.auto_recharge, enabled=False),
                recharge=RechargeState(attempts=attempt, serial=serial, last_failure=reason),
            )
            disabled = OutboxEvent(
                f"auto_recharge_disabled-{key}",
                EventKind.AUTO_RECHARGE_DISABLED,
                now,
                {"reason": reason},
            )
            return updated, [failed, disabled], "disabled"
        next_at = (now + self._backoff[attempt]).isoformat()
        updated = replace(
            account,
            recharge=replace(
                account.recharge,
                attempts=attempt,
                serial=serial,
                next_attempt_at=next_at,
                last_failure=reason,
            ),
        )
        failed = replace(failed, data={**failed.data, "next_attempt_at": next_at})
        return updated, [failed], "failed"


def _method(account: Account) -> PaymentMethod:
    method_id = account.auto_recharge.method_id or account.default_method_id
    if method_id.startswith("agreement:"):
        return PaymentMethod(MethodKind.AGREEMENT, agreement_number=method_id[len("agreement:") :])
    return PaymentMethod(MethodKind.CARD, card_id=method_id)


def _settle(due_key: str):
    def settle(account: Account, order: Order) -> tuple[Account, list[OutboxEvent]]:
        if account.recharge.due_key != due_key:
            return account, []
        settled = replace(account, recharge=RechargeState())
        event = OutboxEvent(
            f"recharge_succeeded-{order.key}",
            EventKind.RECHARGE_SUCCEEDED,
            order.updated_at,
            {"amount_minor": order.amount_minor, "balance_minor": account.balance_minor},
        )
        return settled, [event]

    return settle
