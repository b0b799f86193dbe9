"""The alert dispatcher wired to Azurite and the fake Bot Connector, for the alert tests.

Everything is the production code (repositories on Azurite, the CloudAdapter sending through
botbuilder's connector client, the Teams rate limits) except the two outside services: the
fake connector stands for the Bot Connector (Teams), and `admins` stands for the directory's
role check (its own tests are in tests/directory).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from botbuilder.core import ConversationState, MemoryStorage
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

from bot.adapter import AdapterWithErrorHandler
from bot.alert_dispatch import AlertDispatcher
from bot.proactive import ProactiveSender
from bot.rate_limits import TeamsRateLimits
from cards import CardRenderer
from cards.alert_cards import AlertCards
from credits.model import Account, EventKind, OutboxEvent
from credits.wakeups import Wakeups
from locales import Localizer
from storage.alerts import TableAlertStore
from storage.conversations import ConversationRepository
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore

TENANT = "tenant-alerts"


class Harness:
    def __init__(self, store: TableStore, settings, connector_url: str) -> None:
        self.store = store
        self.settings = settings
        self.url = connector_url
        self.wakeups = Wakeups()
        self.credits = TableCreditsRepository(store.table(store.names.credits), self.wakeups)
        self.alerts = TableAlertStore(store.table(store.names.alerts))
        self.conversations = ConversationRepository(store.table(store.names.conversations))
        self.localizer = Localizer.from_directory()
        self.admins: set[str] = set()
        self.adapter = AdapterWithErrorHandler(
            settings, ConversationState(MemoryStorage()), self.localizer
        )

    def dispatcher(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        store: TableAlertStore | None = None,
        events=None,
        backoff_base: timedelta = timedelta(milliseconds=20),
        limits: TeamsRateLimits | None = None,
    ) -> AlertDispatcher:
        async def is_admin(_tenant: str, user: str) -> bool:
            return user in self.admins

        return AlertDispatcher(
            events=events or self.credits,
            store=store or self.alerts,
            conversations=self.conversations,
            is_admin=is_admin,
            cards=AlertCards(CardRenderer(), self.localizer),
            sender=ProactiveSender(self.adapter, ""),
            limits=limits or TeamsRateLimits(),
            clock=clock,
            errors=(),
            backoff_base=backoff_base,
            rng=random.Random(7),
            wakeups=self.wakeups,
        )

    async def account(self, tenant: str = TENANT, **fields) -> None:
        await self.credits.create_account(Account(tenant, "USD", **fields))

    async def personal(
        self,
        conversation_id: str,
        user: str,
        *,
        locale: str = "en-US",
        admin: bool = True,
        tenant: str = TENANT,
    ) -> None:
        if admin:
            self.admins.add(user)
        await self.conversations.upsert(
            tenant_id=tenant,
            conversation_id=conversation_id,
            reference=self.reference(conversation_id, user).serialize(),
            kind="personal",
            locale=locale,
            user_aad_object_id=user,
        )

    async def channel(
        self,
        conversation_id: str,
        *,
        subscribed: bool,
        locale: str = "en-US",
        tenant: str = TENANT,
    ) -> None:
        await self.conversations.upsert(
            tenant_id=tenant,
            conversation_id=conversation_id,
            reference=self.reference(conversation_id, "").serialize(),
            kind="channel",
            locale=locale,
        )
        if subscribed:
            await self.conversations.set_subscribed(tenant, conversation_id, True, "admin")

    def reference(self, conversation_id: str, user: str) -> ConversationReference:
        return ConversationReference(
            activity_id="installing-activity",
            bot=ChannelAccount(id="28:bot", name="Credits"),
            user=ChannelAccount(id=f"29:{user}", aad_object_id=user) if user else None,
            conversation=ConversationAccount(id=conversation_id),
            channel_id="msteams",
            service_url=self.url + "/",
            locale="en-US",
        )

    async def event(
        self,
        kind: EventKind,
        data: dict | None = None,
        *,
        event_id: str | None = None,
        tenant: str = TENANT,
        at: datetime | None = None,
    ) -> OutboxEvent:
        event = OutboxEvent(
            event_id or f"{kind.value}-1", kind, at or datetime.now(UTC), data or {}
        )
        assert await self.credits.insert_event(tenant, event)
        return event


SAMPLE_DATA: dict[EventKind, dict] = {
    EventKind.BALANCE_LOW: {"threshold_minor": 10_000, "balance_minor": 9_500},
    EventKind.BALANCE_ZERO: {},
    EventKind.RECHARGE_SUCCEEDED: {"amount_minor": 50_000, "balance_minor": 59_000},
    EventKind.RECHARGE_FAILED: {
        "reason": "declined",
        "attempt": 1,
        "of": 3,
        "next_attempt_at": "2026-11-23T13:00:00+00:00",
    },
    EventKind.AUTO_RECHARGE_DISABLED: {"reason": "expired_card"},
    EventKind.FUNDS_EXPIRING: {
        "amount_minor": 20_000,
        "expires_at": "2026-12-20T00:00:00+00:00",
        "days": 30,
    },
    EventKind.FUNDS_EXPIRED: {"amount_minor": 20_000, "expired_at": "2026-11-20T00:00:00+00:00"},
    EventKind.PAYMENT_REVERSED: {
        "reason": "refund",
        "amount_minor": 20_000,
        "taken_minor": 5_000,
        "owed_minor": 15_000,
        "owed_total_minor": 15_000,
        "balance_minor": 0,
        "order": "0123456789AB",
    },
    EventKind.RUNWAY_LOW: {
        "threshold_days": 14,
        "days_left": 9,
        "runs_out": "2026-12-02",
        "cause": "spending",
        "mean_minor": 4_250,
        "balance_minor": 38_250,
    },
}
