"""Message catalogues (gettext .po files read with Babel), one translator per language.

Catalogues live in `locales/<babel locale>/LC_MESSAGES/messages.po`. Message ids are symbolic
(`help.text`), so English is a catalogue like the others and a test can prove that every id
exists, non-empty, in every language with the same placeholders. The .po files are compiled in
memory at start: nothing generated is kept on disk.

A message where a count meets a noun has plural forms (`msgid_plural`, `msgstr[0]`, …), as many
as the catalogue's `Plural-Forms` header says (Russian three, Chinese one); Babel compiles them
with the header's rule, and `Translator.ngettext` picks the form.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from locales.languages import DEFAULT_LANGUAGE, LANGUAGES, resolve_language
from locales.translator import Translator

LOCALES_DIR = Path(__file__).resolve().parent


class Localizer:
    """All catalogues, loaded once at start."""

    def __init__(
        self, catalogues: dict[str, Translations], plurals: frozenset[str] = frozenset()
    ) -> None:
        self._catalogues = catalogues
        self._translators = {
            lang.babel: Translator(lang, catalogues[lang.babel], plurals) for lang in LANGUAGES
        }

    @classmethod
    def from_directory(cls, path: Path = LOCALES_DIR) -> Localizer:
        english, plurals = _load(path, DEFAULT_LANGUAGE.babel)
        catalogues = {DEFAULT_LANGUAGE.babel: english}
        for lang in LANGUAGES[1:]:
            translations, _ = _load(path, lang.babel)
            # A message missing from a translation shows in English rather than as its id;
            # the catalogue test makes sure this never ships.
            translations.add_fallback(english)
            catalogues[lang.babel] = translations
        return cls(catalogues, plurals)

    def translator(self, requested: str | None) -> Translator:
        return self._translators[resolve_language(requested).babel]

    def all(self) -> list[Translator]:
        return [self._translators[lang.babel] for lang in LANGUAGES]


def catalogue_path(directory: Path, babel_id: str) -> Path:
    return directory / babel_id / "LC_MESSAGES" / "messages.po"


def _load(directory: Path, babel_id: str) -> tuple[Translations, frozenset[str]]:
    """The compiled catalogue, and the ids of its messages with plural forms."""
    po_path = catalogue_path(directory, babel_id)
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=babel_id)
    plurals = frozenset(message.id[0] for message in catalog if message.pluralizable)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer), plurals
