"""The alert dispatcher against Azurite and the fake Bot Connector (which stands for Teams).

Every scenario counts what the fake connector accepted: that is what recipients would see.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from credits.alerts import DeliveryState, message_id
from credits.model import EventKind
from dialogs.alert_commands import history_of
from locales import Localizer
from storage.alerts import TableAlertStore
from tests.alerts.harness import SAMPLE_DATA, TENANT, Harness
from tests.fakes.connector import BOT_REMOVED, SERVER_ERROR, Fault, card_texts

L10N = Localizer.from_directory()
EXPECTED_ACTIONS = {
    EventKind.BALANCE_LOW: ["add_funds", "auto_recharge"],
    EventKind.BALANCE_ZERO: ["add_funds"],
    EventKind.RECHARGE_SUCCEEDED: ["status"],
    EventKind.RECHARGE_FAILED: ["update_payment_method", "add_funds"],
    EventKind.AUTO_RECHARGE_DISABLED: ["auto_recharge"],
    EventKind.FUNDS_EXPIRING: ["status"],
    EventKind.FUNDS_EXPIRED: ["status"],
    EventKind.PAYMENT_REVERSED: ["status"],
    EventKind.RUNWAY_LOW: ["add_funds", "auto_recharge"],
}
LOCALES = ["en-US", "pt-BR", "es-ES", "zh-CN", "ru-RU", "fr-FR"]


class SimulatedCrash(Exception):
    """The process dies here: nothing after this point runs."""


@pytest.fixture
async def harness(table_store, settings, connector) -> Harness:
    h = Harness(table_store, settings, connector.url)
    await h.account(last_purchase_minor=50_000)  # the default threshold is 20 %: $100
    return h


async def running(dispatcher):
    """Start the dispatcher's wake-up loop; the caller cancels it."""
    return asyncio.create_task(dispatcher.run())


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def wait_until(predicate, limit: float = 20.0) -> None:
    async with asyncio.timeout(limit):
        while not await predicate():  # noqa: ASYNC110 - polls storage and the fake
            await asyncio.sleep(0.05)


def posts_to(connector, conversation_id: str) -> list:
    return [p for p in connector.posted if p.conversation_id == conversation_id]


@pytest.mark.parametrize("kind", list(EventKind), ids=lambda k: k.value)
async def test_each_kind_reaches_every_recipient_in_their_language(harness, connector, kind):
    for index, locale in enumerate(LOCALES):
        await harness.personal(f"a:admin-{index}", f"admin-{index}", locale=locale)
    await harness.personal("a:someone", "someone", admin=False)
    await harness.channel("19:quiet@thread.tacv2", subscribed=False)
    await harness.channel("19:billing@thread.tacv2", subscribed=True, locale="fr-FR")
    event = await harness.event(kind, SAMPLE_DATA[kind])

    report = await harness.dispatcher().dispatch(TENANT)

    recipients = {f"a:admin-{i}": locale for i, locale in enumerate(LOCALES)}
    recipients["19:billing@thread.tacv2"] = "fr-FR"
    assert report.delivered == len(recipients)
    assert sorted(p.conversation_id for p in connector.posted) == sorted(recipients)
    titles = set()
    for conversation_id, locale in recipients.items():
        [post] = posts_to(connector, conversation_id)
        t = L10N.translator(locale)
        card = post.activity["attachments"][0]["content"]
        # The runway alert's title says how many days are left; the others name their kind.
        title = (
            t.ngettext("alert.runway_low.title_days", 9, days=t.number(9))
            if kind == EventKind.RUNWAY_LOW
            else t(f"alert.{kind.value}.title")
        )
        assert card["body"][0]["text"] == title
        assert [a["data"]["command"] for a in card["actions"]] == EXPECTED_ACTIONS[kind]
        assert post.activity["id"] == message_id(event.event_id, conversation_id)
        assert post.activity["channelData"]["notification"]["alert"] is True
        titles.add(card["body"][0]["text"])
    assert len(titles) == len(LOCALES)  # six languages, six different titles


