"""One admin's chat with the bot through the real app, and helpers that read the cards it sends.

Replies land on the fake Bot Connector (tests/fakes/connector.py); these helpers post activities
as Teams (or the Playground) sends them and find inputs and submit data in the cards. A button
is pressed either as Teams does with Universal Actions (`Chat.press`: an `adaptiveCard/action`
invoke, answered in the HTTP response) or as a client without them does (`Chat.submit`: the
Action.Submit fallback, a message).
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

    async def press(
        self, card: dict[str, Any], title: str, *, card_id: str = "activity-1", **inputs: str
    ) -> dict[str, Any]:
        """Press the button titled `title` on `card` as Teams does: an `adaptiveCard/action`
        invoke carrying the button's verb and data merged with the card's inputs (as shown,
        or as given in `inputs`). The invoke's answer (`{"statusCode", "type", "value"}`)."""
        action = find_action(card, title)
        values = {} if action.get("associatedInputs") == "none" else input_values(card)
        data = {**values, **inputs, **action["data"]}
        return await self.execute(data, verb=action["verb"], card_id=card_id)

    async def execute(
        self,
        data: Any,
        *,
        verb: str = "form",
        card_id: str | None = "activity-1",
        trigger: str = "manual",
    ) -> dict[str, Any]:
        """Post an `adaptiveCard/action` invoke; the invoke's answer."""
        activity = activities.invoke(
            self.connector.url,
            verb=verb,
            data=data,
            reply_to=card_id,
            trigger=trigger,
            locale=self.locale,
        )
        return await self._invoke(activity)

    async def _invoke(self, activity) -> dict[str, Any]:
        response = await self.client.post("/api/messages", json=activity)
        assert response.status == 200, await response.text()
        return await response.json()

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
                node.get("type") == "Action.Execute"
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


def find_action(card: dict[str, Any], title: str) -> dict[str, Any]:
    """The Action.Execute titled `title` in a card."""
    found = [a for a in actions_of(card) if a.get("title") == title]
    assert found, f"no button {title!r} in the card: {[a.get('title') for a in actions_of(card)]}"
    assert found[0]["type"] == "Action.Execute", found[0]
    return found[0]


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button of a card, depth first (not the fallbacks inside them, nor its refresh)."""
    found: list[dict[str, Any]] = []

    def walk(node, key=""):
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind.startswith("Action.") and key != "action":
                found.append(node)
                return
            for name, value in node.items():
                walk(value, name)
        elif isinstance(node, list):
            for value in node:
                walk(value, key)

    walk(card)
    return found


def input_values(card: dict[str, Any]) -> dict[str, str]:
    """The values a card's inputs hold as shown (what Teams sends with a press)."""
    found: dict[str, str] = {}

    def walk(node):
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind.startswith("Input.") and "id" in node:
                found[node["id"]] = str(node.get("value", ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def answered_card(answer: dict[str, Any]) -> dict[str, Any]:
    """The card an invoke's answer puts in place of the pressed one."""
    assert answer["statusCode"] == 200, answer
    assert answer["type"] == "application/vnd.microsoft.card.adaptive", answer
    return answer["value"]


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

    async def _invoke(self, activity) -> dict[str, Any]:
        activity["from"]["aadObjectId"] = self.aad
        return await super()._invoke(activity)


def element(card: dict[str, Any], input_id: str) -> dict[str, Any]:
    return next(e for e in card["body"] if e.get("id") == input_id)


def error_at(card: dict[str, Any], input_id: str) -> str | None:
    """The error shown right under an input, if any."""
    body = card["body"]
    index = next(i for i, e in enumerate(body) if e.get("id") == input_id)
    following = body[index + 1] if index + 1 < len(body) else {}
    return following.get("text") if following.get("color") == "attention" else None
