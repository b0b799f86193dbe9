"""Balance alerts: who hears them is decided at raise time, whether to send them at send time.

The money moves through the real order service and usage charger (the sandbox gateway, the
ledger on Azurite); the real dispatcher fans out and sends to the fake Bot Connector, which
stands for Teams. Nothing runs in the background: each test commits, then dispatches, so the
money change that lands between the commit of an alert and its send is not left to timing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from credits.alerts import AlertPreferences, DeliveryState
from credits.auto_recharge import AutoRecharger
from credits.expiry import ExpiryJob
from credits.model import (
    Account,
    AutoRecharge,
    EventKind,
    MethodKind,
    OrderStatus,
    OutboxEvent,
    PaymentMethod,
    SavedCard,
)
from credits.money import Money
from credits.orders import OrderService
from credits.usage_charging import UsageCharger
from dialogs.alert_commands import history_of
from locales import Localizer
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from tests.alerts.harness import TENANT, Harness
from tests.fakes.connector import card_texts
from tests.support.usage_books import Row

EN = Localizer.from_directory().translator("en-US")
LOCALES = ["en-US", "pt-BR", "es-ES", "zh-CN", "ru-RU", "fr-FR"]


class Money_:
    """The tenant's money, moved the way the service moves it."""

    def __init__(self, harness: Harness) -> None:
        store = harness.store
        self.gateway = SandboxGateway(
            TableSandboxRecords(store.table(store.names.sandbox_payments)), timeout=10.0
        )
        clock = lambda: datetime.now(UTC)  # noqa: E731 - the services take a clock
        self.orders = OrderService(harness.credits, self.gateway, clock=clock)
        self.charger = UsageCharger(harness.credits, clock=clock)
        self.repo = harness.credits

    async def open(self) -> None:
        held = await self.gateway.seed_card(TENANT, "4242424242424242")
        card = SavedCard("card-1", held.reference, held.brand, held.last4, 12, held.expiry_year)
        await self.repo.create_account(
            Account(TENANT, "USD", cards=(card,), default_method_id="card-1")
        )

    async def add_funds(self, minor: int) -> None:
        outcome = await self.orders.place(
            TENANT,
            uuid.uuid4().hex,
            Money(minor, "USD"),
            PaymentMethod(MethodKind.CARD, card_id="card-1"),
            actor="admin",
        )
        assert outcome.status == OrderStatus.SUCCEEDED

    async def use(self, minor: int) -> None:
        await self.charger.charge(TENANT, [Row(str(uuid.uuid4()), minor)], source="csv")

    async def balance(self) -> int:
        return (await self.repo.get_account(TENANT)).value.balance_minor


@pytest.fixture
async def harness(table_store, settings, connector) -> Harness:
    return Harness(table_store, settings, connector.url)


@pytest.fixture
async def money(harness) -> Money_:
    tenant_money = Money_(harness)
    await tenant_money.open()
    return tenant_money


async def admins(harness: Harness) -> list[str]:
    await harness.personal("a:one", "admin-1")
    await harness.personal("a:two", "admin-2", locale="fr-FR")
    return ["a:one", "a:two"]


def posted_titles(connector) -> list[tuple[str, str]]:
    return sorted((p.conversation_id, p.activity["summary"]) for p in connector.posted)


async def test_the_issue_a_low_balance_alert_still_true_reaches_the_admins(
    harness, money, connector
):
    """$1,000 bought, usage down to $111.15, then $50 more: the alert was raised at the $200 of
    that time (20 % of $1,000); the purchase moved today's default to $10, but the balance,
    $161.15, is still below $200, so the admins hear of it."""
    chats = await admins(harness)
    await money.add_funds(100_000)
    await money.use(88_885)
    await money.add_funds(5_000)
    assert await money.balance() == 16_115

    report = await harness.dispatcher().dispatch(TENANT)

    assert (report.delivered, report.superseded) == (2, 0)
    fr = Localizer.from_directory().translator("fr-FR")
    assert posted_titles(connector) == [
        (chats[0], EN("alert.balance_low.title")),
        (chats[1], fr("alert.balance_low.title")),
    ]
    english = next(p for p in connector.posted if p.conversation_id == chats[0])
    card = english.activity["attachments"][0]["content"]
    text = EN("alert.balance_low.text", balance="$111.15", threshold="$200.00")
    assert text in card_texts(card)


