"""Shared fixtures: one in-memory Azurite for the session, fresh tables for every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from scripts.azurite import Azurite
from storage.tables import TableStore


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """The real Table endpoint the integration tests talk to (Azurite, started here)."""
    with Azurite() as emulator:
        yield emulator


@pytest.fixture
def table_prefix() -> str:
    # A unique prefix per test keeps tests independent without restarting Azurite.
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
async def table_store(azurite: Azurite, table_prefix: str) -> AsyncIterator[TableStore]:
    store = TableStore.from_settings(
        connection_string=azurite.connection_string, account_url="", prefix=table_prefix
    )
    await store.create_tables()
    yield store
    await store.close()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build settings explicitly; a developer's shell or .env must not leak in."""
    for name in list(os.environ):
        if name.startswith(("Microsoft", "AZURE_STORAGE", "DANGEROUSLY_")):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(azurite: Azurite, table_prefix: str):
    from bot.settings import Settings

    return Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        }
    )


@pytest.fixture
async def connector(aiohttp_server):
    """A fake Bot Connector on loopback (see tests/fakes/connector.py); `.url` is its base."""
    from tests.fakes.connector import FakeConnector

    fake = FakeConnector()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def fake_stripe(aiohttp_server):
    """A fake Stripe API on loopback (see tests/fakes/stripe_api.py); `.url` is its base and
    `.api_key` the secret key it accepts."""
    from tests.fakes.stripe_api import FakeStripe

    fake = FakeStripe()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def client(aiohttp_client, settings):
    """The real aiohttp application, on Azurite, in unauthenticated local mode."""
    from app import create_app

    return await aiohttp_client(create_app(settings))


@pytest.fixture
def api_settings(settings):
    """The app's settings with the usage API enabled (tests.support.usage_files.SECRET)."""
    from bot.settings import Settings
    from tests.support.usage_files import SECRET

    return Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
            "TABLE_PREFIX": settings.table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "USAGE_API_SECRET": SECRET,
        }
    )


@pytest.fixture
async def api(aiohttp_client, api_settings, connector):
    """The real app with the usage API, its tenant's account funded with $500 through the chat."""
    from app import create_app
    from tests.support import activities

    client = await aiohttp_client(create_app(api_settings))
    await client.post("/api/messages", json=activities.message(connector.url, "add funds 500"))
    place = next(
        a["data"]
        for block in connector.cards()[-1]["body"]
        if block.get("type") == "ActionSet"
        for a in block["actions"]
        if a["data"].get("action") == "place"
    )
    await client.post("/api/messages", json=activities.message(connector.url, value=place))
    return client
