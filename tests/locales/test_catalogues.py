"""Every message exists, non-empty, in every language, with the same placeholders."""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.pofile import read_po

from dialogs.commands import Command, CommandParser, normalize
from locales import LANGUAGES, LOCALES_DIR, Localizer, catalogue_path, resolve_language

ENGLISH = LANGUAGES[0]


def _messages(babel_id: str) -> dict[str, str]:
    with catalogue_path(LOCALES_DIR, babel_id).open("rb") as po_file:
        catalog = read_po(po_file)
    return {message.id: message.string for message in catalog if message.id}


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


ENGLISH_MESSAGES = _messages(ENGLISH.babel)


def test_english_catalogue_is_not_empty():
    assert len(ENGLISH_MESSAGES) > 30
    assert all(ENGLISH_MESSAGES.values())


@pytest.mark.parametrize("language", LANGUAGES[1:], ids=lambda lang: lang.tag)
def test_every_message_is_translated(language):
    messages = _messages(language.babel)
    missing = sorted(set(ENGLISH_MESSAGES) - set(messages))
    empty = sorted(msgid for msgid, text in messages.items() if not text.strip())
    extra = sorted(set(messages) - set(ENGLISH_MESSAGES))
    assert (missing, empty, extra) == ([], [], [])


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda lang: lang.tag)
def test_placeholders_match_english(language):
    messages = _messages(language.babel)
    differing = {
        msgid: (sorted(_placeholders(text)), sorted(_placeholders(ENGLISH_MESSAGES[msgid])))
        for msgid, text in messages.items()
        if msgid in ENGLISH_MESSAGES
        and _placeholders(text) != _placeholders(ENGLISH_MESSAGES[msgid])
    }
    assert differing == {}


@pytest.mark.parametrize("language", LANGUAGES[1:], ids=lambda lang: lang.tag)
def test_translations_differ_from_english(language):
    # Catches a catalogue copied from English and never translated.
    messages = _messages(language.babel)
    same = [
        m
        for m in ("help.text", "welcome.text", "error.generic")
        if messages[m] == ENGLISH_MESSAGES[m]
    ]
    assert same == []


def test_command_words_never_mean_two_commands():
    localizer = Localizer.from_directory()
    meaning: dict[str, set[str]] = {}
    for translator in localizer.all():
        for command in Command:
            for word in translator.gettext(f"command.{command.value}").split("|"):
                meaning.setdefault(normalize(word), set()).add(command.value)
    assert {word: sorted(c) for word, c in meaning.items() if len(c) > 1} == {}
    assert "" not in meaning


def test_every_language_understands_its_own_bold_command_words():
    # Help texts quote commands in **bold**; each must parse as a command.
    localizer = Localizer.from_directory()
    parser = CommandParser.from_localizer(localizer)
    for translator in localizer.all():
        quoted = re.findall(r"\*\*(.+?)\*\*", translator.gettext("help.text"))
        assert len(quoted) >= 8, translator.tag
        not_understood = [word for word in quoted if parser.parse(word) is None]
        assert not_understood == [], translator.tag


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("pt-BR", "pt-BR"),
        ("pt-PT", "pt-BR"),
        ("es-MX", "es-ES"),
        ("zh-TW", "zh-CN"),
        ("ru", "ru-RU"),
        ("fr-CA", "fr-FR"),
        ("de-DE", "en-US"),
        ("", "en-US"),
        (None, "en-US"),
        ("en-GB", "en-US"),
        ("pt_BR", "pt-BR"),
    ],
)
def test_locale_fallback(requested, expected):
    assert resolve_language(requested).tag == expected


def test_money_and_dates_follow_the_locale():
    from datetime import date
    from decimal import Decimal

    localizer = Localizer.from_directory()
    amount = Decimal("1234.50")
    assert localizer.translator("en-US").money(amount, "USD") == "$1,234.50"
    assert localizer.translator("pt-BR").money(amount, "BRL") == "R$\xa01.234,50"
    assert localizer.translator("fr-FR").money(amount, "EUR") == "1\u202f234,50\xa0€"
    assert localizer.translator("ru-RU").date(date(2027, 11, 23)) == "23 нояб. 2027 г."
    assert localizer.translator("zh-CN").date(date(2027, 11, 23)) == "2027年11月23日"
