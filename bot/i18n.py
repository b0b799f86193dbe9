"""Message catalogues (gettext .po files read with Babel) and locale-aware formatting.

Catalogues live in `locales/<babel locale>/LC_MESSAGES/messages.po`. Message ids are symbolic
(`help.text`), so English is a catalogue like the others and a test can prove that every id
exists, non-empty, in every language with the same placeholders. The .po files are compiled in
memory at start: nothing generated is kept on disk.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from credits.money import Money

logger = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


@dataclass(frozen=True)
class Language:
    tag: str
    """BCP 47 tag as Teams sends it (`pt-BR`)."""
    babel: str
    """Babel / gettext locale id, the catalogue's folder name (`pt_BR`)."""
    native_name: str
    """The name a speaker recognises, shown in the language chooser."""


LANGUAGES: tuple[Language, ...] = (
    Language("en-US", "en", "English"),
    Language("pt-BR", "pt_BR", "Português (Brasil)"),
    Language("es-ES", "es", "Español"),
    Language("zh-CN", "zh_CN", "简体中文"),
    Language("ru-RU", "ru", "Русский"),
    Language("fr-FR", "fr", "Français"),
)
DEFAULT_LANGUAGE = LANGUAGES[0]
_BY_BABEL = {lang.babel: lang for lang in LANGUAGES}


def resolve_language(requested: str | None) -> Language:
    """Pick a supported language for a client locale: exact, then by language, then English.

    `pt-PT` gets Brazilian Portuguese and `es-MX` Spanish: a speaker reads them far better than
    English. Any Chinese gets Simplified Chinese, the only Chinese catalogue.
    """
    if not requested:
        return DEFAULT_LANGUAGE
    cleaned = requested.strip().replace("_", "-")
    lowered = cleaned.lower()
    for lang in LANGUAGES:
        if lowered in (lang.tag.lower(), lang.babel.lower().replace("_", "-")):
            return lang
    primary = lowered.split("-", 1)[0]
    for lang in LANGUAGES:
        if lang.babel.split("_", 1)[0].lower() == primary:
            return lang
    return DEFAULT_LANGUAGE


class Translator:
    """Messages and formatting for one language."""

    def __init__(self, language: Language, translations: Translations) -> None:
        self.language = language
        self._translations = translations
        self._locale = Locale.parse(language.babel)

    @property
    def tag(self) -> str:
        return self.language.tag

    def gettext(self, msgid: str, **values: object) -> str:
        text = self._translations.gettext(msgid)
        return text.format(**values) if values else text

    __call__ = gettext

    def money(self, amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency, locale=self._locale)

    def minor_money(self, minor: int, currency: str) -> str:
        """An amount kept in minor units (as the ledger keeps money), formatted."""
        return self.money(Money(minor, currency).to_decimal(), currency)

    def number(self, value: Decimal | int) -> str:
        return format_decimal(value, locale=self._locale)

    def date(self, value: date | datetime) -> str:
        return format_date(value, format="medium", locale=self._locale)

    def datetime(self, value: datetime) -> str:
        return format_datetime(value, format="medium", locale=self._locale)


class Localizer:
    """All catalogues, loaded once at start."""

    def __init__(self, catalogues: dict[str, Translations]) -> None:
        self._catalogues = catalogues
        self._translators = {
            lang.babel: Translator(lang, catalogues[lang.babel]) for lang in LANGUAGES
        }

    @classmethod
    def from_directory(cls, path: Path = LOCALES_DIR) -> Localizer:
        english = _load(path, DEFAULT_LANGUAGE.babel)
        catalogues = {DEFAULT_LANGUAGE.babel: english}
        for lang in LANGUAGES[1:]:
            translations = _load(path, lang.babel)
            # A message missing from a translation shows in English rather than as its id;
            # the catalogue test makes sure this never ships.
            translations.add_fallback(english)
            catalogues[lang.babel] = translations
        return cls(catalogues)

    def translator(self, requested: str | None) -> Translator:
        return self._translators[resolve_language(requested).babel]

    def all(self) -> list[Translator]:
        return [self._translators[lang.babel] for lang in LANGUAGES]


def catalogue_path(directory: Path, babel_id: str) -> Path:
    return directory / babel_id / "LC_MESSAGES" / "messages.po"


def _load(directory: Path, babel_id: str) -> Translations:
    po_path = catalogue_path(directory, babel_id)
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=babel_id)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)
