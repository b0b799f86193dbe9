"""The scheduled Graph usage sync, against the fake getPstnCalls (tests/fakes/graph_pstn.py,
standing for Microsoft Graph's call records API) and the real ledger on Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp

from app import build_credits
from bot.settings import Settings
from credits.model import EntryKind, MethodKind, PaymentMethod
from credits.money import Money
from credits.usage_charging import UsageCharger
from credits.usage_import import GraphUsageSync
from graph.client import GraphClient
from graph.pstn_calls import GraphPstnCalls
from storage.tables import TableStore
from tests.fakes.graph_pstn import FakeGraphPstn, FakeTokens, pstn_row
from tests.support.table_requests import TableRequests
from tests.support.usage_books import assert_charged_once

TENANT = "graph-sync-tenant"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GUID_TAIL = "-0000-4000-8000-000000000000"


async def test_sync_charges_new_calls_once_per_pass(aiohttp_server, azurite, table_store):
    graph = FakeGraphPstn()
    five_hours_ago = NOW - timedelta(hours=5)
    credits_calls = [
        pstn_row(start=five_hours_ago, charge=Decimal("1.25"), usage_id=f"{n:08d}{GUID_TAIL}")
        for n in range(3)
    ]
    plan_call = pstn_row(start=five_hours_ago, charge=Decimal("9.99"), capability="MCOPSTN1")
    graph.add_calls(TENANT, [*credits_calls, plan_call])
    server = await aiohttp_server(graph.app())
    settings = Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_store.names.prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        }
    )
    credits = build_credits(settings, table_store)
    account = await credits.accounts.get_or_create(TENANT)
    ea = PaymentMethod(MethodKind.AGREEMENT, agreement_number=account.agreements[0])
    await credits.orders.place(TENANT, "fund", Money(10_000, "USD"), ea, actor="alex")
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, FakeTokens(graph), base=str(server.make_url("/v1.0")))
        calls = GraphPstnCalls(client)
        sync = GraphUsageSync(
            credits.accounts,
            UsageCharger(credits.repository, clock=lambda: NOW),
            credits.recharger,
            calls,
            clock=lambda: NOW,
        )
        first = await sync.run(TENANT)
        again = await sync.run(TENANT)
    assert (first.charged, first.debited_minor) == (3, 375)
    assert (again.charged, again.already_charged) == (0, 3)
    entries = await credits.repository.all_entries(TENANT)
    assert sum(e.amount_minor for e in entries if e.kind == EntryKind.USAGE) == -375


async def test_a_window_of_mostly_known_calls_writes_only_the_new_ones(
    aiohttp_server, azurite, table_store
):
    """Every six hours the sync reads three days again: the calls it charged before cost a
    read of their days, and the few new ones one transaction, not a write each."""
    graph = FakeGraphPstn()
    known = [
        pstn_row(start=NOW - timedelta(hours=1 + n % 60), charge=Decimal("0.25"))
        for n in range(600)
    ]
    graph.add_calls(TENANT, known)
    server = await aiohttp_server(graph.app())
    requests = TableRequests()
    store = TableStore.from_settings(
        connection_string=azurite.connection_string,
        account_url="",
        prefix=table_store.names.prefix,
        request_hook=requests,
    )
    settings = Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_store.names.prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        }
    )
    credits = build_credits(settings, store)
    account = await credits.accounts.get_or_create(TENANT)
    ea = PaymentMethod(MethodKind.AGREEMENT, agreement_number=account.agreements[0])
    await credits.orders.place(TENANT, "fund", Money(100_000, "USD"), ea, actor="alex")
    try:
        async with aiohttp.ClientSession() as session:
            client = GraphClient(session, FakeTokens(graph), base=str(server.make_url("/v1.0")))
            sync = GraphUsageSync(
                credits.accounts,
                UsageCharger(credits.repository, clock=lambda: NOW),
                credits.recharger,
                GraphPstnCalls(client),
                clock=lambda: NOW,
            )
            first = await sync.run(TENANT)
            fresh = [
                pstn_row(start=NOW - timedelta(minutes=30), charge=Decimal("1.00"))
                for _ in range(4)
            ]
            graph.add_calls(TENANT, fresh)
            requests.counts.clear()
            again = await sync.run(TENANT)
        assert (first.charged, first.debited_minor) == (600, 15_000)
        assert (again.charged, again.already_charged, again.debited_minor) == (4, 600, 400)
        # One transaction carries the four new calls; nothing else is written.
        assert requests.counts["transactions"] == 1 and requests.counts["other writes"] == 0
        # Reads: the account (importer, batch, balance after, recharge check), the lots, the
        # old markers' probe, and the window's days (their ids, their spend): one query each.
        assert requests.counts["reads"] <= 8
        await assert_charged_once(credits.repository, TENANT, [r["id"] for r in known + fresh])
        entries = await credits.repository.all_entries(TENANT)
        lines = [(e.calls, e.amount_minor) for e in entries if e.kind == EntryKind.USAGE]
        assert lines[-1] == (4, -400)
    finally:
        await store.close()
