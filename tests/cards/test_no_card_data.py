"""No card of the bot asks for a card number or a security code, in any language.

Card data typed into a chat travels through Teams and the Bot Connector and stays in Teams'
records of the chat (PCI DSS keeps it out of such channels): cards are typed on the card
processor's hosted page only. This walks every template (`cards/*.json.j2`, each rendered with
the samples of tests/support/card_samples.py, which cover every branch) in all six languages, and
fails on any input that would take a card number, an expiry date or a CVC.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from cards import CardRenderer
from locales import Localizer
from tests.support.card_samples import samples

L10N = Localizer.from_directory()
RENDERER = CardRenderer()
CARD_NUMBERS = ("4242424242424242", "5555555555554444", "378282246310005", "4000002760003184")
# Words that name card data, in the six languages and as ids (folded to lower case).
CARD_WORDS = re.compile(
    r"card.?(number|num|no\b|month|year)|\bpan\b|cvc|cvv|cvn|security.?code|card.?exp"
    r"|expir\w*.?(month|year|date)|\bexp.?(month|year|date)|mm ?/ ?(yy|aa)"
    r"|número d[eo] (cartão|tarjeta)|código de segurança|código de seguridad|caducidad|validade"
    r"|numéro de carte|code de sécurité|date d'expiration"
    r"|номер карты|код безопасности|срок действия карты"
    r"|卡号|安全码|有效期",
    re.IGNORECASE,
)


def inputs(node: Any) -> list[dict[str, Any]]:
    """Every input element of a card, however deeply nested."""
    found = []
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Input."):
            found.append(node)
        for value in node.values():
            found += inputs(value)
    elif isinstance(node, list):
        for value in node:
            found += inputs(value)
    return found


def takes_card_data(element: dict[str, Any]) -> str:
    """Why this input would take card data ("" when it would not)."""
    words = " ".join(
        str(element.get(key) or "")
        for key in ("id", "label", "placeholder", "title", "errorMessage", "regex")
    )
    if CARD_WORDS.search(words):
        return f"names card data: {words.strip()!r}"
    if element.get("type") == "Input.Number" and (element.get("max") or 0) >= 10**11:
        return "a number big enough for a card number"
    if element.get("type") == "Input.Date" and "exp" in str(element.get("id", "")).lower():
        return "an expiry date"
    pattern = element.get("regex")
    if pattern and any(re.fullmatch(pattern, number) for number in CARD_NUMBERS):
        return f"a pattern that accepts a card number: {pattern!r}"
    return ""


def offenders(card: dict[str, Any]) -> list[str]:
    return [
        f"{element.get('id')}: {why}"
        for element in inputs(card)
        if (why := takes_card_data(element))
    ]


@pytest.mark.parametrize("t", L10N.all(), ids=lambda t: t.tag)
def test_no_input_of_any_card_takes_card_data(t):
    rendered = [(name, RENDERER.render(name, t, **data)) for name, data in samples(t)]
    assert sum(len(inputs(card)) for _, card in rendered) > 20  # the walk does see inputs
    found = {
        f"{name}#{i}": bad for i, (name, card) in enumerate(rendered) if (bad := offenders(card))
    }
    assert found == {}


@pytest.mark.parametrize(
    "element",
    [
        # What the add-funds form used to ask (English and other languages).
        {"type": "Input.Text", "id": "card_number", "label": "Card number", "maxLength": 23},
        {"type": "Input.Text", "id": "x1", "label": "Número do cartão"},
        {"type": "Input.Text", "id": "x2", "label": "Номер карты"},
        {"type": "Input.Text", "id": "x3", "label": "卡号"},
        {"type": "Input.Text", "id": "card_cvc", "label": "Security code (CVC)", "maxLength": 4},
        {"type": "Input.Text", "id": "x4", "label": "Code de sécurité"},
        {"type": "Input.ChoiceSet", "id": "card_month", "label": "Expiry month", "choices": []},
        {"type": "Input.ChoiceSet", "id": "card_year", "label": "Year", "choices": []},
        {"type": "Input.Text", "id": "pan", "label": "Account"},
        {"type": "Input.Number", "id": "digits", "label": "Digits", "max": 9999999999999999},
        {"type": "Input.Text", "id": "digits", "label": "Digits", "regex": r"^\d{13,19}$"},
    ],
)
def test_the_walk_catches_an_input_that_takes_card_data(element):
    card = {"type": "AdaptiveCard", "body": [{"type": "Container", "items": [element]}]}
    assert offenders(card)


@pytest.mark.parametrize(
    "element",
    [
        {"type": "Input.Text", "id": "amount", "label": "Amount (USD)", "maxLength": 24},
        {"type": "Input.Text", "id": "po", "label": "Purchase order number", "maxLength": 64},
        {"type": "Input.Toggle", "id": "save_card", "title": "Keep a new card for later"},
        {"type": "Input.Number", "id": "threshold", "label": "Threshold", "max": 100000},
    ],
)
def test_the_walk_lets_ordinary_inputs_be(element):
    assert offenders({"type": "AdaptiveCard", "body": [element]}) == []