async def test_funds_added_before_the_send_supersede_the_alert(harness, money, connector, caplog):
    """Usage crosses $200, then a purchase lifts the balance back above it before the alert's
    turn: nothing is posted, the history says superseded, and the log says why."""
    await admins(harness)
    await money.add_funds(100_000)
    await money.use(88_885)  # $111.15: below the $200 default
    await money.add_funds(10_000)  # $211.15: above it again

    with caplog.at_level(logging.INFO, logger="bot.alert_dispatch"):
        report = await harness.dispatcher().dispatch(TENANT)

    assert connector.posted == [] and connector.rejected == []
    assert (report.created, report.superseded, report.delivered) == (2, 2, 0)
    rows = await harness.alerts.recent(TENANT, 10)
    assert {(r.kind, r.state) for r in rows} == {(EventKind.BALANCE_LOW, DeliveryState.SUPERSEDED)}
    superseded_logs = [r for r in caplog.records if "superseded" in r.getMessage()]
    assert len(superseded_logs) == 2
    for locale in LOCALES:
        t = Localizer.from_directory().translator(locale)
        [alert] = history_of(t, rows)
        assert [r["value"] for r in alert["recipients"]] == [
            t("alert_history.state.superseded")
        ] * 2
        assert not any(r["failed"] for r in alert["recipients"])
    # A later pass leaves them be.
    await harness.dispatcher().dispatch(TENANT)
    assert connector.posted == []


async def test_zero_superseded_while_low_is_still_true(harness, money, connector):
    """Spent to zero, then $50 bought: zero is no longer true, below $100 still is."""
    [chat, _] = await admins(harness)
    await money.add_funds(50_000)  # default threshold: $100
    await money.use(50_000)
    await money.add_funds(5_000)

    report = await harness.dispatcher().dispatch(TENANT)

    assert (report.delivered, report.superseded) == (2, 2)
    kinds = {p.activity["summary"] for p in connector.posted if p.conversation_id == chat}
    assert kinds == {EN("alert.balance_low.title")}
    states = {(r.kind, r.state) for r in await harness.alerts.recent(TENANT, 10)}
    assert states == {
        (EventKind.BALANCE_LOW, DeliveryState.DELIVERED),
        (EventKind.BALANCE_ZERO, DeliveryState.SUPERSEDED),
    }


async def test_a_threshold_of_their_own_is_checked_against_the_balance_too(
    harness, money, connector
):
    await admins(harness)
    await harness.alerts.save_preferences(
        TENANT, "admin-1", AlertPreferences(thresholds_minor=(50_000,))
    )
    current = await money.repo.get_account(TENANT)
    await money.repo.save_account(current, replace(current.value, low_balance_thresholds=(50_000,)))
    await money.add_funds(100_000)
    await money.use(60_000)  # $400: below admin-1's $500, above the $200 default
    report = await harness.dispatcher().dispatch(TENANT)
    assert report.delivered == 1 and posted_titles(connector) == [
        ("a:one", EN("alert.balance_low.title"))
    ]

    connector.clear()
    await money.add_funds(100_000)  # $1,400
    await money.use(100_000)  # $400: crosses admin-1's $500 again
    await money.add_funds(10_000)  # $500: not below it any more when its turn comes
    report = await harness.dispatcher().dispatch(TENANT)
    assert connector.posted == [] and (report.created, report.superseded) == (1, 1)


