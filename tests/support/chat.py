"""One admin's chat with the bot through the real app, and helpers that read the cards it sends.

Replies land on the fake Bot Connector (tests/fakes/connector.py); these helpers post activities
as Teams (or the Playground) sends them and find inputs and submit data in the cards.
"""

from __future__ import annotations

from typing import Any

from locales import Localizer
from tests.fakes.connector import card_texts
from tests.support import activities

L10N = Localizer.from_directory()
EN = L10N.translator("en-US")


class Chat:
    """One admin's personal chat with the bot."""

    def __init__(self, client, connector, locale: str = "en-US") -> None:
        self.client = client
        self.connector = connector
        self.locale = locale

    async def say(self, text: str) -> None:
        await self._post(activities.message(self.connector.url, text, locale=self.locale))

    async def submit(self, value: dict[str, Any], reply_to: str | None = None) -> None:
        activity = activities.message(self.connector.url, value=value, locale=self.locale)
        if reply_to:
            activity["replyToId"] = reply_to
        await self._post(activity)

    async def _post(self, activity) -> None:
        response = await self.client.post("/api/messages", json=activity)
        assert response.status in (200, 201), await response.text()

    def last_card(self) -> dict[str, Any]:
        return self.connector.cards()[-1]

    def last_texts(self) -> list[str]:
        return card_texts(self.last_card())


def submit_data(card: dict[str, Any], form: str, action: str | None = None) -> dict[str, Any]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data")
            if (
                node.get("type") == "Action.Submit"
                and isinstance(data, dict)
                and data.get("form") == form
            ):
                if action is None or data.get("action") == action:
                    found.append(data)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    assert found, f"no {form} submit in the card"
    return dict(found[0])


def open_urls(card: dict[str, Any]) -> list[str]:
    """Every Action.OpenUrl's address in a card."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Action.OpenUrl":
                found.append(node["url"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def choices(card: dict[str, Any], input_id: str) -> list[dict[str, str]]:
    def walk(node):
        if isinstance(node, dict):
            if node.get("id") == input_id:
                return node["choices"]
            for value in node.values():
                if (hit := walk(value)) is not None:
                    return hit
        elif isinstance(node, list):
            for value in node:
                if (hit := walk(value)) is not None:
                    return hit
        return None

    return walk(card)


NOT_ADMIN = "00000000-0000-0000-0000-0000000000023"


class UserChat(Chat):
    def __init__(self, client, connector, aad: str, **kwargs) -> None:
        super().__init__(client, connector, **kwargs)
        self.aad = aad

    async def _post(self, activity) -> None:
        activity["from"]["aadObjectId"] = self.aad
        await super()._post(activity)


def element(card: dict[str, Any], input_id: str) -> dict[str, Any]:
    return next(e for e in card["body"] if e.get("id") == input_id)


def error_at(card: dict[str, Any], input_id: str) -> str | None:
    """The error shown right under an input, if any."""
    body = card["body"]
    index = next(i for i, e in enumerate(body) if e.get("id") == input_id)
    following = body[index + 1] if index + 1 < len(body) else {}
    return following.get("text") if following.get("color") == "attention" else None
