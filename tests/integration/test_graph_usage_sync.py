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
from tests.fakes.graph_pstn import FakeGraphPstn, FakeTokens, pstn_row

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