async def test_card_carries_the_numbers(harness, connector):
    await harness.personal("a:admin", "admin")
    await harness.event(
        EventKind.RECHARGE_FAILED,
        {
            "reason": "insufficient_funds",
            "attempt": 2,
            "of": 3,
            "next_attempt_at": "2026-11-24T12:00:00+00:00",
        },
    )
    await harness.event(
        EventKind.BALANCE_LOW,
        {"threshold_minor": 10_000, "balance_minor": 9_512},
        event_id="balance_low-10000-7",
    )
    await harness.dispatcher().dispatch(TENANT)

    t = L10N.translator("en-US")
    texts = [text for card in connector.cards() for text in card_texts(card)]
    assert t("failed.reason.insufficient_funds") in texts
    assert t("alert.attempt_of", attempt="2", of="3") in texts
    assert t("alert.balance_low.text", balance="$95.12", threshold="$100.00") in texts


async def test_throttled_then_delivered_once_after_retry_after(harness, connector):
    await harness.personal("a:admin", "admin")
    connector.fail("a:admin", Fault(429, retry_after="1"))
    dispatcher = harness.dispatcher()
    task = await running(dispatcher)
    try:
        await harness.event(EventKind.BALANCE_ZERO)  # the commit wakes the dispatcher

        async def delivered() -> bool:
            return len(connector.posted) == 1

        await wait_until(delivered)
        await asyncio.sleep(0.3)  # nothing else follows
    finally:
        await stop(task)
    [throttled] = connector.rejected
    [post] = connector.posted
    assert post.at - throttled.at >= 1.0
    assert post.activity["id"] == throttled.activity["id"]
    [row] = await harness.alerts.recent(TENANT, 10)
    assert (row.state, row.attempts) == (DeliveryState.DELIVERED, 2)


async def test_bot_removed_marks_the_conversation_inactive_and_stops(harness, connector):
    await harness.personal("a:gone", "admin-1")
    await harness.personal("a:here", "admin-2")
    connector.fail("a:gone", BOT_REMOVED)
    await harness.event(EventKind.BALANCE_ZERO)

    report = await harness.dispatcher().dispatch(TENANT)

    assert (report.delivered, report.gone) == (1, 1)
    stored = await harness.conversations.get(TENANT, "a:gone")
    assert stored is not None and not stored.active
    # Later alerts go to the remaining admin only; the removed chat gets no more requests.
    await harness.event(EventKind.FUNDS_EXPIRED, SAMPLE_DATA[EventKind.FUNDS_EXPIRED])
    await harness.dispatcher().dispatch(TENANT)
    assert len(connector.rejected) == 1
    assert [p.conversation_id for p in connector.posted] == ["a:here", "a:here"]


async def test_five_server_errors_dead_letter_visible_in_history(harness, connector):
    await harness.personal("a:admin", "admin")
    connector.fail("a:admin", *[SERVER_ERROR] * 5)
    dispatcher = harness.dispatcher()
    task = await running(dispatcher)
    try:
        await harness.event(EventKind.BALANCE_ZERO)

        async def dead() -> bool:
            rows = await harness.alerts.recent(TENANT, 10)
            return bool(rows) and rows[0].state == DeliveryState.DEAD

        await wait_until(dead)
    finally:
        await stop(task)
    assert len(connector.rejected) == 5
    assert connector.posted == []
    t = L10N.translator("en-US")
    [alert] = history_of(t, await harness.alerts.recent(TENANT, 10))
    assert alert["recipients"][0]["value"] == t.ngettext(
        "alert_history.state.dead", 5, attempts="5"
    )
    # A later pass does not try again.
    await harness.dispatcher().dispatch(TENANT)
    assert len(connector.rejected) == 5


