"""Every regular expression that sees user text is linear in the text's length.

A pattern with nested or overlapping quantifiers, or a search that can fail late, takes time
quadratic (or worse) in its input: one chat message of "a" + "⨌" * 1998 + "a" used to hold the
event loop for two seconds, and every tenant with it. Each pattern here runs on adversarial
inputs of the longest text that can reach it, and must take no more than a bounded multiple of
a plain `str.split` of the same input. A ratio, not a wall-clock bound: the machine may be slow
or busy, both sides slow down alike. A linear pattern stays within a few hundred times
`str.split` (which is one pass in C); a quadratic one at these lengths takes tens of thousands
of times as long.
"""

from __future__ import annotations

import csv
import timeit
from collections.abc import Callable
from typing import Any

import pytest

from bot.activity_handler import MAX_TEXT_CHARS, without_bot_mention
from credits import alert_settings, money, usage
from credits.money import InvalidAmount
from dialogs import commands
from dialogs.commands import CommandParser
from locales import Localizer
from storage import state_codec

# A linear pattern measured 20-460 times str.split on these inputs (normalize() is the slowest:
# it folds accents character by character in Python).
BUDGET = 3_000
# A 2,000-character message may be four times longer once normalised (U+2A0C is four
# characters): the longest text a chat pattern sees. Card fields are bounded much shorter.
LONGEST = 4 * MAX_TEXT_CHARS
# A cell of an uploaded usage export: as long as the csv module reads.
LONGEST_CELL = csv.field_size_limit()

PARSER = CommandParser.from_localizer(Localizer.from_directory())


def adversarial(length: int) -> dict[str, str]:
    """Inputs that make backtracking patterns fail late: long runs of what a quantifier takes,
    ended by what the pattern refuses."""
    half, fifth = length // 2, length // 5
    return {
        "integrals": "a" + "\u2a0c" * (length - 2) + "a",
        "normalised integrals": "a" + "\u222b" * (length - 2) + "a",
        "punctuation then a letter": "!" * (length - 1) + "a",
        "a letter then punctuation": "a" + "!" * (length - 1),
        "dashes": "-" * length,
        "signed digits": "-1" * half,
        "hyphenated letters": "a-" * half,
        "spaces then a letter": " " * (length - 1) + "a",
        "separators": "_/ " * (length // 3),
        "space-grouped digits": "1 000" * fifth + "x",
        "comma-grouped digits": "1,000" * fifth + "x",
        "dotted digits": "1." * half + "x",
        "digits then a letter": "1" * (length - 1) + "x",
        "unclosed mentions": "<at" + ">" * (length - 3),
        "semicolons": "; ," * (length // 3),
    }


def mention_of(text: str):
    from botbuilder.schema import Activity

    return Activity().deserialize(
        {
            "type": "message",
            "text": text,
            "recipient": {"id": "bot"},
            "entities": [{"type": "mention", "mentioned": {"id": "bot"}, "text": text}],
        }
    )


def quietly(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Refusing the input is an answer too: only the time counts."""

    def run(text: str) -> Any:
        try:
            return parse(text)
        except InvalidAmount:
            return None

    return run


AMOUNT_RULES = usage.AccountRules("USD")

CASES: dict[str, tuple[Callable[[str], Any], int]] = {
    # The chat: a typed message, folded and parsed.
    "commands: separators": (lambda s: commands._SEPARATORS.sub(" ", s), LONGEST),
    "commands: word hyphens": (lambda s: commands._WORD_HYPHEN.sub(" ", s), LONGEST),
    "commands: leading punctuation": (commands._LEADING_PUNCTUATION.match, LONGEST),
    "commands: trailing punctuation": (commands._TRAILING_PUNCTUATION.search, LONGEST),
    "commands: normalize": (commands.normalize, LONGEST),
    "commands: parse a whole message": (PARSER.parse, MAX_TEXT_CHARS),
    "commands: parse the longest command": (PARSER.parse, commands.MAX_COMMAND_CHARS),
    "a mention of the bot": (lambda s: without_bot_mention(mention_of(s)), LONGEST),
    # Amounts typed in cards (bounded far shorter than this by the forms).
    "money: plain number": (money._PLAIN_NUMBER.match, LONGEST),
    "money: parse an amount (en)": (
        quietly(lambda s: money._parse_number(s, "en-US")),
        LONGEST,
    ),
    "money: parse an amount (fr)": (
        quietly(lambda s: money._parse_number(s, "fr-FR")),
        LONGEST,
    ),
    "thresholds: separators": (alert_settings.SEPARATORS.split, LONGEST),
    "thresholds: a space inside a number": (alert_settings._SPACED_NUMBER.search, LONGEST),
    "thresholds: a space grouping thousands": (
        lambda s: alert_settings._SPACE_GROUP.sub("", s),
        LONGEST,
    ),
    "thresholds: list parts": (alert_settings._LIST_PARTS.split, LONGEST),
    "thresholds: split": (alert_settings.split_amounts, LONGEST),
    # Dialog state written to storage.
    "state: lone surrogates": (state_codec._LONE_SURROGATE.search, LONGEST),
    # Cells of an uploaded usage export.
    "usage: usage id": (usage._GUID.fullmatch, LONGEST_CELL),
    "usage: integer": (usage._INTEGER.fullmatch, LONGEST_CELL),
    "usage: currency": (usage._CURRENCY.fullmatch, LONGEST_CELL),
    "usage: time": (usage._TIME.fullmatch, LONGEST_CELL),
    "usage: amount": (AMOUNT_RULES.amount_text.fullmatch, LONGEST_CELL),
}


def best_time(run: Callable[[str], Any], text: str, rounds: int = 2) -> float:
    """Seconds per call: the best of a few rounds, each of at least 2 ms."""
    timer = timeit.Timer(lambda: run(text))
    number = 1
    while (spent := timer.timeit(number)) < 0.002:
        number *= 4
    return min([spent, *timer.repeat(rounds - 1, number)]) / number


@pytest.mark.parametrize("name", list(CASES))
def test_each_pattern_is_linear_on_adversarial_input(name):
    run, length = CASES[name]
    ratios = {}
    for kind, text in adversarial(length).items():
        ratios[kind] = best_time(run, text) / best_time(str.split, text)
    worst = max(ratios, key=ratios.get)
    assert ratios[worst] < BUDGET, f"{name} on {worst}: {ratios[worst]:,.0f} x str.split"


def test_the_budget_tells_a_quadratic_pattern_from_a_linear_one():
    """The check can fail: the trailing-punctuation search this file replaced is caught."""
    import re

    quadratic = re.compile(r"[\W_]+$")
    text = adversarial(LONGEST)["normalised integrals"]
    assert best_time(quadratic.search, text, rounds=1) / best_time(str.split, text) > BUDGET
