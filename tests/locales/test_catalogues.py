"""Every message exists, non-empty, in every language, with the same placeholders; a message
that counts something has the plural forms of every language."""

from __future__ import annotations

import json
import re
import string

import pytest
from babel.messages.pofile import read_po

from dialogs.commands import Command, CommandParser, normalize
from locales import LANGUAGES, LOCALES_DIR, Localizer, catalogue_path, resolve_language

ENGLISH = LANGUAGES[0]
# Placeholders that hold a number of things ("{count} users", "{days} days"): a message with
# one of them has plural forms. A count keeps one of these names, so this test sees it.
COUNT_PLACEHOLDERS = frozenset(
    {"count", "total", "days", "users", "attempts", "length", "decimals", "more", "done"}
)
# What a message written without plural forms falls back to: "user(s)", "usuário(s)", "autre(s)".
PARENTHESISED_PLURAL = re.compile(r"\w\((?:s|es|e|x|a|as|os|ns|и|ы|ов|ей)\)")


def _catalog(babel_id: str):
    with catalogue_path(LOCALES_DIR, babel_id).open("rb") as po_file:
        return read_po(po_file, locale=babel_id)


def _messages(babel_id: str) -> dict[str, tuple[str, ...]]:
    """Every message's forms: one for a plain message, each plural form for a counted one."""
    return {
        (message.id[0] if message.pluralizable else message.id): (
            tuple(message.string) if message.pluralizable else (message.string,)
        )
        for message in _catalog(babel_id)
        if message.id
    }


def _plural_ids(babel_id: str) -> set[str]:
    return {message.id[0] for message in _catalog(babel_id) if message.pluralizable}


def _placeholders(forms: tuple[str, ...]) -> set[str]:
    return {name for text in forms for _, name, _, _ in string.Formatter().parse(text) if name}


ENGLISH_MESSAGES = _messages(ENGLISH.babel)
ENGLISH_PLURALS = _plural_ids(ENGLISH.babel)


def test_english_catalogue_is_not_empty():
    assert len(ENGLISH_MESSAGES) > 30
    assert all(all(forms) for forms in ENGLISH_MESSAGES.values())


@pytest.mark.parametrize("language", LANGUAGES[1:], ids=lambda lang: lang.tag)
def test_every_message_is_translated(language):
    messages = _messages(language.babel)
    missing = sorted(set(ENGLISH_MESSAGES) - set(messages))
    empty = sorted(msgid for msgid, forms in messages.items() if not all(f.strip() for f in forms))
    extra = sorted(set(messages) - set(ENGLISH_MESSAGES))
    assert (missing, empty, extra) == ([], [], [])


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda lang: lang.tag)
def test_placeholders_match_english(language):
    messages = _messages(language.babel)
    differing = {
        msgid: sorted(_placeholders((form,)) ^ _placeholders(ENGLISH_MESSAGES[msgid]))
        for msgid, forms in messages.items()
        if msgid in ENGLISH_MESSAGES
        for form in forms
        if _placeholders((form,)) != _placeholders(ENGLISH_MESSAGES[msgid])
    }
    assert differing == {}


# --- plural forms ------------------------------------------------------------------------------


def test_every_message_with_a_count_has_plural_forms():
    counted = {
        msgid
        for msgid, forms in ENGLISH_MESSAGES.items()
        if _placeholders(forms) & COUNT_PLACEHOLDERS
    }
    assert len(counted) >= 10
    assert sorted(counted - ENGLISH_PLURALS) == []


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda lang: lang.tag)
def test_plural_messages_have_every_form_of_the_language(language):
    catalog = _catalog(language.babel)
    expected = {"en": 2, "pt_BR": 2, "es": 2, "zh_CN": 1, "ru": 3, "fr": 2}[language.babel]
    assert catalog.num_plurals == expected
    messages = _messages(language.babel)
    assert _plural_ids(language.babel) == ENGLISH_PLURALS
    wrong = {m: len(messages[m]) for m in ENGLISH_PLURALS if len(messages[m]) != expected}
    assert wrong == {}


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda lang: lang.tag)
def test_no_message_writes_a_plural_in_parentheses(language):
    found = {
        msgid: form
        for msgid, forms in _messages(language.babel).items()
        for form in forms
        if PARENTHESISED_PLURAL.search(form)
    }
    assert found == {}


