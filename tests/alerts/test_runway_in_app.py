"""The runway alert through the real app: usage uploaded to the usage API moves the forecast,
the app evaluates it after the import and after a purchase, and its dispatcher posts the alert
to the fake Bot Connector (which stands for Teams); storage is Azurite.

The tenant starts with $500 bought through the chat (the `api` fixture), auto-recharge off, so
its default low-balance threshold is $100 and its runway threshold the default 14 days. The
calls are dated yesterday (today's spend enters the forecast's mean only tomorrow), after a
first $1 call 30 days ago: the recommendation's mean counts the days since the first call, so
this makes it a 30-day mean.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

from credits.model import Account
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, Chat, input_values
from tests.support.usage_files import COLUMNS, bearer

TENANT = activities.TENANT
PERSONAL = "a:personal-chat-1"


def export_on(day: str, dollars: int) -> bytes:
    """One PSTN call of `dollars` on `day` (ISO date), as the admin centre exports it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow([
        str(uuid.uuid4()), "call-1", "", "US", str(uuid.uuid4()), "zhang.wei@contoso.example",
        "Zhang, Wei", "+14255550100", "user_out", "toll", "International", "France",
        "+33123***", f"{day}T10:00:00Z", f"{day}T10:05:00Z", "300", "0.00", f"{dollars}.00",
        "USD", "MCOPSTNPP",
    ])  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


async def spend(api, dollars: int, days_ago: int = 1) -> None:
    day = (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()
    response = await api.post(
        f"/api/tenants/{TENANT}/usage", data=export_on(day, dollars), headers=bearer()
    )
    assert response.status == 200, await response.text()


async def buy(api, connector, dollars: int) -> None:
    """Add funds through the chat, as the `api` fixture does (the sandbox's saved card)."""
    await api.post("/api/messages", json=activities.message(connector.url, f"add funds {dollars}"))
    place = next(
        a["data"]
        for block in connector.cards()[-1]["body"]
        if block.get("type") == "ActionSet"
        for a in block["actions"]
        if a["data"].get("action") == "place"
    )
    await api.post("/api/messages", json=activities.message(connector.url, value=place))


async def account(settings) -> Account:
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    try:
        current = await TableCreditsRepository(store.table(store.names.credits)).get_account(TENANT)
        assert current is not None
        return current.value
    finally:
        await store.close()


async def crossed_becomes(settings, expected: tuple[int, ...]) -> Account:
    """The account once its runway watch says `expected` (a purchase is evaluated in the
    background, woken by its commit)."""
    async with asyncio.timeout(15):
        while (found := await account(settings)).runway.crossed != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return found


def runway_cards(connector) -> list[dict]:
    prefix = EN.ngettext("alert.runway_low.title_days", 2, days="{days}").split("{days}")[0]
    return [
        attachment["content"]
        for p in connector.posted
        if p.conversation_id == PERSONAL
        for attachment in p.activity.get("attachments") or []
        if str(attachment["content"].get("body", [{}])[0].get("text", "")).startswith(prefix)
    ]


async def wait_for_runway_cards(connector, count: int) -> list[dict]:
    async with asyncio.timeout(15):
        while len(runway_cards(connector)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # let a duplicate, if any, arrive
    return runway_cards(connector)


def facts_of(card: dict) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for e in card["body"]
        if e.get("type") == "FactSet"
        for fact in e["facts"]
    }


async def test_one_alert_per_crossing_and_a_purchase_re_arms_it(api, api_settings, connector):
    today = datetime.now(UTC).date()
    # $360 of calls: $140 left at $12 a day (the 30-day mean) runs out in 11 days, while the
    # balance is still above the $100 low-balance threshold.
    await spend(api, 1, days_ago=30)
    await spend(api, 359)
    [card] = await wait_for_runway_cards(connector, 1)
    texts = card_texts(card)
    runs_out = EN.date(today + timedelta(days=11))
    assert texts[0] == EN.ngettext("alert.runway_low.title_days", 11, days="11")
    assert EN("alert.runway_low.text", mean="$12.00", date=runs_out) in texts
    facts = facts_of(card)
    assert facts[EN("alert.fact.runs_out")] == runs_out
    assert facts[EN("alert.fact.mean_daily")] == "$12.00"
    assert facts[EN("status.balance")] == "$140.00"
    assert [a["data"]["command"] for a in card["actions"]] == ["add_funds", "auto_recharge"]
    assert (await account(api_settings)).runway.crossed == (14,)
    assert not [p for p in connector.posted if "balance_low" in str(p.activity)]

    # More usage the same day: the forecast is lower still, but within the same crossing.
    await spend(api, 10)
    assert len(await wait_for_runway_cards(connector, 1)) == 1
    assert (await account(api_settings)).runway.crossed == (14,)

    # "Turn on auto-recharge" opens the form switched on and filled in with what the usage
    # recommends (the same pre-fill as the usage card's, tests/dialogs/test_usage_chat.py).
    chat = Chat(api, connector)
    [turn_on] = [a for a in card["actions"] if a["data"]["command"] == "auto_recharge"]
    assert turn_on["title"] == EN("alert.action.turn_on_auto_recharge")
    await chat.execute(turn_on["data"], verb=turn_on.get("verb", "open"))
    form = chat.last_card()
    assert input_values(form)["enabled"] == "true"
    assert input_values(form)["recharge_with"] not in ("", "0")

    # A purchase moves the forecast back beyond 14 days ($630 at about $12.33 a day): the
    # crossing is reset, and nothing is posted for it.
    await buy(api, connector, 500)
    await crossed_becomes(api_settings, ())
    assert len(runway_cards(connector)) == 1

    # Usage that brings it under again ($310 left at $23 a day: 13 days) raises a new alert.
    await spend(api, 320)
    first, second = await wait_for_runway_cards(connector, 2)
    assert first == card
    assert card_texts(second)[0] == EN.ngettext("alert.runway_low.title_days", 13, days="13")
    assert (await account(api_settings)).runway.crossed == (14,)
    assert (await account(api_settings)).runway.serial == 2


async def test_status_shows_the_forecast_date_next_to_the_runway(api, connector):
    today = datetime.now(UTC).date()
    chat = Chat(api, connector)
    await chat.say("status")
    assert EN("status.forecast") not in facts_of(chat.last_card())  # nothing spent yet
    await spend(api, 1, days_ago=30)
    await spend(api, 359)
    await chat.say("status")
    facts = facts_of(chat.last_card())
    assert facts[EN("status.runway")] == EN.ngettext("usage.runway_days", 11, days="11")
    assert facts[EN("status.forecast")] == EN.date(today + timedelta(days=11))
