"""Dialog state lives in Azure Tables: a flow started before a restart continues after it."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from locales import Localizer
from tests.fakes.connector import card_texts
from tests.support import activities

L10N = Localizer.from_directory()


async def test_a_waterfall_survives_a_restart(settings, connector):
    first = TestClient(TestServer(create_app(settings)))
    await first.start_server()
    try:
        await first.post("/api/messages", json=activities.message(connector.url, "language"))
    finally:
        await first.close()  # the first instance is gone, and its memory with it
    assert L10N.translator("en-US")("language.title") in card_texts(connector.cards()[-1])

    second = TestClient(TestServer(create_app(settings)))
    await second.start_server()
    try:
        # A typed answer, not a card press: only the stored waterfall knows what it answers.
        await second.post("/api/messages", json=activities.message(connector.url, "Português"))
        assert connector.texts()[-1] == L10N.translator("pt-BR")("language.changed")
        # The choice is kept in user state and overrides the client's en-US.
        await second.post("/api/messages", json=activities.message(connector.url, "help"))
        assert connector.texts()[-1] == L10N.translator("pt-BR")("help.text")
    finally:
        await second.close()


async def test_an_add_funds_form_survives_a_restart(settings, connector):
    first = TestClient(TestServer(create_app(settings)))
    await first.start_server()
    try:
        await first.post("/api/messages", json=activities.message(connector.url, "add funds 500"))
    finally:
        await first.close()
    confirm = connector.cards()[-1]
    place = next(
        action["data"]
        for block in confirm["body"]
        if block.get("type") == "ActionSet"
        for action in block["actions"]
        if action["data"].get("action") == "place"
    )
    second = TestClient(TestServer(create_app(settings)))
    await second.start_server()
    try:
        await second.post("/api/messages", json=activities.message(connector.url, value=place))
    finally:
        await second.close()
    assert L10N.translator("en-US")("receipt.title") in card_texts(connector.cards()[-1])


async def test_language_back_to_automatic(client, connector):
    await client.post(
        "/api/messages", json=activities.message(connector.url, "language pt", locale="ru-RU")
    )
    assert connector.texts()[-1] == L10N.translator("pt-BR")("language.changed")
    await client.post(
        "/api/messages",
        json=activities.message(
            connector.url, value={"command": "language", "language": "auto"}, locale="ru-RU"
        ),
    )
    ru = L10N.translator("ru-RU")
    assert connector.texts()[-1] == ru("language.automatic_set", language="Русский")
    await client.post(
        "/api/messages", json=activities.message(connector.url, "help", locale="ru-RU")
    )
    assert connector.texts()[-1] == ru("help.text")


async def test_unknown_language_is_explained(client, connector):
    await client.post("/api/messages", json=activities.message(connector.url, "language klingon"))
    assert connector.texts()[-1].startswith(
        L10N.translator("en-US")("language.unknown", languages="")[:20]
    )
