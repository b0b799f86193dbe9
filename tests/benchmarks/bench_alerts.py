"""Benchmark: a burst of alerts fanned out to every tenant's admins and channels.

N tenants, each with two admins' personal chats and one subscribed channel, on Azurite; the
production dispatcher (Wakeups, AlertDispatcher, ProactiveSender through the CloudAdapter, the
Teams rate limits) sends to the fake Bot Connector on loopback. At t0 every tenant gets its
alert events (each tenant's in order, as its ledger commits them; tenants at once), and the
ledger's wake-up starts the dispatch. Prints messages per second, the latency from each event's
commit to its post arriving at the connector, the connector's peak concurrency, Teams'
per-conversation windows as the connector saw them, storage requests per message and peak RSS.
Figures only, no assertions.

    .venv/bin/python -m tests.benchmarks.bench_alerts [--tenants 1000] [--recipients 3]
        [--events-per-tenant 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from urllib.parse import urlparse

from aiohttp import web
from aiohttp.test_utils import TestServer
from botbuilder.core import ConversationState, MemoryStorage
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference
from limits import parse

from bot.adapter import AdapterWithErrorHandler
from bot.alert_dispatch import AlertDispatcher
from bot.proactive import ProactiveSender
from bot.rate_limits import JITTER_MARGIN, PER_CONVERSATION, TeamsRateLimits
from bot.settings import Settings
from cards import CardRenderer
from cards.alert_cards import AlertCards
from credits.alerts import message_id
from credits.model import Account, EventKind, OutboxEvent
from credits.wakeups import Wakeups
from locales import Localizer
from scripts.azurite import Azurite
from storage.alerts import TableAlertStore
from storage.conversations import ConversationRepository
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.fakes.connector import FakeConnector, Posted

# Concurrent storage writes while setting tenants up and while writing the burst.
WRITERS = 64
# The per-conversation windows the fake connector checks, as (limit, seconds).
WINDOWS = ((7, 1.0), (8, 2.0), (60, 30.0))
# Give up when the connector has seen no new message for this long.
STALL = 60.0


def _table_of(url: str) -> str:
    # .../devstoreaccount1/<table>(PartitionKey='..',RowKey='..') or /$batch or /Tables
    path = urlparse(url).path.split("/")[-1]
    return path.split("(")[0] or "?"


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, int(len(ordered) * share) - 1)]


def _best_span(messages: int) -> float:
    """Seconds from a conversation's first message to its last that Teams' windows allow."""
    windows = [(item.amount, item.get_expiry()) for item in map(parse, PER_CONVERSATION)]
    times: list[float] = []
    for i in range(messages):
        times.append(max([0.0, *(times[i - n] + t for n, t in windows if i >= n)]))
    return times[-1] if times else 0.0


class TimedLimits(TeamsRateLimits):
    """The production limits, recording how long each message waited on them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    async def acquire(self, tenant_id: str, conversation_id: str) -> float:
        waited = await super().acquire(tenant_id, conversation_id)
        self.waits.append(waited)
        return waited


def _reference(url: str, conversation_id: str, user: str) -> ConversationReference:
    return ConversationReference(
        activity_id="installing-activity",
        bot=ChannelAccount(id="28:bot", name="Credits"),
        user=ChannelAccount(id=f"29:{user}", aad_object_id=user) if user else None,
        conversation=ConversationAccount(id=conversation_id),
        channel_id="msteams",
        service_url=url + "/",
        locale="en-US",
    )


