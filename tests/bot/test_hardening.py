"""Issue 13, item by item, through the real app: no message, upload or header can stall, crash
or fool the service.

Chat replies land on the fake Bot Connector (tests/fakes/connector.py). Tokens are signed with
the keys of a fake of the Bot Framework's published signing keys on loopback
(tests/fakes/bot_framework_keys.py), which the app reads through its `BotOpenIdMetadata`
setting. Slow clients are raw sockets that stop writing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import SERVICES, create_app
from bot.http_guards import SERVER_NAME, HttpLimits
from bot.settings import Settings
from bot.usage_api import (
    MAX_SIGNED_UPLOAD_BYTES,
    MAX_SIGNED_UPLOADS,
    MAX_UPLOADS_PER_TENANT,
    tenant_key,
)
from tests.fakes.bot_framework_keys import FakeBotFrameworkKeys, new_key
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, L10N, NOT_ADMIN, Chat, UserChat, choices, submit_data
from tests.support.usage_files import ROWS, SECRET, TENANT, balance, bearer, export

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "11111111-2222-3333-4444-555555555555"
ADVERSARIAL = "a" + "\u2a0c" * 1998 + "a"


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
async def bot_keys(aiohttp_server) -> FakeBotFrameworkKeys:
    fake = FakeBotFrameworkKeys()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def teams_settings(azurite, table_prefix, bot_keys) -> Settings:
    """Authenticated: an app id, its tokens checked with the fake's keys."""
    return Settings.from_mapping(
        {
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppPassword": "not-a-real-secret",
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_prefix,
            "DIRECTORY": "embedded",
            "BotOpenIdMetadata": bot_keys.metadata_url,
            # Production takes real payments; nothing here reaches Stripe.
            "STRIPE_SECRET_KEY": "sk_test_not_used",
            "STRIPE_WEBHOOK_SECRET": "whsec_not_used",
            "PUBLIC_BASE_URL": "https://ccbot.example",
            "EXPORT_URL_SECRET": "export-links-7f3a9c2e5b1d8f4a6c0e2b9d",
        }
    )


@pytest.fixture
async def teams(aiohttp_client, teams_settings):
    return await aiohttp_client(create_app(teams_settings))


def signing_keys(client):
    return client.server.app[SERVICES].keys


async def keys_read(client) -> None:
    """Wait for the app's first read of the keys (it starts with the app)."""
    keys = signing_keys(client)
    for _ in range(500):
        if keys.known:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the app never read the signing keys")


async def post_as_teams(client, activity, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.post("/api/messages", json=activity, headers=headers)


def typing(service_url: str, channel: str = "msteams") -> dict:
    """An activity the bot answers with nothing: the request's status is the whole answer."""
    activity = activities.message(service_url)
    activity.update(type="typing", channelId=channel)
    return activity


async def raw_connection(client, head: bytes):
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head)
    await writer.drain()
    return reader, writer


async def status_of(reader) -> int:
    line = await asyncio.wait_for(reader.readline(), 30)
    return int(line.split()[1])


# --- 1. one chat message cannot freeze every tenant ----------------------------------------------


async def test_a_non_admins_adversarial_message_is_refused_unparsed(client, connector):
    chat = UserChat(client, connector, NOT_ADMIN)
    await chat.say(ADVERSARIAL)
    await chat.say("status " + "\u2a0c" * 150)
    assert connector.texts() == [EN("access.refused")] * 2


async def test_an_admins_adversarial_message_is_not_a_command(client, connector):
    chat = Chat(client, connector)
    await chat.say(ADVERSARIAL)
    await chat.say("add funds 500" + " " * 200)  # 213 characters: no command is this long
    for card in connector.cards():
        assert EN("unknown.hint") in card_texts(card)


async def test_help_still_answers_everyone_briefly(client, connector):
    chat = UserChat(client, connector, NOT_ADMIN)
    await chat.say("  HELP! ")
    await chat.say("help " + "x" * 40)  # not a short help: refused like anything else
    assert connector.texts() == [EN("help.text"), EN("access.refused")]