async def test_an_event_written_before_events_carried_the_default_is_delivered(
    harness, money, connector
):
    """Rows already in the outbox say only threshold and balance: a threshold nobody chose was
    the default when it was raised, so the admins hear of it, and the send-time rule holds."""
    chats = await admins(harness)
    await money.add_funds(5_000)  # today's default: $10
    await money.use(1_000)  # $40
    await harness.credits.insert_event(
        TENANT,
        OutboxEvent(
            "balance_low-20000-7",
            EventKind.BALANCE_LOW,
            datetime.now(UTC),
            {"threshold_minor": 20_000, "balance_minor": 11_115},
        ),
    )
    await harness.credits.insert_event(
        TENANT,
        OutboxEvent(
            "balance_low-2000-8",
            EventKind.BALANCE_LOW,
            datetime.now(UTC),
            {"threshold_minor": 2_000, "balance_minor": 1_900},
        ),
    )

    report = await harness.dispatcher().dispatch(TENANT)

    assert {p.conversation_id for p in connector.posted} == set(chats)
    assert len(connector.posted) == 2  # the $200 one, to each admin
    assert report.superseded == 2  # the $20 one: $40 is above it now


# --- with auto-recharge on, the recharge is the news ----------------------------------------


async def auto_recharge_on(money: Money_, card_number: str = "4242424242424242") -> None:
    """Auto-recharge of $500 below $200, with a card (a declining one, if asked)."""
    held = await money.gateway.seed_card(TENANT, card_number)
    card = SavedCard("card-2", held.reference, held.brand, held.last4, 12, held.expiry_year)
    current = await money.repo.get_account(TENANT)
    await money.repo.save_account(
        current,
        replace(
            current.value,
            cards=(*current.value.cards, card),
            auto_recharge=AutoRecharge(True, 50_000, 20_000, "card-2"),
        ),
    )


def recharger(money: Money_, attempts: int = 3) -> AutoRecharger:
    backoff = tuple(timedelta(0) for _ in range(attempts))
    return AutoRecharger(money.repo, money.orders, clock=lambda: datetime.now(UTC), backoff=backoff)


async def posted_kinds(harness: Harness) -> dict[EventKind, set[DeliveryState]]:
    kinds: dict[EventKind, set[DeliveryState]] = {}
    for row in await harness.alerts.recent(TENANT, 40):
        kinds.setdefault(row.kind, set()).add(row.state)
    return kinds


@pytest.mark.parametrize("spent", [85_000, 100_000], ids=["below the trigger", "to zero"])
async def test_a_crossing_that_starts_a_recharge_announces_the_recharge(
    harness, money, connector, spent
):
    """The issue: usage crossed the trigger, and "balance is low" went out while the recharge
    had already lifted the balance. The crossing now announces the recharge only."""
    chats = await admins(harness)
    await money.add_funds(100_000)
    await auto_recharge_on(money)
    await money.use(spent)  # $1,000 → $150 (or $0): below the $200 trigger

    assert (await recharger(money).run(TENANT)).status == "succeeded"
    report = await harness.dispatcher().dispatch(TENANT)

    assert report.delivered == 2
    assert posted_titles(connector) == [
        (chats[0], EN("alert.recharge_succeeded.title")),
        (
            chats[1],
            Localizer.from_directory().translator("fr-FR")("alert.recharge_succeeded.title"),
        ),
    ]
    assert await posted_kinds(harness) == {EventKind.RECHARGE_SUCCEEDED: {DeliveryState.DELIVERED}}


async def test_a_crossing_whose_recharge_fails_announces_the_failure_with_the_balance(
    harness, money, connector
):
    [chat, _] = await admins(harness)
    await money.add_funds(100_000)
    await auto_recharge_on(money, "4000000000000002")  # declined
    await money.use(85_000)  # $150

    assert (await recharger(money).run(TENANT)).status == "failed"
    await harness.dispatcher().dispatch(TENANT)

    assert await posted_kinds(harness) == {EventKind.RECHARGE_FAILED: {DeliveryState.DELIVERED}}
    [card] = [
        a["content"]
        for p in connector.posted
        if p.conversation_id == chat
        for a in p.activity["attachments"]
    ]
    texts = card_texts(card)
    assert texts[0] == EN("alert.recharge_failed.title")
    # No low-balance alert told the balance: the failure does.
    assert texts[texts.index(EN("alert.fact.balance")) + 1] == "$150.00"


