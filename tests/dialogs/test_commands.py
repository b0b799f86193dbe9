"""Command parsing: exact words and synonyms, never substrings."""

from __future__ import annotations

import pytest

from dialogs.commands import Command, CommandParser, normalize
from locales import Localizer

PARSER = CommandParser.from_localizer(Localizer.from_directory())


@pytest.mark.parametrize(
    ("text", "command", "argument"),
    [
        ("help", Command.HELP, ""),
        ("  HELP!  ", Command.HELP, ""),
        ("?", Command.HELP, ""),
        ("status", Command.STATUS, ""),
        ("Balance", Command.STATUS, ""),
        ("add funds", Command.ADD_FUNDS, ""),
        ("Add funds 500", Command.ADD_FUNDS, "500"),
        ("add funds -500", Command.ADD_FUNDS, "-500"),
        ("add funds 1e9", Command.ADD_FUNDS, "1e9"),
        ("auto-recharge", Command.AUTO_RECHARGE, ""),
        ("Auto recharge", Command.AUTO_RECHARGE, ""),
        ("licenses", Command.LICENCES, ""),
        ("language pt", Command.LANGUAGE, "pt"),
        ("cancel", Command.CANCEL, ""),
        ("ajuda", Command.HELP, ""),
        ("adicionar fundos 100", Command.ADD_FUNDS, "100"),
        ("licencas", Command.LICENCES, ""),
        ("añadir fondos", Command.ADD_FUNDS, ""),
        ("充值", Command.ADD_FUNDS, ""),
        ("充值500", Command.ADD_FUNDS, "500"),
        ("帮助", Command.HELP, ""),
        ("справка", Command.HELP, ""),
        ("Пополнить 200", Command.ADD_FUNDS, "200"),
        ("aide", Command.HELP, ""),
        ("ajouter des fonds", Command.ADD_FUNDS, ""),
    ],
)
def test_commands_and_synonyms(text, command, argument):
    parsed = PARSER.parse(text)
    assert parsed is not None, text
    assert (parsed.command, parsed.argument) == (command, argument)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        None,
        "helpful",
        "I need help",
        "statuses",
        "add fundsss",
        "please help me",
        "xhelp",
    ],
)
def test_not_commands(text):
    assert PARSER.parse(text) is None


def test_normalize_keeps_signs_and_folds_words():
    assert normalize("Auto-Recharge") == "auto recharge"
    assert normalize("-500") == "-500"
    assert normalize("Licenças") == "licencas"


def test_every_manifest_command_is_understood():
    """The Teams command menu (manifest/commands.json) offers only words the bot parses."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "manifest" / "commands.json"
    commands = json.loads(path.read_text(encoding="utf-8"))
    for language, titles in commands.items():
        for command_id, title in titles.items():
            parsed = PARSER.parse(title)
            assert parsed is not None and parsed.command.value == command_id, (language, title)
