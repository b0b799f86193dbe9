"""A person's first minutes with the bot, through the real Agents Playground in Chromium.

Every expected text comes from the bot's own message catalogues (bot/i18n.py), never from this
file, so rewording a message does not break the test and a missing translation does.
"""

from __future__ import annotations

import pytest

from bot.i18n import LANGUAGES, Localizer
from tests.e2e.chat import Chat, normalize, plain
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def localizer() -> Localizer:
    return Localizer.from_directory()


def first_word(translator, msgid: str) -> str:
    """The first synonym of a command (`command.help` is "help|?|commands|...")."""
    return translator.gettext(msgid).split("|")[0]


def test_welcome_help_menu_and_language(chat: Chat, localizer: Localizer) -> None:
    en = localizer.translator("en-US")
    brazilian = next(lang for lang in LANGUAGES if lang.tag == "pt-BR")
    pt = localizer.translator(brazilian.tag)

    # Opening the Playground installs the bot: it answers with the welcome card and its menu.
    welcome = chat.wait_for_card(0, en.gettext("welcome.title"))

    # Typed help: the help text, in English (the Playground always sends locale en-US).
    before = chat.send(first_word(en, "command.help"))
    chat.wait_for_text(before, plain(en.gettext("help.text")))

    # A menu button on the welcome card. Until its flow exists the bot says "coming soon";
    # once it does, it answers with the status card.
    status = en.gettext("menu.status")
    before = chat.press(welcome, status)
    coming_soon = plain(en.gettext("coming_soon", feature=status))
    status_title = en.gettext("status.title")

    def answers_status(index: int, text: str) -> bool:
        if coming_soon in text:
            return True
        message = chat.bot_messages.nth(index)
        return message.get_by_role("heading", name=status_title, exact=True).count() > 0

    chat.wait_for_reply(before, answers_status, f"{coming_soon!r} or the status card", 30)

    # The language chooser offers all six languages.
    before = chat.send(first_word(en, "command.language"))
    chooser = chat.wait_for_card(before, en.gettext("language.title"))
    for language in LANGUAGES:
        assert chooser.get_by_role("button", name=language.native_name, exact=True).count() == 1

    # Choosing Brazilian Portuguese is confirmed in Portuguese ...
    before = chat.press(chooser, brazilian.native_name)
    chat.wait_for_text(before, plain(pt.gettext("language.changed")))

    # ... and from then on the bot answers in Portuguese, to a Portuguese command.
    before = chat.send(first_word(pt, "command.help"))
    chat.wait_for_text(before, plain(pt.gettext("help.text")))


def test_add_funds_and_assign_a_licence(chat: Chat, localizer: Localizer) -> None:
    """An admin (the Playground's Alex Wilber is a Billing Administrator in the demo directory)
    buys credits with the saved test card, then gives one user the licence."""
    en = localizer.translator("en-US")
    chat.wait_for_card(0, en.gettext("welcome.title"))

    # Add funds with an amount: straight to the confirmation, then the receipt in its place.
    before = chat.send(first_word(en, "command.add_funds") + " 500")
    confirm = chat.wait_for_card(before, en.gettext("confirm.title"))
    chat.press(confirm, en.gettext("confirm.place"))
    chat.wait_for_card(0, en.gettext("receipt.title"), 30)

    # Licences: tick the first eligible user, assign, confirm, read the per-user result.
    before = chat.send(first_word(en, "command.licences"))
    listing = chat.wait_for_card(before, en.gettext("licences.title"), 30)
    listing.get_by_role("checkbox").first.check()
    before = chat.press(listing, en.gettext("licences.assign"))
    confirm = chat.wait_for_card(before, en.gettext("licences.confirm_assign", count=1), 30)
    chat.press(confirm, en.gettext("licences.confirm"))
    result = chat.wait_for_card(0, en.gettext("licences.result_title"), 30)
    assert plain(en.gettext("licences.outcome.assigned")) in normalize(result.inner_text())
    # Kept for a person to look at (tests/e2e/artifacts is not committed).
    chat.page.screenshot(path=str(ARTIFACTS / "licences-result.png"), full_page=True)
