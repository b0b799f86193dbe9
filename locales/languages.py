"""The six languages of the product, and how a client's locale picks one."""

from __future__ import annotations

from dataclasses import dataclass


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
