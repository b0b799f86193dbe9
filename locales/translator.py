"""Messages and locale-aware formatting for one language: what every card and reply uses."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from babel import Locale
from babel.dates import format_date, format_datetime, format_interval
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from credits.money import Money
from locales.languages import Language


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

    def date_range(self, first: date, last: date, *, with_year: bool = False) -> str:
        """A period of days as the language writes it ("Nov 1 – 3"; one day: "Nov 1")."""
        skeleton = "yMMMd" if with_year else "MMMd"
        return format_interval(first, last, skeleton, locale=self._locale)

    def datetime(self, value: datetime) -> str:
        return format_datetime(value, format="medium", locale=self._locale)
