"""The Playground's chat pane, driven through Playwright (selectors documented on `Chat`)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

# How long one bot answer may take to show in the page.
REPLY_TIMEOUT = float(os.environ.get("E2E_REPLY_TIMEOUT", "30"))


def normalize(text: str) -> str:
    return " ".join(text.split())


def plain(markdown: str) -> str:
    """What a catalogue message looks like once the Playground has rendered its markdown."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", markdown, flags=re.S)
    text = re.sub(r"(?m)^\s*(?:[-*]|\d+\.)\s+", "", text)
    return normalize(text)


class Chat:
    """The personal chat with the bot, as the Playground renders it.

    DOM (Playground 0.2.28): every message sits in a container whose first child is
    `[aria-label="Message header"]`; the bot's header also holds `[aria-label="Message author"]`,
    the user's does not. Adaptive Cards render buttons with role=button and the action title as
    the accessible name, and `style: heading` TextBlocks as role=heading. The compose box is a
    rich-text editor (a contenteditable role=textbox; a form's text inputs are textboxes too);
    the send button is named "Send Message". A press on an Action.Execute changes its card in
    place (the same message), with a note under it.
    """

    BOT_MESSAGE = 'div:has(> [aria-label="Message header"] > [aria-label="Message author"])'
    COMPOSE_BOX = 'div[role="textbox"][contenteditable="true"]'

    def __init__(self, page) -> None:
        self.page = page
        self.bot_messages = page.locator(self.BOT_MESSAGE)

    def count(self) -> int:
        return self.bot_messages.count()

    def texts(self) -> list[str]:
        return [normalize(text) for text in self.bot_messages.all_inner_texts()]

    def send(self, text: str) -> int:
        """Type `text` and send it; returns how many bot messages there were before."""
        before = self.count()
        box = self.page.locator(self.COMPOSE_BOX)
        box.click()
        self.page.keyboard.type(text)
        self.page.get_by_role("button", name="Send Message", exact=True).click()
        return before

    def press(self, message, button: str) -> int:
        """Press an Adaptive Card button in `message`; returns the bot message count before."""
        before = self.count()
        message.get_by_role("button", name=button, exact=True).click()
        return before

    def wait_for_reply(
        self, after: int, matches: Callable[[int, str], bool], what: str, timeout: float
    ) -> object:
        """The first bot message after index `after` that `matches(index, text)`."""
        deadline = time.monotonic() + timeout
        while True:
            texts = self.texts()
            for index in range(after, len(texts)):
                if matches(index, texts[index]):
                    return self.bot_messages.nth(index)
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no bot message with {what} within {timeout:.0f} s; bot messages since: "
                    f"{texts[after:]!r}"
                )
            time.sleep(0.1)

    def wait_for_text(self, after: int, expected: str, timeout: float = REPLY_TIMEOUT) -> object:
        wanted = normalize(expected)
        return self.wait_for_reply(
            after, lambda _i, text: wanted in text, f"the text {wanted!r}", timeout
        )

    def wait_in(self, message, heading: str, timeout: float = REPLY_TIMEOUT) -> None:
        """Wait until `message` (a card changed in place) shows a heading."""
        message.get_by_role("heading", name=heading, exact=True).wait_for(timeout=timeout * 1000)

    def headings(self, heading: str) -> int:
        """How many cards in the chat show this heading."""
        return self.page.get_by_role("heading", name=heading, exact=True).count()

    def wait_for_card(self, after: int, heading: str, timeout: float = REPLY_TIMEOUT) -> object:
        def has_heading(index: int, _text: str) -> bool:
            message = self.bot_messages.nth(index)
            return message.get_by_role("heading", name=heading, exact=True).count() > 0

        return self.wait_for_reply(after, has_heading, f"a card titled {heading!r}", timeout)
