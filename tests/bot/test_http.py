"""The message endpoint through the real aiohttp app, replies caught by a fake Bot Connector."""

from __future__ import annotations

import jwt
import pytest

from bot.settings import Settings
from locales import Localizer
from tests.fakes.connector import card_texts
from tests.support import activities

L10N = Localizer.from_directory()


async def send(client, activity) -> int:
    response = await client.post("/api/messages", json=activity)
    return response.status


async def test_help_gets_the_help_text(client, connector):
    assert await send(client, activities.message(connector.url, "help")) == 201
    assert connector.texts() == [L10N.translator("en-US")("help.text")]
    assert connector.posted[0].conversation_id == "a:personal-chat-1"


@pytest.mark.parametrize(
    ("locale", "word"),
    [
        ("pt-BR", "ajuda"),
        ("zh-CN", "帮助"),
        ("ru-RU", "справка"),
        ("es-ES", "ayuda"),
        ("fr-FR", "aide"),
    ],
)
async def test_help_in_the_clients_language(client, connector, locale, word):
    assert await send(client, activities.message(connector.url, word, locale=locale)) == 201
    expected = L10N.translator(locale)("help.text")
    assert expected != L10N.translator("en-US")("help.text")
    assert connector.texts() == [expected]


async def test_english_words_work_in_any_client_language(client, connector):
    await send(client, activities.message(connector.url, "HELP!", locale="ru-RU"))
    assert connector.texts() == [L10N.translator("ru-RU")("help.text")]


async def test_tenant_from_conversation_is_accepted(client, connector):
    activity = activities.message(connector.url, "help", tenant_in_conversation=True)
    activity["channelData"] = {}
    await send(client, activity)
    assert connector.texts() == [L10N.translator("en-US")("help.text")]


async def test_menu_button_routes_like_the_command(client, connector):
    await send(client, activities.message(connector.url, value={"command": "alerts"}))
    t = L10N.translator("en-US")
    [card] = connector.cards()
    assert card_texts(card)[0] == t("alert_settings.title")


async def test_unknown_text_gets_a_hint_and_the_menu(client, connector):
    await send(client, activities.message(connector.url, "what is the weather"))
    t = L10N.translator("en-US")
    [card] = connector.cards()
    texts = card_texts(card)
    assert t("unknown.hint") in texts
    assert t("menu.add_funds") in texts


async def test_substring_is_not_a_command(client, connector):
    await send(client, activities.message(connector.url, "I need no help"))
    t = L10N.translator("en-US")
    assert t("help.text") not in connector.texts()
    assert t("unknown.hint") in card_texts(connector.cards()[0])


@pytest.mark.parametrize(
    "value",
    [{"command": "format c:"}, {"command": None}, {"form": 12}, "just a string", [1, 2], {"x": 1}],
)
async def test_unknown_card_data_gets_the_menu(client, connector, value):
    assert await send(client, activities.message(connector.url, value=value)) == 201
    [card] = connector.cards()
    assert L10N.translator("en-US")("menu.title") in card_texts(card)


async def test_install_welcomes_once_and_stores_the_reference(client, connector, settings):
    await send(client, activities.members_added(connector.url))
    await send(client, activities.installation(connector.url))
    cards = connector.cards()
    assert len(cards) == 1
    assert L10N.translator("en-US")("welcome.title") in card_texts(cards[0])

    from storage.conversations import ConversationRepository
    from storage.tables import TableStore

    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    try:
        repo = ConversationRepository(store.table(store.names.conversations))
        [stored] = await repo.list_active(activities.TENANT)
        assert stored.conversation_id == "a:personal-chat-1"
        assert stored.reference["serviceUrl"] == connector.url
        assert stored.kind == "personal"

        await send(client, activities.installation(connector.url, action="remove"))
        assert await repo.list_active(activities.TENANT) == []
        assert (await repo.get(activities.TENANT, "a:personal-chat-1")).active is False

        # Reinstalling welcomes again.
        await send(client, activities.installation(connector.url))
        assert len(connector.cards()) == 2
    finally:
        await store.close()


async def test_message_without_tenant_is_answered_politely(client, connector):
    assert await send(client, activities.message(connector.url, "help", tenant=None)) == 201
    assert connector.texts() == [L10N.translator("en-US")("error.no_tenant")]


async def test_a_100_kb_message_gets_a_polite_answer(client, connector):
    assert await send(client, activities.message(connector.url, "a" * 100_000)) == 201
    [text] = connector.texts()
    assert text.startswith(
        L10N.translator("en-US").ngettext("error.too_long", 2, length="X", limit=0)[:20]
    )
    assert "100,000" in text


async def test_malformed_json_is_400(client, connector):
    response = await client.post(
        "/api/messages", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    response = await client.post(
        "/api/messages", data=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    response = await client.post(
        "/api/messages", data=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert connector.posted == []


async def test_an_app_id_requires_a_token(aiohttp_client, azurite, table_prefix, connector):
    from app import create_app

    settings = Settings.from_mapping(
        {
            "MicrosoftAppId": "11111111-2222-3333-4444-555555555555",
            "MicrosoftAppPassword": "not-a-real-secret",
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_prefix,
            # Production takes real payments; nothing here reaches Stripe.
            "STRIPE_SECRET_KEY": "sk_test_not_used",
            "STRIPE_WEBHOOK_SECRET": "whsec_not_used",
            "PUBLIC_BASE_URL": "https://ccbot.example",
            "EXPORT_URL_SECRET": "export-links-7f3a9c2e5b1d8f4a6c0e2b9d",
        }
    )
    client = await aiohttp_client(create_app(settings))
    assert await send(client, activities.message(connector.url, "help")) == 401
    # Neither token can reach a signature check, so no key is fetched from the network.
    foreign = jwt.encode({"iss": "https://issuer.example", "aud": "x"}, "k" * 32, "HS256")
    for token in ("not.a.jwt", foreign):
        response = await client.post(
            "/api/messages",
            json=activities.message(connector.url, "help"),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 401
    assert connector.posted == []


async def test_healthz_is_ok_with_storage_up(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["storage"] == "ok"


async def test_healthz_is_503_when_storage_stops(aiohttp_client, table_prefix):
    from app import create_app
    from scripts.azurite import Azurite

    own = Azurite().start()
    try:
        settings = Settings.from_mapping(
            {
                "AZURE_STORAGE_CONNECTION_STRING": own.connection_string,
                "TABLE_PREFIX": table_prefix,
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            }
        )
        client = await aiohttp_client(create_app(settings))
        assert (await client.get("/healthz")).status == 200
    finally:
        own.stop()
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["status"] == "unavailable"