@pytest.mark.parametrize("n", [1, 2, 5, 21])
def test_russian_picks_its_three_forms_at_1_2_5_21(n):
    """Russian: 1 and 21 take the first form, 2 (2-4) the second, 5 (5-20) the third."""
    russian = Localizer.from_directory().translator("ru-RU")
    form = {1: 0, 2: 1, 5: 2, 21: 0}[n]
    messages = _messages("ru")
    for msgid in sorted(ENGLISH_PLURALS):
        assert russian.ngettext(msgid, n) == messages[msgid][form], msgid
    words = {1: "пользователь", 2: "пользователя", 5: "пользователей", 21: "пользователь"}
    page = russian.ngettext("licences.page", n, page=1, pages=1, total=n)
    assert page == f"Страница 1 из 1 ({n} {words[n]})"
    days = {1: "день", 2: "дня", 5: "дней", 21: "день"}
    assert russian.ngettext("usage.runway_days", n, days=n) == f"{n} {days[n]}"


def test_english_french_and_chinese_forms():
    localizer = Localizer.from_directory()
    english, french, chinese = (localizer.translator(t) for t in ("en-US", "fr-FR", "zh-CN"))
    assert english.ngettext("usage.runway_days", 1, days=1) == "1 day"
    assert english.ngettext("usage.runway_days", 0, days=0) == "0 days"
    # French counts 0 and 1 as singular.
    assert french.ngettext("usage.runway_days", 0, days=0) == "0 jour"
    assert french.ngettext("usage.runway_days", 2, days=2) == "2 jours"
    assert {chinese.ngettext("usage.runway_days", n, days=n) for n in (1, 2)} == {"1 天", "2 天"}


def test_a_counted_message_read_without_its_count_is_refused():
    english = Localizer.from_directory().translator("en-US")
    with pytest.raises(ValueError, match="ngettext"):
        english("licences.page", page=1, pages=1, total=3)


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


def test_help_shows_add_funds_with_an_amount():
    localizer = Localizer.from_directory()
    parser = CommandParser.from_localizer(localizer)
    for translator in localizer.all():
        quoted = re.findall(r"\*\*(.+?)\*\*", translator.gettext("help.text"))
        parsed = [parser.parse(word) for word in quoted]
        assert any(
            p is not None and (p.command, p.argument) == (Command.ADD_FUNDS, "500") for p in parsed
        ), translator.tag


# In a channel Teams delivers only messages that @mention the bot, by the name it shows there.
CHANNEL_TEXTS = (
    "help.text",
    "welcome.channel_text",
    "alerts_here.personal",
    "alerts_here.stop_personal",
    "alerts_here.subscribed",
    "alert_settings.channels_help",
)


def _bot_name(tag: str) -> str:
    manifest = LOCALES_DIR.parent / "manifest"
    if tag == ENGLISH.tag:
        return json.loads((manifest / "manifest.json").read_text("utf-8"))["name"]["short"]
    return json.loads((manifest / f"{tag.lower()}.json").read_text("utf-8"))["name.short"]


@pytest.mark.parametrize("language", LANGUAGES, ids=lambda lang: lang.tag)
def test_channel_commands_say_to_mention_the_bot_by_its_name(language):
    translator = Localizer.from_directory().translator(language.tag)
    mention = "@" + _bot_name(language.tag)
    without = [msgid for msgid in CHANNEL_TEXTS if mention not in translator.gettext(msgid)]
    assert without == []


@pytest.mark.parametrize(
    ("brand", "shown"),
    [
        ("visa", "Visa"),
        ("mastercard", "Mastercard"),
        ("amex", "American Express"),
        ("jcb", "JCB"),
        ("unionpay", "UnionPay"),
        ("Visa", "Visa"),
    ],
)
def test_card_brands_are_written_as_their_networks_write_them(brand, shown):
    for translator in Localizer.from_directory().all():
        assert translator.card_brand(brand) == shown


def test_an_unknown_card_brand_is_a_card_in_each_language():
    localizer = Localizer.from_directory()
    shown = {t.tag: t.card_brand(brand) for t in localizer.all() for brand in ("card", "unknown")}
    assert shown["en-US"] == "Card" and shown["fr-FR"] == "Carte" and shown["ru-RU"] == "Карта"