async def test_a_mention_of_the_bot_is_removed_without_a_regex(client, connector):
    activity = activities.message(connector.url, "<at>Credits</at> help")
    activity["entities"] = [
        {"type": "mention", "mentioned": {"id": activities.BOT_ID}, "text": "<at>Credits</at>"},
        {"type": "mention"},  # botbuilder's remover failed the turn on this one (KeyError)
    ]
    assert (await client.post("/api/messages", json=activity)).status == 201
    long_mention = activities.message(connector.url, "<at" + ">" * 32_000)
    long_mention["entities"] = [
        {"type": "mention", "mentioned": {"id": activities.BOT_ID}, "text": "<at" + ">" * 32_000}
    ]
    assert (await client.post("/api/messages", json=long_mention)).status == 201
    assert connector.texts()[0] == EN("help.text")
    assert len(connector.posted) == 2


# --- 2. an upload is checked before it costs the service ----------------------------------------


def upload_head(tenant: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"POST /api/tenants/{tenant}/usage HTTP/1.1", "Host: bot"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def test_a_wrong_key_is_refused_before_the_body_is_read(api, api_settings):
    # 300 MB promised, not a byte sent: the answer comes anyway.
    head = upload_head(TENANT, {"Authorization": "Bearer wrong"}, 300_000_000)
    reader, writer = await raw_connection(api, head)
    try:
        assert await status_of(reader) == 401
    finally:
        writer.close()
    assert await balance(api_settings) == 50_000


async def test_a_signed_upload_larger_than_its_bound_is_413_at_once(api):
    signed = {"X-Usage-Signature": "sha256=" + "0" * 64}
    reader, writer = await raw_connection(
        api, upload_head(TENANT, signed, MAX_SIGNED_UPLOAD_BYTES + 1)
    )
    try:
        assert await status_of(reader) == 413
        answer = await asyncio.wait_for(reader.read(4096), 30)
        assert b"Authorization: Bearer" in answer  # says what to do instead
    finally:
        writer.close()


async def test_a_signed_upload_that_grows_past_its_bound_is_413(api):
    body = b"x" * (MAX_SIGNED_UPLOAD_BYTES + 1)

    async def chunks():
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    response = await api.post(
        f"/api/tenants/{TENANT}/usage",
        data=chunks(),
        headers={"X-Usage-Signature": "sha256=" + "0" * 64},
    )
    assert response.status == 413
    assert "64 MiB" in await response.text()


async def test_concurrent_signed_uploads_per_tenant_are_capped(api, api_settings):
    signed = {"X-Usage-Signature": "sha256=" + "0" * 64}
    held = []
    try:
        for _ in range(MAX_UPLOADS_PER_TENANT):
            # Signed uploads that send a first piece and then wait.
            reader, writer = await raw_connection(api, upload_head(TENANT, signed, 1000) + b"U")
            held.append(writer)
        await asyncio.sleep(0.2)  # let the server take them in
        refused = await api.post(f"/api/tenants/{TENANT}/usage", data=b"x", headers=signed)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "30"
        assert "again" in await refused.text()
        # The tenant's own tooling, with its key, is not held off by them.
        keyed = await api.post(f"/api/tenants/{TENANT}/usage", data=export(ROWS), headers=bearer())
        assert keyed.status == 200
        # Another tenant's signed upload has its own slots.
        other = await api.post("/api/tenants/another/usage", data=b"x", headers=signed)
        assert other.status == 401
    finally:
        for writer in held:
            writer.close()
    await asyncio.sleep(0.2)
    again = await api.post(f"/api/tenants/{TENANT}/usage", data=b"x", headers=signed)
    assert again.status == 401  # a slot is free again; the signature is simply wrong


async def test_signed_uploads_in_all_are_capped(api):
    signed = {"X-Usage-Signature": "sha256=" + "0" * 64}
    held = []
    try:
        for n in range(MAX_SIGNED_UPLOADS):
            head = upload_head(f"tenant-{n}", signed, 1000) + b"U"
            held.append((await raw_connection(api, head))[1])
        await asyncio.sleep(0.2)
        refused = await api.post("/api/tenants/one-more/usage", data=b"x", headers=signed)
        assert refused.status == 429
    finally:
        for writer in held:
            writer.close()


# --- 3. only Microsoft Teams may talk to the bot --------------------------------------------------


async def test_a_signed_token_of_another_channel_is_refused(teams, bot_keys, connector, caplog):
    await keys_read(teams)
    activity = activities.message(connector.url, "status")
    activity["channelId"] = "webchat"
    token = bot_keys.token(APP_ID, connector.url, kid="webchat-key")
    with caplog.at_level(logging.WARNING):
        response = await post_as_teams(teams, activity, token)
    assert response.status == 403
    assert "refused an activity from channel 'webchat'" in caplog.text
    assert connector.posted == []


async def test_another_channel_is_refused_in_local_mode_too(client, connector):
    for channel in ("webchat", "emulator", "directline", None, ""):
        activity = activities.message(connector.url, "help")
        activity["channelId"] = channel
        assert (await client.post("/api/messages", json=activity)).status == 403
    assert connector.posted == []


# --- 4. unauthenticated mode only on loopback -----------------------------------------------------


def test_unauthenticated_mode_does_not_start_on_every_interface(azurite):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        "HOST": "0.0.0.0",
        "PORT": "9",
    }
    ran = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 2
    assert "DANGEROUSLY_ALLOW_UNAUTHENTICATED" in ran.stderr and "HOST" in ran.stderr