async def test_a_failure_that_a_later_recharge_settled_is_not_sent(harness, money, connector):
    """Between the commit of a failed attempt and its send, the next attempt (another card)
    recharged: the failure is superseded, the success goes out."""
    await admins(harness)
    await money.add_funds(100_000)
    await auto_recharge_on(money, "4000000000000002")
    await money.use(85_000)
    assert (await recharger(money).run(TENANT)).status == "failed"
    current = await money.repo.get_account(TENANT)
    await money.repo.save_account(
        current,
        replace(
            current.value, auto_recharge=replace(current.value.auto_recharge, method_id="card-1")
        ),
    )
    assert (await recharger(money).run(TENANT)).status == "succeeded"

    report = await harness.dispatcher().dispatch(TENANT)

    assert (report.delivered, report.superseded) == (2, 2)
    assert {p.activity["summary"] for p in connector.posted if p.conversation_id == "a:one"} == {
        EN("alert.recharge_succeeded.title")
    }
    kinds = await posted_kinds(harness)
    assert kinds[EventKind.RECHARGE_FAILED] == {DeliveryState.SUPERSEDED}
    for locale in LOCALES:
        t = Localizer.from_directory().translator(locale)
        failed = [
            r
            for r in await harness.alerts.recent(TENANT, 40)
            if r.kind == EventKind.RECHARGE_FAILED
        ]
        [alert] = history_of(t, failed)
        assert {r["value"] for r in alert["recipients"]} == {
            t("alert_history.state.superseded_recharged")
        }


async def test_auto_recharge_switched_back_on_supersedes_its_disabled_alert(
    harness, money, connector
):
    await admins(harness)
    await money.add_funds(100_000)
    await auto_recharge_on(money, "4000000000000002")
    await money.use(85_000)
    assert (await recharger(money, attempts=1).run(TENANT)).status == "disabled"
    current = await money.repo.get_account(TENANT)
    assert not current.value.auto_recharge.enabled
    await money.repo.save_account(  # the admin switches it on again, with the good card
        current,
        replace(current.value, auto_recharge=AutoRecharge(True, 50_000, 20_000, "card-1")),
    )

    report = await harness.dispatcher().dispatch(TENANT)

    assert connector.posted == [] and report.superseded == 4
    kinds = await posted_kinds(harness)
    assert kinds == {
        EventKind.RECHARGE_FAILED: {DeliveryState.SUPERSEDED},
        EventKind.AUTO_RECHARGE_DISABLED: {DeliveryState.SUPERSEDED},
    }
    disabled = [
        r
        for r in await harness.alerts.recent(TENANT, 40)
        if r.kind == EventKind.AUTO_RECHARGE_DISABLED
    ]
    [alert] = history_of(EN, disabled)
    assert {r["value"] for r in alert["recipients"]} == {
        EN("alert_history.state.superseded_enabled")
    }


async def test_expiring_funds_used_up_before_the_warning_is_sent(harness, money, connector):
    await admins(harness)
    await money.add_funds(10_000)
    [lot] = await money.repo.list_lots(TENANT)
    soon = lot.expires_at - timedelta(days=5)
    report = await ExpiryJob(money.repo, clock=lambda: soon).run(TENANT)
    assert len(report.warnings) == 2  # 30 and 7 days ahead
    await money.use(10_000)  # spent before the warnings' turn (to zero: that is news)

    dispatched = await harness.dispatcher().dispatch(TENANT)

    assert dispatched.superseded == 4
    assert EN("alert.funds_expiring.title") not in {p.activity["summary"] for p in connector.posted}
    rows = await harness.alerts.recent(TENANT, 40)
    expiring = [r for r in rows if r.kind == EventKind.FUNDS_EXPIRING]
    assert {r.state for r in expiring} == {DeliveryState.SUPERSEDED}
    assert {r["value"] for a in history_of(EN, expiring) for r in a["recipients"]} == {
        EN("alert_history.state.superseded_used")
    }
