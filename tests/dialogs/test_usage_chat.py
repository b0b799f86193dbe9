"""A usage export sent as a file in the personal chat, as Teams delivers it.

The file host is an aiohttp server on loopback standing for SharePoint's pre-authenticated
download link (the `downloadUrl` of a `file.download.info` attachment).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from aiohttp import web

from app import create_app
from bot.settings import Settings
from dialogs.usage import chart_view
from locales import LANGUAGES, Localizer
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import Chat, answered_card, input_values, submit_data
from tests.support.usage_files import ROWS, export

EN = Localizer.from_directory().translator("en-US")
PT = Localizer.from_directory().translator("pt-BR")


@pytest.fixture
async def files(aiohttp_server):
    """Stands for SharePoint: serves uploaded chat files at pre-authenticated links."""
    stored: dict[str, bytes] = {}

    async def download(request: web.Request) -> web.Response:
        body = stored.get(request.match_info["name"])
        return web.Response(body=body) if body is not None else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/download/{name}", download)
    server = await aiohttp_server(app)
    return stored, str(server.make_url("/download")).rstrip("/")


@pytest.fixture
async def chat_client(aiohttp_client, settings):
    local = Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
            "TABLE_PREFIX": settings.table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "USAGE_DOWNLOAD_HOSTS": "127.0.0.1",
        }
    )
    return await aiohttp_client(create_app(local))


def file_message(url: str, link: str, name: str, locale: str = "en-US") -> dict:
    activity = activities.message(url, locale=locale)
    activity["attachments"] = [
        {
            "contentType": "application/vnd.microsoft.teams.file.download.info",
            "name": name,
            "content": {"downloadUrl": link, "uniqueId": str(uuid.uuid4()), "fileType": "csv"},
        }
    ]
    return activity


async def fund(chat: Chat) -> None:
    await chat.say("add funds 500")
    await chat.submit(submit_data(chat.last_card(), "add_funds_confirm", "place"))


async def test_a_file_in_chat_is_imported_once(chat_client, connector, files):
    stored, base = files
    stored["PSTN.calls.2026-11-01.csv"] = export(ROWS)
    chat = Chat(chat_client, connector)
    await fund(chat)
    link = f"{base}/PSTN.calls.2026-11-01.csv"
    await chat._post(file_message(connector.url, link, "PSTN.calls.2026-11-01.csv"))
    texts = card_texts(chat.last_card())
    assert EN("usage.report_title") in texts
    assert "$483.25" in texts  # 500 - (1.35 + 2.35 + 3.35 + 4.35 + 5.35)
    await chat._post(file_message(connector.url, link, "again.csv"))
    facts = card_texts(chat.last_card())
    assert facts[facts.index(EN("usage.charged")) + 1] == "0"
    assert "$483.25" in facts


async def test_a_broken_file_is_explained_in_the_users_language(chat_client, connector, files):
    stored, base = files
    stored["bad.csv"] = b"UsageId,Charge\r\n1,2\r\n"
    chat = Chat(chat_client, connector, locale="pt-BR")
    await fund(chat)
    await chat._post(file_message(connector.url, f"{base}/bad.csv", "bad.csv", locale="pt-BR"))
    assert connector.texts()[-1].startswith(PT("usage.problem.missing_columns", columns="")[:30])


@pytest.mark.parametrize(
    "link",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://evil.example/file.csv",
        "file:///etc/passwd",
        "http://127.0.0.1.evil.example/x",
        "",
    ],
)
async def test_a_forged_download_link_is_never_fetched(chat_client, connector, link):
    chat = Chat(chat_client, connector)
    await chat._post(file_message(connector.url, link, "x.csv"))
    assert connector.texts()[-1] == EN("usage.bad_link")


async def test_the_usage_command_explains_how(chat_client, connector):
    chat = Chat(chat_client, connector)
    await chat.say("usage")
    assert EN("usage.how") in card_texts(chat.last_card())


async def test_after_an_import_usage_recommends_funding_and_status_shows_runway(
    chat_client, connector, files
):
    stored, base = files
    stored["calls.csv"] = export(ROWS)
    chat = Chat(chat_client, connector)
    await fund(chat)
    await chat.say("usage")
    assert EN("usage.recommend_title") not in card_texts(chat.last_card())  # nothing imported
    await chat._post(file_message(connector.url, f"{base}/calls.csv", "calls.csv"))
    await chat.say("usage")
    card = chat.last_card()
    texts = card_texts(card)
    assert EN("usage.recommend_title") in texts
    assert any(t.startswith(EN("usage.advice", recharge="X", trigger="Y")[:20]) for t in texts)
    chart = [b for b in card["body"] if b.get("type") == "Chart.VerticalBar"]
    assert chart and len(chart[0]["data"]) >= 1 and chart[0]["fallback"] == "drop"
    await chat.say("status")
    status = card_texts(chat.last_card())
    assert EN("status.runway") in status


async def test_turn_on_auto_recharge_is_filled_in_with_what_usage_recommends(
    chat_client, connector, files
):
    """Issue 14: the alert's "Turn on auto-recharge" opened the form with the old values. It
    opens it switched on, with the trigger and amount of the usage's recommendation, saying
    where they come from; typed, the form is filled in the same way while auto-recharge is
    off, and keeps the saved values once it is on."""
    stored, base = files
    stored["calls.csv"] = export(ROWS)
    chat = Chat(chat_client, connector)
    await fund(chat)
    await chat._post(file_message(connector.url, f"{base}/calls.csv", "calls.csv"))
    await chat.say("usage")
    advice = next(t for t in card_texts(chat.last_card()) if t.startswith("Suggested auto"))
    recharge, trigger = (part.split()[0].rstrip(".") for part in advice.split("$")[1:3])
    command = EN("command.usage").split("|")[0]
    # Where the numbers come from: the usage, over the lead time (RECHARGE_LEAD_DAYS, 7).
    said = EN.ngettext(
        "auto_recharge.recommended", 7, days="7", busy="", average="", command=command
    ).split(":")[0]

    # The alert's button: the form opens below the alert, switched on and filled in.
    await chat.execute({"command": "auto_recharge", "turn_on": "true"}, verb="open")
    form = chat.last_card()
    values = input_values(form)
    assert (values["enabled"], values["recharge_with"], values["trigger"]) == (
        "true",
        recharge,
        trigger,
    )
    [line] = [text for text in card_texts(form) if text.startswith(said)]
    assert "covers 7 days of spending on a busy day" in line

    # Typed, with auto-recharge off: filled in the same way, but not switched on.
    await chat.say("auto-recharge")
    typed = chat.last_card()
    assert input_values(typed)["enabled"] == "false"
    assert (input_values(typed)["recharge_with"], input_values(typed)["trigger"]) == (
        recharge,
        trigger,
    )

    # Saved with other amounts: from then on the form keeps them, and only mentions the
    # recommendation.
    confirm = answered_card(
        await chat.press(
            typed, EN("auto_recharge.review"), enabled="true", recharge_with="900", trigger="90"
        )
    )
    answered_card(await chat.press(confirm, EN("auto_recharge.save")))
    await chat.say("auto-recharge")
    kept = chat.last_card()
    assert (input_values(kept)["recharge_with"], input_values(kept)["trigger"]) == (
        "900.00",
        "90.00",
    )
    hint = EN(
        "auto_recharge.recommendation_hint",
        recharge=f"${recharge}",
        trigger=f"${trigger}",
        command=command,
    )
    assert hint in card_texts(kept)


@pytest.mark.parametrize("tag", [lang.tag for lang in LANGUAGES])
def test_the_chart_labels_each_bar_with_its_day_and_says_the_range_once(tag):
    """Full dates under thirty bars were cut to "N…"; a day of the month fits, and the 30 days
    from 31 January to 1 March keep distinct labels although they hold two firsts."""
    t = Localizer.from_directory().translator(tag)
    start = date(2027, 1, 31)
    series = [(start + timedelta(days=i), 1234) for i in range(30)]
    view = chart_view(t, series, "USD")
    labels = [point["x"] for point in view["chart"]]
    assert len(set(labels)) == 30
    assert labels[1] == t.day_label(date(2027, 2, 1), with_month=True)
    assert labels[2] == t.day_label(date(2027, 2, 2))
    assert all(len(label) <= 3 for i, label in enumerate(labels) if i not in (0, 1, 29))
    assert view["chart_range"] == t.date_range(date(2027, 1, 31), date(2027, 3, 1), with_year=True)
    assert {point["y"] for point in view["chart"]} == {"12.34"}


@pytest.mark.parametrize(
    ("locale", "line"),
    [("en-US", "Calls (5), Nov 1 · -$16.75"), ("pt-BR", "Chamadas (5), 1 de nov. · -US$ 16,75")],
)
async def test_an_import_is_one_calls_line_on_the_status_card(
    chat_client, connector, files, locale, line
):
    """Five calls of Nov 1 are one ledger line (one lot), not five; the report says where each
    call is detailed."""
    stored, base = files
    stored["calls.csv"] = export(ROWS)
    chat = Chat(chat_client, connector, locale=locale)
    await fund(chat)
    await chat._post(file_message(connector.url, f"{base}/calls.csv", "calls.csv", locale=locale))
    t = EN if locale == "en-US" else PT
    assert t("usage.detail") in card_texts(chat.last_card())
    await chat.say("status" if locale == "en-US" else "saldo")
    facts = [
        fact["value"]
        for block in chat.last_card()["body"]
        if block.get("type") == "FactSet"
        for fact in block["facts"]
    ]
    assert [value.replace("\xa0", " ").replace("−", "-") for value in facts].count(line) == 1