# --- 5. bad input gets its clear answer and changes nothing --------------------------------------


async def test_an_amount_of_sixty_one_digits_is_a_field_error_in_the_users_language(
    client, connector
):
    pt = L10N.translator("pt-BR")
    above = pt("error.amount.above_maximum", maximum=pt.minor_money(10_000_000, "USD"))
    chat = Chat(client, connector, locale="pt-BR")
    await chat.say("adicionar fundos 1" + "0" * 60)
    form = chat.last_card()
    await chat.submit(
        {
            **submit_data(form, "add_funds"),
            "amount": "1" + "0" * 60,
            "method": choices(form, "method")[0]["value"],
        }
    )
    assert above in card_texts(chat.last_card())
    assert pt("error.generic") not in connector.texts()


@pytest.mark.parametrize("nonce", [{"a": 1}, ["x"], 12, "../x", "A" * 32, None])
async def test_a_confirmation_with_a_forged_nonce_changes_nothing(client, connector, nonce):
    chat = Chat(client, connector, locale="fr-FR")
    await chat.submit({"form": "add_funds_confirm", "nonce": nonce, "action": "place"})
    assert connector.texts() == [L10N.translator("fr-FR")("add_funds.expired_form")]


async def test_json_nested_200000_deep_is_400(client, connector):
    for body in (b"[" * 200_000, b'{"a":' * 200_000, b"[" * 100 + b"]" * 100):
        response = await client.post(
            "/api/messages", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400
    nested = activities.message(connector.url, "help")
    value: dict = {}
    nested["value"] = value
    for _ in range(100):
        value["x"] = value = {}
    assert (await client.post("/api/messages", json=nested)).status == 400
    assert connector.posted == []


@pytest.mark.parametrize(
    "field",
    [
        {"text": 5},
        {"text": {"a": 1}},
        {"from": [1]},
        {"from": {"id": {"a": 1}}},
        {"conversation": "c"},
        {"recipient": {"id": 7}},
        {"entities": "x"},
        {"attachments": [5]},
        {"timestamp": "not a date"},
        {"locale": ["en"]},
        {"channelData": 5},
        {"serviceUrl": 1},
        {"serviceUrl": None},
        {"serviceUrl": "ftp://x"},
        {"from": None},
        {"conversation": {"conversationType": "personal"}},
        {"recipient": {"id": ""}},
    ],
)
async def test_fields_of_the_wrong_type_are_400(client, connector, field):
    activity = {**activities.message(connector.url, "help"), **field}
    assert (await client.post("/api/messages", json=activity)).status == 400
    assert connector.posted == []


async def test_non_ascii_credentials_are_401(teams, api, api_settings, connector):
    activity = typing(connector.url)
    for value in ("Bearer é", "Bearer \u4f60\u597d", "é"):
        response = await teams.post(
            "/api/messages", json=activity, headers={"Authorization": value}
        )
        assert response.status == 401
        response = await api.post(
            f"/api/tenants/{TENANT}/usage", data=export(ROWS), headers={"Authorization": value}
        )
        assert response.status == 401
        response = await api.post(
            f"/api/tenants/{TENANT}/usage",
            data=export(ROWS),
            headers={"X-Usage-Signature": value.replace("Bearer", "sha256=")},
        )
        assert response.status == 401
    assert await balance(api_settings) == 50_000


async def test_a_token_that_passes_every_check_is_accepted(teams, bot_keys, connector):
    """The control of the refusals below: the fake's keys and tokens are right."""
    token = bot_keys.token(APP_ID, connector.url)
    assert (await post_as_teams(teams, typing(connector.url), token)).status == 201


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda k, url: k.token(APP_ID, url, kid="no-such-key"), id="unknown key"),
        pytest.param(
            lambda k, url: k.token(APP_ID, url, kid="webchat-key"), id="key not for msteams"
        ),
        pytest.param(
            lambda k, url: k.token(APP_ID, url, kid="teams-key", signer=new_key("x", "msteams")),
            id="signed by another key",
        ),
        pytest.param(lambda k, url: k.token("someone-else", url), id="another bot"),
        pytest.param(lambda k, url: k.token(APP_ID, url, iss="https://evil"), id="issuer"),
        pytest.param(lambda k, url: k.token(APP_ID, "https://evil/"), id="service url"),
        pytest.param(lambda k, url: k.token(APP_ID, url, exp=1_000_000), id="expired"),
        pytest.param(lambda k, url: k.token(APP_ID, url, algorithm="RS512") + "x", id="tampered"),
        pytest.param(
            lambda k, url: __import__("jwt").encode(
                {"aud": APP_ID, "iss": "https://api.botframework.com", "exp": 2**40},
                "k" * 32,
                "HS256",
                headers={"kid": "teams-key"},
            ),
            id="HS256 with a known key id",
        ),
        pytest.param(lambda k, url: "not.a.jwt", id="not a jwt"),
    ],
)
async def test_a_token_that_fails_a_check_is_401(teams, bot_keys, connector, forge):
    await keys_read(teams)
    token = forge(bot_keys, connector.url)
    assert (await post_as_teams(teams, typing(connector.url), token)).status == 401
    message = activities.message(connector.url, "status")
    assert (await post_as_teams(teams, message, token)).status == 401
    assert connector.posted == []


