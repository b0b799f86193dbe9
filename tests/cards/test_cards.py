"""Every card the bot sends, in every language, is valid for Teams.

Validated with the official Adaptive Cards object model (npm `adaptivecards`, through
tests/cards_validation.py) at the version the card declares, and kept under Teams' size limit.
"""

from __future__ import annotations

import json

import pytest

from cards import CardRenderer
from cards.renderer import MENU_COMMANDS, TEMPLATES_DIR
from dialogs.commands import Command
from locales import Localizer
from tests.support.card_samples import samples
from tests.support.cards_validation import validate_cards

L10N = Localizer.from_directory()
RENDERER = CardRenderer()
TEAMS_MAX_CARD_BYTES = 28 * 1024


def _rendered(t):
    return [(name, RENDERER.render(name, t, **data)) for name, data in samples(t)]


def test_every_template_has_a_sample():
    templates = {p.name.removesuffix(".json.j2") for p in TEMPLATES_DIR.glob("*.json.j2")}
    sampled = {name for name, _ in samples(L10N.translator("en-US"))}
    assert templates == sampled


@pytest.mark.parametrize("t", L10N.all(), ids=lambda t: t.tag)
def test_cards_are_valid_adaptive_cards_in_every_language(t):
    rendered = _rendered(t)
    problems = validate_cards([card for _, card in rendered])
    report = {
        f"{name}#{i}": errors
        for i, ((name, _), errors) in enumerate(zip(rendered, problems, strict=True))
        if errors
    }
    assert report == {}


@pytest.mark.parametrize("t", L10N.all(), ids=lambda t: t.tag)
def test_cards_fit_teams_limits(t):
    for name, card in _rendered(t):
        assert card["version"] == "1.5", name
        size = len(json.dumps(card, ensure_ascii=False).encode("utf-8"))
        assert size < TEAMS_MAX_CARD_BYTES, (name, size)


def test_user_text_cannot_break_out_of_a_card():
    t = L10N.translator("en-US")
    hostile = '"}], "actions": [{"type": "Action.OpenUrl", "url": "https://evil.example"}], "x": {"'
    card = RENDERER.render("add_funds_failed", t, reason=hostile, amount="$1")
    assert card["body"][1]["text"] == hostile
    assert all(a["type"] == "Action.Submit" for a in card["actions"])


def test_menu_buttons_send_commands_the_bot_understands():
    assert MENU_COMMANDS  # the welcome and menu cards are built from it
    assert set(MENU_COMMANDS) <= {command.value for command in Command}
