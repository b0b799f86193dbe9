"""The product's six languages: message catalogues (`<locale>/LC_MESSAGES/messages.po`) and the
code that reads them and formats numbers, money and dates for each locale."""

from locales.catalogues import LOCALES_DIR, Localizer, catalogue_path
from locales.languages import DEFAULT_LANGUAGE, LANGUAGES, Language, resolve_language
from locales.translator import Translator

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LOCALES_DIR",
    "Language",
    "Localizer",
    "Translator",
    "catalogue_path",
    "resolve_language",
]