# --- 6. slow requests do not hold connections ---------------------------------------------------

QUICK = HttpLimits(header_seconds=0.5, body_seconds=0.5, upload_idle_seconds=0.5)


@pytest.fixture
async def quick(aiohttp_server, aiohttp_client, api_settings):
    """The app served as main() serves it (`server_options`), with short limits."""
    server = await aiohttp_server(create_app(api_settings, limits=QUICK), **QUICK.server_options())
    return await aiohttp_client(server)


async def test_headers_that_never_end_are_cut_off(quick):
    reader, writer = await raw_connection(quick, b"POST /api/messages HTTP/1.1\r\nHost: bot\r\n")
    try:
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed by the server
    finally:
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed(quick):
    reader, writer = await raw_connection(quick, b"")
    try:
        assert await asyncio.wait_for(reader.read(), 30) == b""
    finally:
        writer.close()


async def test_a_body_promised_and_not_sent_is_408(quick):
    head = (
        b"POST /api/messages HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10\r\n\r\n"
    )
    reader, writer = await raw_connection(quick, head)
    try:
        assert await status_of(reader) == 408
    finally:
        writer.close()


async def test_an_upload_that_stalls_is_408(quick, api_settings):
    head = upload_head(TENANT, bearer(), 100_000) + b"UsageId,"
    reader, writer = await raw_connection(quick, head)
    try:
        assert await status_of(reader) == 408
    finally:
        writer.close()


async def test_a_request_in_time_is_served(quick, connector):
    response = await quick.post("/api/messages", json=activities.message(connector.url, "help"))
    assert response.status == 201


# --- 7. the signing keys are read off the event loop ---------------------------------------------


async def test_a_key_endpoint_that_hangs_stalls_no_other_chat(teams, bot_keys, connector):
    await keys_read(teams)
    bot_keys.gate = asyncio.Event()  # from now on the fake answers only when released
    before = len(bot_keys.requests)
    unknown = bot_keys.token(APP_ID, connector.url, kid="rolled-over-key")
    # A token naming a key not read yet makes the app read the keys again; that read hangs.
    waiting = asyncio.create_task(post_as_teams(teams, typing(connector.url), unknown))
    for _ in range(500):
        if len(bot_keys.requests) > before:
            break
        await asyncio.sleep(0.02)
    assert len(bot_keys.requests) > before, "the app did not read the keys again"
    try:
        # Meanwhile /healthz and another tenant's turn are answered: nothing waits on that read.
        healthz = await asyncio.wait_for(teams.get("/healthz"), 30)
        assert healthz.status == 200
        another = typing(connector.url)
        another["channelData"]["tenant"]["id"] = "another-tenant"
        token = bot_keys.token(APP_ID, connector.url)
        answered = await asyncio.wait_for(post_as_teams(teams, another, token), 30)
        assert answered.status == 201
        assert not waiting.done()
    finally:
        bot_keys.gate.set()
    assert (await asyncio.wait_for(waiting, 30)).status == 401


