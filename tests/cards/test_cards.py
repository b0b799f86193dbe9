"""Every card the bot sends, in every language, is valid for Teams.

Validated with the official Adaptive Cards object model (npm `adaptivecards`, through
tests/cards_validation.py) at the version the card declares, and kept under Teams' size limit.
"""

from __future__ import annotations

import json

import pytest

from cards import CardRenderer
from cards.renderer import MENU_COMMANDS, TEMPLATES_DIR
from dialogs.card_actions import Verb
from dialogs.commands import Command
from locales import LANGUAGES, Localizer
from tests.fakes.connector import card_texts
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
    assert all(a["type"] == "Action.Execute" for a in card["actions"])


def _actions(node):
    """Every action of a card (not the fallbacks inside them), depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("type"), str) and node["type"].startswith("Action."):
            yield node
            return
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _actions(value)


@pytest.mark.parametrize("t", L10N.all()[:1], ids=lambda t: t.tag)
def test_every_button_is_a_universal_action_with_a_submit_fallback(t):
    verbs = {verb.value for verb in Verb} - {Verb.REFRESH.value}
    for name, card in _rendered(t):
        for action in _actions(card.get("body", [])):
            if action["type"] == "Action.OpenUrl":
                continue
            assert action["type"] == "Action.Execute", name
            assert action["verb"] in verbs, name
            fallback = action["fallback"]
            assert fallback["type"] == "Action.Submit", name
            assert (fallback["title"], fallback["data"]) == (action["title"], action["data"])
        for action in card.get("actions", []):
            assert action["type"] == "Action.Execute" and action["verb"] in verbs, name
            assert action["fallback"]["data"] == action["data"], name


FINISHED = ("add_funds_receipt", "add_funds_pending", "auto_recharge_saved",
            "alert_settings_saved", "licences_result", "text")  # fmt: skip


def test_a_finished_card_is_a_summary_without_buttons():
    t = L10N.translator("en-US")
    finished = [(name, card) for name, card in _rendered(t) if name in FINISHED]
    assert {name for name, _ in finished} == set(FINISHED)
    assert [(name, list(_actions(card))) for name, card in finished if list(_actions(card))] == []
    paid = [card for name, card in _rendered(t) if name == "add_funds_confirm"][-1]
    assert card_texts(paid)[0] == t("confirm.paid_title") and list(_actions(paid)) == []


def test_the_status_card_refreshes_itself_for_the_admins_it_lists():
    t = L10N.translator("en-US")
    card = next(card for name, card in _rendered(t) if name == "status")
    refresh = card["refresh"]
    assert refresh["action"] == {
        "type": "Action.Execute",
        "verb": Verb.REFRESH.value,
        "data": {"refresh": "status"},
    }
    assert len(refresh["userIds"]) == 60


def test_the_language_chooser_never_puts_automatic_between_two_languages():
    for t in L10N.all():
        card = RENDERER.render("language", t, languages=LANGUAGES, current="English")
        rows = [
            [action["data"]["language"] for action in element["actions"]]
            for element in card["body"]
            if element["type"] == "ActionSet"
        ]
        assert rows == [["en-US", "pt-BR", "es-ES"], ["zh-CN", "ru-RU", "fr-FR"], ["auto"]]
        assert card_texts(card)[-1] == t("language.automatic")


def test_the_welcome_in_a_channel_says_to_mention_the_bot_and_has_no_menu():
    for t in L10N.all():
        card = RENDERER.render("welcome", t, channel=True)
        assert card_texts(card) == [t("welcome.title"), t("welcome.channel_text")]
        assert t("welcome.text") in card_texts(RENDERER.render("welcome", t))


def test_menu_buttons_send_commands_the_bot_understands():
    assert MENU_COMMANDS  # the welcome and menu cards are built from it
    assert set(MENU_COMMANDS) <= {command.value for command in Command}


def test_the_recharge_alert_names_the_card_network_as_it_writes_itself():
    from datetime import UTC, datetime

    from cards.alert_cards import AlertCards
    from credits.alerts import Delivery
    from credits.model import EventKind

    t = L10N.translator("en-US")
    delivery = Delivery(
        tenant_id="t",
        event_id="recharge_succeeded-1",
        kind=EventKind.RECHARGE_SUCCEEDED,
        event_at=datetime(2026, 11, 23, tzinfo=UTC),
        data={
            "amount_minor": 50_000,
            "balance_minor": 60_000,
            "currency": "USD",
            "method_brand": "visa",  # as processors name it
            "method_last4": "4242",
            "method_month": 12,
            "method_year": 2030,
        },
        conversation_id="a:1",
        conversation_kind="personal",
        locale="en-US",
    )
    facts = {
        f["title"]: f["value"] for f in AlertCards(RENDERER, L10N).content(delivery, t)["facts"]
    }
    assert facts[t("alert.fact.method")] == t(
        "add_funds.method_saved", brand="Visa", last4="4242", month="12", year="2030"
    )
