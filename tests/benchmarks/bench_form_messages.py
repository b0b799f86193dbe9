"""Benchmark: messages a completed add-funds flow with one error puts in the chat.

Through the real app (on Azurite) and the fake Bot Connector (tests/fakes/connector.py), an
admin types `add funds`, reviews a wrong amount, corrects it, reviews again and places the
order with an Enterprise Agreement. Each press is sent as a client without Universal Actions
sends it (the Action.Submit's message, with the card's `replyToId`) and as Teams sends an
Action.Execute (an `adaptiveCard/action` invoke). Prints the new messages (POSTs) and the
updates of a message (PUTs) the bot sent for each; asserts nothing.

    .venv/bin/python -m tests.benchmarks.bench_form_messages
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.settings import Settings
from scripts.azurite import Azurite
from tests.fakes.connector import FakeConnector
from tests.support import activities
from tests.support.chat import choices


def _data(card: dict[str, Any], form: str, action: str | None = None) -> dict[str, Any]:
    """A button's data (an Action.Execute's or, in older cards, an Action.Submit's)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if (
                node.get("type") in ("Action.Execute", "Action.Submit")
                and isinstance(data, dict)
                and data.get("form") == form
                and (action is None or data.get("action") == action)
            ):
                found.append(dict(data))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found[0]


def _agreement(card: dict[str, Any]) -> str:
    return next(c["value"] for c in choices(card, "method") if c["value"].startswith("agreement:"))


async def one_flow(azurite: Azurite, mode: str) -> tuple[int, int]:
    """(new messages, updated messages) of one flow, pressing in `mode` (submit or invoke)."""
    settings = Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": "bench" + uuid.uuid4().hex[:10],
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        }
    )
    connector = FakeConnector()
    connector_server = TestServer(connector.app())
    await connector_server.start_server()
    connector.url = str(connector_server.make_url("")).rstrip("/")
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        card: dict[str, Any] = {}
        card_id = ""

        async def post(activity: dict[str, Any]) -> None:
            nonlocal card, card_id
            before = len(connector.posted)
            response = await client.post("/api/messages", json=activity)
            assert response.status in (200, 201), await response.text()
            if activity["type"] == "invoke":
                answer = await response.json()
                if answer.get("type") == "application/vnd.microsoft.card.adaptive":
                    card = answer["value"]
                return
            for sent in connector.posted[before:]:
                for attachment in sent.activity.get("attachments") or []:
                    card, card_id = attachment["content"], sent.activity_id

        async def press(data: dict[str, Any]) -> None:
            if mode == "invoke":
                await post(
                    activities.invoke(connector.url, verb="form", data=data, reply_to=card_id)
                )
            else:
                activity = activities.message(connector.url, value=data)
                activity["replyToId"] = card_id
                await post(activity)

        await post(activities.message(connector.url, "add funds"))
        method = _agreement(card)
        await press({**_data(card, "add_funds"), "amount": "12.345", "method": method})
        await press({**_data(card, "add_funds"), "amount": "500", "method": method})
        await press(_data(card, "add_funds_confirm", "place"))
        new = sum(1 for p in connector.posted if p.method == "POST")
        updated = sum(1 for p in connector.posted if p.method == "PUT")
        return new, updated
    finally:
        await client.close()
        await connector_server.close()


async def main() -> None:
    with Azurite() as azurite:
        for mode, what in (
            ("submit", "Action.Submit messages (clients without Universal Actions)"),
            ("invoke", "Action.Execute invokes (Teams, the Agents Playground)"),
        ):
            try:
                new, updated = await one_flow(azurite, mode)
            except AssertionError as error:
                print(f"{what}: not served ({error})")
                continue
            print(
                f"add funds with one wrong amount, pressed as {what}: "
                f"{new} new messages, {updated} updated in place"
            )


if __name__ == "__main__":
    asyncio.run(main())