class CrashBeforeMarking:
    """The credits repository, dying right after the deliveries were written."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def mark_fanned_out(self, tenant_id: str, event_id: str) -> None:
        raise SimulatedCrash


class CrashBeforeRecording(TableAlertStore):
    """The alert store of a process that dies when it first records a sent message.

    From that moment on the process does nothing more: every later write fails too, so a
    message it had not yet claimed stays pending, and one it had sent stays unrecorded.
    """

    dead = False

    async def save(self, current, new):
        if self.dead or new.state == DeliveryState.DELIVERED:
            self.dead = True
            raise SimulatedCrash
        return await super().save(current, new)


async def two_admins(harness) -> None:
    await harness.personal("a:one", "admin-1")
    await harness.personal("a:two", "admin-2", locale="ru-RU")


async def test_crash_after_the_commit_before_any_send_delivers_once(harness, connector):
    await two_admins(harness)
    await harness.event(EventKind.BALANCE_ZERO)  # committed; the process dies before a send
    await harness.event(EventKind.FUNDS_EXPIRED, SAMPLE_DATA[EventKind.FUNDS_EXPIRED])
    with pytest.raises(SimulatedCrash):  # and this one dies between fan-out and marking
        await harness.dispatcher(events=CrashBeforeMarking(harness.credits)).dispatch(TENANT)
    assert connector.posted == []

    await harness.dispatcher().dispatch(TENANT)  # after the restart
    await harness.dispatcher().dispatch(TENANT)  # and the sweep once more

    ids = [p.activity["id"] for p in connector.posted]
    assert len(ids) == 4 and len(set(ids)) == 4  # two alerts × two admins, each once
    assert all(r.state == DeliveryState.DELIVERED for r in await harness.alerts.recent(TENANT, 9))


async def test_crash_after_the_send_before_the_record_never_sends_twice(harness, connector):
    await two_admins(harness)
    await harness.event(EventKind.BALANCE_ZERO)
    crashing = CrashBeforeRecording(harness.store.table(harness.store.names.alerts))
    with pytest.raises(SimulatedCrash):
        await harness.dispatcher(store=crashing).dispatch(TENANT)
    await asyncio.sleep(0.5)  # whatever the dead process still had on the wire lands
    sent_before_restart = len(connector.posted)
    assert sent_before_restart >= 1  # a message is out, its record is not

    # Restarted at once: the claim is still live, so the message is neither resent nor lost.
    await harness.dispatcher().dispatch(TENANT)
    # Restarted after the claim expired: the stale claim becomes "unconfirmed", not a resend.
    later = harness.dispatcher(clock=lambda: datetime.now(UTC) + timedelta(minutes=5))
    report = await later.dispatch(TENANT)
    await harness.dispatcher().dispatch(TENANT)

    assert report.unconfirmed == sent_before_restart
    assert sorted(p.conversation_id for p in connector.posted) == ["a:one", "a:two"]
    states = [r.state for r in await harness.alerts.recent(TENANT, 9)]
    assert states.count(DeliveryState.UNCONFIRMED) == sent_before_restart
    assert states.count(DeliveryState.DELIVERED) == 2 - sent_before_restart


async def test_two_dispatchers_at_once_send_each_message_once(harness, connector):
    await two_admins(harness)
    for n in range(5):
        await harness.event(EventKind.BALANCE_ZERO, event_id=f"balance_zero-{n}")
    first, second = harness.dispatcher(), harness.dispatcher()
    for _ in range(3):
        await asyncio.gather(first.dispatch(TENANT), second.dispatch(TENANT))
    ids = [p.activity["id"] for p in connector.posted]
    assert len(ids) == 10 and len(set(ids)) == 10


async def test_preferences_choose_kinds_and_thresholds(harness, connector):
    from credits.alerts import AlertPreferences

    await two_admins(harness)
    await harness.alerts.save_preferences(
        TENANT, "admin-1", AlertPreferences(frozenset({EventKind.BALANCE_LOW}), (50_000,))
    )
    await harness.event(
        EventKind.BALANCE_LOW,
        {"threshold_minor": 50_000, "balance_minor": 49_000},
        event_id="balance_low-50000-3",
    )
    await harness.event(
        EventKind.BALANCE_LOW,
        {"threshold_minor": 10_000, "balance_minor": 9_000},
        event_id="balance_low-10000-4",
    )
    await harness.event(EventKind.BALANCE_ZERO)
    await harness.dispatcher().dispatch(TENANT)
    got = sorted((p.conversation_id, p.activity["summary"]) for p in connector.posted)
    en, ru = L10N.translator("en-US"), L10N.translator("ru-RU")
    assert got == sorted(
        [
            ("a:one", en("alert.balance_low.title")),  # only its own threshold, only low
            ("a:two", ru("alert.balance_low.title")),  # the default threshold ($100)
            ("a:two", ru("alert.balance_zero.title")),
        ]
    )


async def test_thousand_tenant_burst_stays_within_teams_limits(table_store, settings, connector):
    harness = Harness(table_store, settings, connector.url)
    tenants = [f"tenant-{n:04d}" for n in range(1000)]
    hot = tenants[:10]  # these get a dozen alerts at once, which Teams' windows must pace
    semaphore = asyncio.Semaphore(50)

    async def set_up(tenant: str) -> None:
        async with semaphore:
            await harness.account(tenant, last_purchase_minor=50_000)
            await harness.personal(f"a:{tenant}", f"admin-{tenant}", tenant=tenant)

    await asyncio.gather(*(set_up(t) for t in tenants))
    dispatcher = harness.dispatcher()
    task = await running(dispatcher)
    try:

        async def burst(tenant: str) -> None:
            async with semaphore:
                for n in range(12 if tenant in hot else 1):
                    await harness.event(
                        EventKind.BALANCE_ZERO, event_id=f"balance_zero-{n}", tenant=tenant
                    )

        await asyncio.gather(*(burst(t) for t in tenants))
        expected = 990 + 10 * 12

        async def all_posted() -> bool:
            return len(connector.posted) >= expected

        await wait_until(all_posted, limit=600)
        await dispatcher.idle()
    finally:
        await stop(task)
    ids = [p.activity["id"] for p in connector.posted]
    assert len(ids) == expected and len(set(ids)) == expected
    assert connector.rejected == []
    for limit, seconds in ((7, 1.0), (8, 2.0), (60, 30.0)):
        assert connector.window_violations(limit, seconds) == []
    # The hot conversations really were paced: 12 messages cannot all fit in one second.
    for tenant in hot:
        arrivals = sorted(p.at for p in posts_to(connector, f"a:{tenant}"))
        assert arrivals[-1] - arrivals[0] >= 1.0


def test_redelivered_row_keys_are_deterministic():
    from credits.alerts import Delivery
    from storage.alerts import delivery_row_key

    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    one = Delivery(
        TENANT, "balance_zero-1", EventKind.BALANCE_ZERO, at, {}, "a:x", "personal", "en"
    )
    assert delivery_row_key(one) == delivery_row_key(replace(one, locale="fr", attempts=3))
    later = replace(one, event_at=at + timedelta(seconds=1), event_id="balance_zero-2")
    assert delivery_row_key(later) < delivery_row_key(one)  # newest first


async def test_deliveries_older_than_the_retention_are_pruned(harness, connector):
    await harness.personal("a:admin", "admin")
    now = datetime.now(UTC)
    for n, age in enumerate((200, 95, 89, 1)):
        await harness.event(
            EventKind.BALANCE_ZERO, event_id=f"balance_zero-{n}", at=now - timedelta(days=age)
        )
    await harness.dispatcher().dispatch(TENANT)
    assert len(await harness.alerts.recent(TENANT, 10)) == 4

    assert await harness.alerts.prune(TENANT, now - timedelta(days=90)) == 2
    kept = await harness.alerts.recent(TENANT, 10)
    assert [d.event_id for d in kept] == ["balance_zero-3", "balance_zero-2"]
    assert await harness.alerts.prune(TENANT, now - timedelta(days=90)) == 0


async def test_a_slow_tenant_does_not_hold_up_the_others(table_store, settings, connector):
    from tests.fakes.connector import slow

    harness = Harness(table_store, settings, connector.url)
    for tenant in ("tenant-slow", "tenant-quick"):
        await harness.account(tenant)
        await harness.personal(f"a:{tenant}", f"admin-{tenant}", tenant=tenant)
    connector.fail("a:tenant-slow", slow(3.0))  # Teams takes 3 s to answer this chat
    dispatcher = harness.dispatcher()
    task = await running(dispatcher)
    try:
        await harness.event(EventKind.BALANCE_ZERO, tenant="tenant-slow")
        await harness.event(EventKind.BALANCE_ZERO, tenant="tenant-quick")

        async def both() -> bool:
            return len(connector.posted) == 2

        await wait_until(both)
    finally:
        await stop(task)
    # The quick tenant's alert was answered while the slow one was still waiting.
    assert connector.answered == ["a:tenant-quick", "a:tenant-slow"]
