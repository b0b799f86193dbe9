"""The Adaptive Card validator (tests/cards_validation.py) catches what Teams would not show."""

from __future__ import annotations

from typing import Any

from tests.support.cards_validation import validate_cards


def card(*body: dict[str, Any], version: str = "1.5", **extra: Any) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": version,
        "body": list(body),
        **extra,
    }


VALID = card(
    {"type": "TextBlock", "text": "Balance: $1,250.50", "wrap": True},
    {"type": "Input.Text", "id": "amount", "label": "Amount"},
    {"type": "Chart.Donut", "data": [{"legend": "Used", "value": 3}]},  # Teams renders charts
    actions=[{"type": "Action.Submit", "title": "Add funds", "data": {"action": "add_funds"}}],
)


def test_a_valid_minimal_card_passes():
    assert validate_cards([VALID]) == [[]]


def test_each_error_is_caught_and_reported_for_its_own_card():
    unknown_element = card({"type": "TextBox", "text": "typo"})
    input_without_id = card({"type": "Input.Text", "label": "Amount"})
    too_new = card({"type": "TextBlock", "text": "hello"}, version="1.6")
    too_big = card({"type": "TextBlock", "text": "x" * (30 * 1024)})

    results = validate_cards([VALID, unknown_element, input_without_id, too_new, too_big, VALID])

    assert len(results) == 6
    assert results[0] == [] and results[5] == []
    assert any("TextBox" in error for error in results[1]), results[1]
    assert any("Id" in error for error in results[2]), results[2]
    assert any("1.6" in error for error in results[3]), results[3]
    assert any("CardTooLarge" in error for error in results[4]), results[4]


def test_other_mistakes_are_caught_too():
    results = validate_cards(
        [
            card({"type": "TextBlock", "text": "x"}, version=None),  # type: ignore[arg-type]
            card({"type": "TextBlock", "text": "x", "size": "enormous"}),
            card({"type": "Input.Text", "id": "a"}, {"type": "Input.Number", "id": "a"}),
            card(actions=[{"type": "Action.Teleport"}]),
            {"type": "Card", "version": "1.5"},
        ]
    )
    assert all(errors for errors in results), results


def test_an_empty_batch_is_fine():
    assert validate_cards([]) == []
