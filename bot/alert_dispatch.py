"""The alert dispatcher: outbox events become one message per recipient, sent exactly once.

A pass over a tenant (`dispatch`) has two steps, each safe to repeat after a crash:

1. Fan-out. Every outbox event not yet marked becomes one delivery per recipient (an admin's
   personal chat, or a subscribed channel), with a deterministic id; then the event is marked.
   A crash in between repeats the fan-out, whose inserts of existing deliveries do nothing.
2. Delivery. Each due delivery is claimed (an ETag-guarded write: two dispatchers can never
   both claim it), sent, and its outcome recorded. A claim that outlives its time without an
   outcome means the sender died while the message was on its way: Bot Framework's create is
   not idempotent and a bot cannot read a Teams chat back, so the message may well have
   arrived, and it is marked `unconfirmed` in the history rather than sent a second time.
   Every alert about a state is checked against the account right before it is sent: one no
   longer true (funds came in, a later recharge succeeded, auto-recharge is back on, the
   expiring funds were used up, the forecast no longer runs out within its threshold) is not
   sent and is marked `superseded` (`credits.alerts.superseded` says which are true).

Two triggers run passes: a money change wakes its tenant at once (`wake`), and a leased sweep
job wakes every tenant now and then, which finds what a crash left behind. Tenants are
dispatched concurrently (bounded), each conversation's alerts in order; a throttled or slow
tenant holds its own slot only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from botbuilder.schema import Activity, ConversationReference

from bot.proactive import Outcome, SendResult
from bot.rate_limits import TeamsRateLimits
from cards.alert_cards import AlertCards
from credits.alerts import (
    BACKOFF_BASE,
    STATEFUL_KINDS,
    AlertPreferences,
    AlertStore,
    Delivery,
    DeliveryClaimed,
    DeliveryState,
    raised_at_default,
    superseded,
)
from credits.conversations import Conversations, StoredConversation
from credits.forecast import Forecast
from credits.model import Account, EventKind, Lot, MethodKind, OutboxEvent
from credits.repository import Versioned
from credits.wakeups import Wakeups

logger = logging.getLogger(__name__)

# A claim outliving this had its sender die: the send timeout plus generous slack.
CLAIM_TTL = timedelta(minutes=2)
# Tenants dispatched at once; each holds at most a few connections (one per conversation).
TENANT_CONCURRENCY = 64


class EventSource(Protocol):
    async def undelivered_events(self, tenant_id: str) -> list[OutboxEvent]: ...

    async def mark_fanned_out(self, tenant_id: str, event_id: str) -> None: ...

    async def get_account(self, tenant_id: str) -> Versioned[Account] | None: ...

    async def list_lots(self, tenant_id: str) -> list[Lot]: ...


class Sender(Protocol):
    async def send(
        self,
        reference: ConversationReference,
        activity: Activity,
        claim: Callable[[], Awaitable[bool]] | None = None,
    ) -> SendResult: ...


@dataclass
class DispatchReport:
    fanned_out: int = 0
    created: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    gone: int = 0
    unconfirmed: int = 0
    superseded: int = 0


class AlertDispatcher:
    def __init__(
        self,
        *,
        events: EventSource,
        store: AlertStore,
        conversations: Conversations,
        is_admin: Callable[[str, str], Awaitable[bool]],
        cards: AlertCards,
        sender: Sender,
        limits: TeamsRateLimits,
        clock: Callable[[], datetime],
        errors: tuple[type[Exception], ...],
        runway_days: Callable[[str], Awaitable[int | None]] | None = None,
        forecast: Callable[[str], Awaitable[Forecast | None]] | None = None,
        claim_ttl: timedelta = CLAIM_TTL,
        backoff_base: timedelta = BACKOFF_BASE,
        concurrency: int = TENANT_CONCURRENCY,
        rng: random.Random | None = None,
        wakeups: Wakeups | None = None,
    ) -> None:
        self._events = events
        self._store = store
        self._conversations = conversations
        self._is_admin = is_admin
        self._cards = cards
        self._sender = sender
        self._limits = limits
        self._clock = clock
        self._errors = errors
        self._runway_days = runway_days
        self._forecast = forecast
        self._claim_ttl = claim_ttl
        self._backoff_base = backoff_base
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(concurrency)
        self._wakeups = wakeups or Wakeups()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # --- triggers --------------------------------------------------------------------------

    def wake(self, tenant_id: str) -> None:
        """Dispatch this tenant soon (called after a commit that wrote alert events)."""
        self._wakeups(tenant_id)

    async def wake_async(self, tenant_id: str) -> None:
        """`wake` for the sweep job, whose per-tenant step is a coroutine."""
        self.wake(tenant_id)

    async def run(self) -> None:
        """Serve wake-ups until cancelled."""
        try:
            while True:
                await self._wakeups.event.wait()
                for tenant_id in self._wakeups.take():
                    if tenant_id in self._running:
                        self._again.add(tenant_id)  # run once more when the current pass ends
                        continue
                    self._running.add(tenant_id)
                    task = asyncio.create_task(self._pass(tenant_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            for timer in self._timers.values():
                timer.cancel()
            for task in list(self._tasks):
                task.cancel()

    async def idle(self) -> None:
        """Return once no pass is running or waiting to run (tests and benchmarks)."""
        while self._wakeups.tenants or self._running or self._tasks:  # noqa: ASYNC110 - three sets
            await asyncio.sleep(0.01)

    async def _pass(self, tenant_id: str) -> None:
        try:
            async with self._semaphore:
                await self.dispatch(tenant_id)
        except self._errors:
            # The sweep visits every tenant again; one tenant's trouble stays its own.
            logger.exception("alert dispatch failed for tenant %s", tenant_id)
        finally:
            self._running.discard(tenant_id)
            if tenant_id in self._again:
                self._again.discard(tenant_id)
                self.wake(tenant_id)

    def _wake_at(self, tenant_id: str, when: datetime) -> None:
        delay = max(0.0, (when - self._clock()).total_seconds())
        loop = asyncio.get_running_loop()
        existing = self._timers.get(tenant_id)
        if existing is not None and not existing.cancelled():
            if existing.when() <= loop.time() + delay:
                return
            existing.cancel()
        self._timers[tenant_id] = loop.call_later(delay, self._timer_fired, tenant_id)

    def _timer_fired(self, tenant_id: str) -> None:
        self._timers.pop(tenant_id, None)
        self.wake(tenant_id)

    # --- one pass over a tenant ------------------------------------------------------------

    async def dispatch(self, tenant_id: str) -> DispatchReport:
        report = DispatchReport()
        # A tenant with nothing to do costs the sweep two reads: events, then open deliveries.
        conversations: dict[str, StoredConversation] | None = None
        events = await self._events.undelivered_events(tenant_id)
        if events:
            conversations = await self._active(tenant_id)
            await self._fan_out(tenant_id, events, conversations, report)
        now = self._clock()
        by_conversation: dict[str, list[Versioned[Delivery]]] = defaultdict(list)
        for current in await self._store.open_deliveries(tenant_id):
            delivery = current.value
            if delivery.state == DeliveryState.SENDING:
                if delivery.claimed_until is not None and delivery.claimed_until < now:
                    await self._record(
                        current,
                        delivery.ended(DeliveryState.UNCONFIRMED, now, "sender stopped mid-send"),
                        report,
                    )
                elif delivery.claimed_until is not None:
                    self._wake_at(tenant_id, delivery.claimed_until)
            elif delivery.due(now):
                by_conversation[delivery.conversation_id].append(current)
            elif delivery.next_at is not None:
                self._wake_at(tenant_id, delivery.next_at)
        if by_conversation and conversations is None:
            conversations = await self._active(tenant_id)
        await asyncio.gather(
            *(
                self._send_in_order(tenant_id, (conversations or {}).get(cid), rows, report)
                for cid, rows in by_conversation.items()
            )
        )
        return report

    async def _active(self, tenant_id: str) -> dict[str, StoredConversation]:
        return {c.conversation_id: c for c in await self._conversations.list_active(tenant_id)}

    async def _fan_out(
        self,
        tenant_id: str,
        events: list[OutboxEvent],
        conversations: dict[str, StoredConversation],
        report: DispatchReport,
    ) -> None:
        current = await self._events.get_account(tenant_id)
        account = current.value if current is not None else Account(tenant_id, "USD")
        preferences = await self._store.all_preferences(tenant_id)
        chosen = {t for p in preferences.values() for t in p.thresholds_minor}
        admins: dict[str, bool] = {}
        for event in events:
            at_default = raised_at_default(event, account, chosen)
            recipients = [
                c
                for c in conversations.values()
                if await self._wants(c, event, at_default, preferences, admins)
            ]
            data = {**event.data, **await self._context(tenant_id, event, account)}
            deliveries = [
                Delivery(
                    tenant_id=tenant_id,
                    event_id=event.event_id,
                    kind=event.kind,
                    event_at=event.at,
                    data=data,
                    conversation_id=c.conversation_id,
                    conversation_kind=c.kind,
                    locale=c.locale,
                    recipient=c.name,
                    updated_at=self._clock(),
                )
                for c in recipients
            ]
            report.created += await self._store.create_deliveries(deliveries)
            await self._events.mark_fanned_out(tenant_id, event.event_id)
            report.fanned_out += 1
            if not recipients:
                logger.info("alert %s of tenant %s has no recipient", event.event_id, tenant_id)

    async def _wants(
        self,
        conversation: StoredConversation,
        event: OutboxEvent,
        at_default: bool,
        preferences: dict[str, AlertPreferences],
        admins: dict[str, bool],
    ) -> bool:
        if conversation.kind != "personal":
            return conversation.subscribed  # a channel an admin subscribed hears every alert
        user_id = conversation.user_aad_object_id
        if not user_id:
            return False
        if user_id not in admins:
            # Roles change: someone who lost the role no longer hears about the money.
            admins[user_id] = await self._is_admin(conversation.tenant_id, user_id)
        if not admins[user_id]:
            return False
        return preferences.get(user_id, AlertPreferences()).wants(event, at_default=at_default)

    async def _context(
        self, tenant_id: str, event: OutboxEvent, account: Account
    ) -> dict[str, str | int | bool | None]:
        """What the card needs beyond the event: the currency, auto-recharge, runway, method."""
        context: dict[str, str | int | bool | None] = {
            "currency": account.currency,
            "auto_recharge": account.auto_recharge.enabled,
        }
        if event.kind == EventKind.BALANCE_LOW and self._runway_days is not None:
            context["runway_days"] = await self._runway_days(tenant_id)
        if event.kind == EventKind.RECHARGE_SUCCEEDED:
            method_id = account.auto_recharge.method_id or account.default_method_id
            if method_id.startswith(f"{MethodKind.AGREEMENT.value}:"):
                context["method_agreement"] = method_id.split(":", 1)[1]
            elif (card := account.card(method_id)) is not None:
                context |= {
                    "method_brand": card.brand,
                    "method_last4": card.last4,
                    "method_month": card.expiry_month,
                    "method_year": card.expiry_year,
                }
        return context

    async def _send_in_order(
        self,
        tenant_id: str,
        conversation: StoredConversation | None,
        rows: list[Versioned[Delivery]],
        report: DispatchReport,
    ) -> None:
        for index, current in enumerate(rows):
            delivery = current.value
            if conversation is None:
                # Removed since the fan-out (403/404 seen, or uninstalled): nobody to tell.
                await self._record(
                    current,
                    delivery.ended(DeliveryState.GONE, self._clock(), "conversation inactive"),
                    report,
                )
                continue
            await self._limits.acquire(tenant_id, delivery.conversation_id)
            why = await self._no_longer_true(tenant_id, delivery)
            if why:
                await self._record(
                    current,
                    delivery.ended(DeliveryState.SUPERSEDED, self._clock(), f"{why} at send time"),
                    report,
                )
                continue
            claims: list[Versioned[Delivery]] = []
            result = await self._sender.send(
                ConversationReference.deserialize(conversation.reference),
                self._cards.activity(delivery),
                functools.partial(self._claim, current, claims),
            )
            if result.outcome == Outcome.NOT_CLAIMED:
                return  # another dispatcher is sending this conversation's alerts
            await self._limits.sent(tenant_id, delivery.conversation_id)
            claimed = claims[0]
            sent = claimed.value
            now = self._clock()
            if result.outcome == Outcome.SENT:
                await self._record(claimed, _delivered(sent, now, result.activity_id), report)
                continue
            if result.outcome == Outcome.RETRY:
                after = sent.retry_or_die(
                    now, result.error, result.retry_after, self._rng, self._backoff_base
                )
                await self._record(claimed, after, report)
                if after.next_at is not None:
                    self._wake_at(tenant_id, after.next_at)
                # Later alerts of this conversation wait for this one: they arrive in order.
                return
            if result.outcome == Outcome.GONE:
                logger.warning(
                    "conversation %s of tenant %s is gone (%s): marked inactive",
                    delivery.conversation_id,
                    tenant_id,
                    result.error,
                )
                await self._conversations.deactivate(tenant_id, delivery.conversation_id)
                await self._record(
                    claimed, sent.ended(DeliveryState.GONE, now, result.error), report
                )
                for rest in rows[index + 1 :]:
                    await self._record(
                        rest, rest.value.ended(DeliveryState.GONE, now, result.error), report
                    )
                return
            # Rejected: the same message would be refused again.
            await self._record(claimed, sent.ended(DeliveryState.DEAD, now, result.error), report)

    async def _no_longer_true(self, tenant_id: str, delivery: Delivery) -> str:
        """Why this alert is no longer true of the account ("" while it is).

        Read right before the send, not at fan-out: between the commit that raised the alert
        and its turn to go out, a purchase or a recharge may have lifted the balance, a retry
        may have recharged, an admin may have switched auto-recharge back on.
        """
        if delivery.kind not in STATEFUL_KINDS:
            return ""
        current = await self._events.get_account(tenant_id)
        if current is None:
            return ""
        lots = None
        if delivery.kind == EventKind.FUNDS_EXPIRING:
            lots = await self._events.list_lots(tenant_id)
        outlook = None
        if delivery.kind == EventKind.RUNWAY_LOW and self._forecast is not None:
            outlook = await self._forecast(tenant_id)
        return superseded(delivery.kind, delivery.data, current.value, lots, outlook)

    async def _claim(self, current: Versioned[Delivery], into: list[Versioned[Delivery]]) -> bool:
        try:
            into.append(
                await self._store.save(
                    current, current.value.claimed(self._clock(), self._claim_ttl)
                )
            )
        except DeliveryClaimed:
            return False
        return True

    async def _record(
        self, current: Versioned[Delivery], new: Delivery, report: DispatchReport
    ) -> None:
        try:
            await self._store.save(current, new)
        except DeliveryClaimed:
            logger.warning(
                "delivery %s changed underfoot; its new owner records it", new.message_id
            )
            return
        match new.state:
            case DeliveryState.DELIVERED:
                report.delivered += 1
            case DeliveryState.PENDING:
                report.retrying += 1
            case DeliveryState.DEAD:
                report.dead += 1
                logger.error("alert %s dead-lettered: %s", new.message_id, new.last_error)
            case DeliveryState.GONE:
                report.gone += 1
            case DeliveryState.UNCONFIRMED:
                report.unconfirmed += 1
                logger.warning("alert %s unconfirmed: its sender stopped mid-send", new.message_id)
            case DeliveryState.SUPERSEDED:
                report.superseded += 1
                logger.info(
                    "alert %s (%s) of tenant %s superseded, not sent: %s",
                    new.message_id,
                    new.event_id,
                    new.tenant_id,
                    new.last_error,
                )


def _delivered(delivery: Delivery, now: datetime, activity_id: str) -> Delivery:
    return replace(delivery.ended(DeliveryState.DELIVERED, now), activity_id=activity_id)