async def main(tenants: int, recipients: int, events_per_tenant: int) -> None:
    requests: list[str] = []
    counting = False

    def hook(request) -> None:
        if counting:
            requests.append(_table_of(request.http_request.url))

    connector = FakeConnector()
    peers: set[tuple] = set()

    @web.middleware
    async def count_connections(request: web.Request, handler):
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return await handler(request)

    connector_app = connector.app()
    connector_app.middlewares.append(count_connections)
    connector_server = TestServer(connector_app, host="127.0.0.1")
    await connector_server.start_server()
    url = str(connector_server.make_url("")).rstrip("/")

    with Azurite() as azurite:
        settings = Settings.from_mapping(
            {
                "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
                "TABLE_PREFIX": "bench",
                "LOG_LEVEL": "WARNING",
            }
        )
        store = TableStore.from_settings(
            connection_string=azurite.connection_string,
            account_url="",
            prefix=settings.table_prefix,
            request_hook=hook,
        )
        await store.create_tables()
        wakeups = Wakeups()
        credits = TableCreditsRepository(store.table(store.names.credits), wakeups)
        conversations = ConversationRepository(store.table(store.names.conversations))
        localizer = Localizer.from_directory()
        admins: set[str] = set()

        async def is_admin(_tenant: str, user: str) -> bool:
            return user in admins

        limits = TimedLimits()
        dispatcher = AlertDispatcher(
            events=credits,
            store=TableAlertStore(store.table(store.names.alerts)),
            conversations=conversations,
            is_admin=is_admin,
            cards=AlertCards(CardRenderer(), localizer),
            sender=ProactiveSender(
                AdapterWithErrorHandler(settings, ConversationState(MemoryStorage()), localizer),
                "",
            ),
            limits=limits,
            clock=lambda: datetime.now(UTC),
            errors=(),
            rng=random.Random(7),
            wakeups=wakeups,
        )

        # --- set-up: accounts, conversations, admins (not measured) -----------------------
        gate = asyncio.Semaphore(WRITERS)
        recipients_of: dict[str, list[str]] = {}

        async def set_up(n: int) -> None:
            tenant = f"bench-tenant-{n:05d}"
            async with gate:
                # The default low-balance threshold is 20 % of the last purchase: $100.
                await credits.create_account(Account(tenant, "USD", last_purchase_minor=50_000))
                ids = []
                for r in range(recipients):
                    if r % 3 == 2:  # every third recipient is a channel an admin subscribed
                        conversation_id = f"19:bench-{n:05d}-{r}@thread.tacv2"
                        await conversations.upsert(
                            tenant_id=tenant,
                            conversation_id=url,
                            reference=_reference(url, conversation_id, "").serialize(),
                            kind="channel",
                            locale="en-US",
                        )
                        await conversations.set_subscribed(tenant, conversation_id, True, "admin")
                    else:
                        user = f"admin-{n:05d}-{r}"
                        admins.add(user)
                        conversation_id = f"a:bench-{n:05d}-{r}"
                        await conversations.upsert(
                            tenant_id=tenant,
                            conversation_id=url,
                            reference=_reference(url, conversation_id, user).serialize(),
                            kind="personal",
                            locale="en-US",
                            user_aad_object_id=user,
                        )
                    ids.append(conversation_id)
                recipients_of[tenant] = ids

        begin = time.perf_counter()
        await asyncio.gather(*(set_up(n) for n in range(tenants)))
        print(
            f"set-up: {tenants:,} tenants x {recipients} recipients "
            f"in {time.perf_counter() - begin:.1f} s (not measured)"
        )

        # --- the burst -------------------------------------------------------------------
        committed: dict[str, float] = {}  # event id -> monotonic time insert_event returned

        async def write_events(tenant: str) -> None:
            # A tenant's events are committed one after another (its ledger serialises them).
            for e in range(events_per_tenant):
                event = OutboxEvent(
                    f"balance_low-{tenant}-{e}",
                    EventKind.BALANCE_LOW,
                    datetime.now(UTC),
                    {"threshold_minor": 10_000, "balance_minor": 9_500 - e},
                )
                async with gate:
                    assert await credits.insert_event(tenant, event)
                committed[event.event_id] = time.monotonic()

        expected = tenants * recipients * events_per_tenant
        runner = asyncio.create_task(dispatcher.run())
        try:
            requests.clear()
            counting = True
            t0 = time.monotonic()
            cpu0 = time.process_time()
            await asyncio.gather(*(write_events(tenant) for tenant in recipients_of))
            burst = time.monotonic() - t0
            seen, since = 0, time.monotonic()
            while len(connector.posted) < expected:
                if len(connector.posted) > seen:
                    seen, since = len(connector.posted), time.monotonic()
                elif time.monotonic() - since > STALL:
                    raise TimeoutError(
                        f"{seen:,} of {expected:,} messages posted, none for {STALL:.0f} s"
                    )
                await asyncio.sleep(0.01)
            await dispatcher.idle()
            wall = max(p.at for p in connector.posted) - t0
            cpu = time.process_time() - cpu0
            counting = False
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            await store.close()
            await connector_server.close()

    # --- figures -------------------------------------------------------------------------
    posted = connector.posted
    arrival = {p.activity.get("id"): p for p in posted}
    latencies = []
    missing = 0
    for tenant, ids in recipients_of.items():
        for e in range(events_per_tenant):
            event_id = f"balance_low-{tenant}-{e}"
            for conversation_id in ids:
                post = arrival.get(message_id(event_id, conversation_id))
                if post is None:
                    missing += 1
                else:
                    latencies.append(post.at - committed[event_id])
    latencies.sort()
    per_conversation: dict[str, list[Posted]] = defaultdict(list)
    for p in sorted(posted, key=lambda p: p.at):
        per_conversation[p.conversation_id].append(p)
    out_of_order = 0
    for tenant, ids in recipients_of.items():
        order = [f"balance_low-{tenant}-{e}" for e in range(events_per_tenant)]
        for conversation_id in ids:
            wanted = [message_id(event_id, conversation_id) for event_id in order]
            got = [p.activity.get("id") for p in per_conversation[conversation_id]]
            out_of_order += got != wanted
    spans = sorted(ps[-1].at - ps[0].at for ps in per_conversation.values())
    storage = Counter(requests)
    total_requests = sum(storage.values())
    dispatch_requests = total_requests - len(committed)

    print(
        f"alert fan-out, {tenants:,} tenants x {recipients} recipients x "
        f"{events_per_tenant} event(s): {len(posted):,} messages of {expected:,} "
        f"({len(connector.rejected)} rejected, {missing} missing) in {wall:.2f} s, "
        f"{len(posted) / wall:,.0f} alerts/s (burst of {len(committed):,} events written "
        f"in {burst:.2f} s)"
    )
    print(
        f"  commit -> post latency: median {statistics.median(latencies) * 1000:,.0f} ms, "
        f"p95 {_percentile(latencies, 0.95) * 1000:,.0f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1000:,.0f} ms, "
        f"max {latencies[-1] * 1000:,.0f} ms"
    )
    waits = sorted(limits.waits)
    print(
        f"  time in TeamsRateLimits.acquire (event-loop lag included): "
        f"{sum(w > 0.001 for w in waits):,} of {len(waits):,} messages over 1 ms, "
        f"max {waits[-1]:.2f} s, total {sum(waits):,.1f} s"
    )
    if events_per_tenant > 1:
        best = _best_span(events_per_tenant)
        best += JITTER_MARGIN if best else 0.0  # the limiter waits a little past a window
        print(
            f"  per-conversation span (first to last post): median "
            f"{statistics.median(spans):.2f} s, max {spans[-1]:.2f} s "
            f"(the windows allow {best:.2f} s for {events_per_tenant} messages); "
            f"{out_of_order} conversations out of event order"
        )
    print(
        f"  this process's CPU from t0: {cpu:.2f} s of {wall:.2f} s wall, "
        f"{cpu / len(posted) * 1000:.1f} ms per message (dispatcher, fake connector, writers)"
    )
    print(
        f"  fake connector: peak {connector.peak_in_flight} requests in flight, "
        f"{len(peers):,} client connections opened"
    )
    for limit, seconds in WINDOWS:
        violations = connector.window_violations(limit, seconds)
        print(f"  more than {limit} in {seconds:g} s: {len(violations)} conversations")
    print(
        f"  Table requests: {total_requests / len(posted):.2f} per message "
        f"({dispatch_requests / len(posted):.2f} by the dispatcher, "
        f"{len(committed) / len(posted):.2f} writing the events)"
    )
    for table, count in sorted(storage.items()):
        print(f"    {table}: {count / len(posted):.2f} per message")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--recipients", type=int, default=3)
    parser.add_argument("--events-per-tenant", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.recipients, args.events_per_tenant))