async def test_while_no_key_can_be_read_tokens_get_503_and_the_endpoint_is_not_hammered(
    aiohttp_client, teams_settings, bot_keys, connector
):
    bot_keys.fail_with = 503
    teams = await aiohttp_client(create_app(teams_settings))
    token = bot_keys.token(APP_ID, connector.url)
    statuses = [
        (await post_as_teams(teams, typing(connector.url), token)).status for _ in range(10)
    ]
    assert statuses == [503] * 10
    response = await post_as_teams(teams, typing(connector.url), token)
    assert response.headers["Retry-After"] == "10"
    # Ten tokens, and the keys were asked for once or twice (start, back-off), not ten times.
    assert bot_keys.requests.count("/v1/.well-known/openidconfiguration") <= 3
    bot_keys.fail_with = 0
    await keys_read(teams)  # read again after the back-off, by the app itself
    assert (await post_as_teams(teams, typing(connector.url), token)).status == 201


async def test_unknown_key_ids_make_one_read_at_most(teams, bot_keys, connector):
    await keys_read(teams)
    before = len(bot_keys.requests)
    for n in range(5):
        token = bot_keys.token(APP_ID, connector.url, kid=f"unknown-{n}")
        assert (await post_as_teams(teams, typing(connector.url), token)).status == 401
    assert len(bot_keys.requests) - before == 2  # the metadata and the key list, once


async def test_a_key_published_later_is_read_when_a_token_names_it(teams, bot_keys, connector):
    await keys_read(teams)
    bot_keys.keys.append(new_key("next-key", "msteams"))
    token = bot_keys.token(APP_ID, connector.url, kid="next-key")
    assert (await post_as_teams(teams, typing(connector.url), token)).status == 201


# --- 8. smaller -----------------------------------------------------------------------------------


async def test_the_server_header_has_no_versions(client, connector):
    responses = [
        await client.get("/healthz"),
        await client.get("/no-such-page"),
        await client.get("/api/messages"),
        await client.post("/api/messages", data=b"{", headers={"Content-Type": "application/json"}),
        await client.post("/api/messages", json=activities.message(connector.url, "help")),
    ]
    assert [r.status for r in responses] == [200, 404, 405, 400, 201]
    assert {r.headers["Server"] for r in responses} == {SERVER_NAME}


def test_the_running_service_names_no_versions_even_to_a_malformed_request(azurite, tmp_path):
    """aiohttp answers what it cannot parse itself; `python app.py` (main) quiets that too."""
    import socket
    import time

    from scripts.azurite import free_port

    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "TABLE_PREFIX": "banner" + str(port),
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    service = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        answers = []
        for request in (b"BREW /\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                        sock.sendall(request)
                        answers.append(sock.recv(4096))
                    break
                except OSError:
                    assert service.poll() is None and time.monotonic() < deadline
                    time.sleep(0.2)
    finally:
        service.terminate()
        service.wait(timeout=30)
    assert [answer.split(b"\r\n")[0].split()[1] for answer in answers] == [b"400", b"200"]
    for answer in answers:
        assert f"Server: {SERVER_NAME}".encode() in answer
        assert b"aiohttp" not in answer and b"Python/" not in answer


async def test_a_usage_key_of_a_low_variety_secret_cannot_be_configured(azurite, table_prefix):
    from bot.settings import SettingsError

    with pytest.raises(SettingsError, match="USAGE_API_SECRET"):
        Settings.from_mapping(
            {
                "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
                "TABLE_PREFIX": table_prefix,
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
                "USAGE_API_SECRET": "s" * 40,
            }
        )
    assert tenant_key(SECRET, TENANT)  # the tests' own secret is a varied one


def test_the_fakes_tokens_are_signed_as_teams_signs_them(bot_keys):
    import jwt

    token = bot_keys.token(APP_ID, "https://smba.example/")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header == {"alg": "RS256", "kid": "teams-key", "typ": "JWT"}
    assert (claims["iss"], claims["aud"], claims["serviceurl"]) == (
        "https://api.botframework.com",
        APP_ID,
        "https://smba.example/",
    )
    assert json.dumps(bot_keys.keys[0].jwk()["endorsements"]) == '["msteams", "skype"]'
