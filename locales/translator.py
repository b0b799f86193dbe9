"""Messages and locale-aware formatting for one language: what every card and reply uses."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from babel import Locale
from babel.dates import (
    format_date,
    format_datetime,
    format_interval,
    format_skeleton,
    format_time,
)
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from credits.money import Money
from locales.card_brands import brand_name
from locales.languages import Language


class Translator:
    """Messages and formatting for one language."""

    def __init__(
        self,
        language: Language,
        translations: Translations,
        plurals: frozenset[str] = frozenset(),
    ) -> None:
        self.language = language
        self._translations = translations
        # Ids of the messages that have plural forms: they are read with `ngettext` only.
        self._plurals = plurals
        self._locale = Locale.parse(language.babel)

    @property
    def tag(self) -> str:
        return self.language.tag

    def gettext(self, msgid: str, **values: object) -> str:
        if msgid in self._plurals:
            # Its first form would read "1 users" for any count: a mistake in the caller.
            raise ValueError(f"{msgid} has plural forms: read it with ngettext")
        text = self._translations.gettext(msgid)
        return text.format(**values) if values else text

    __call__ = gettext

    def ngettext(self, msgid: str, n: int, **values: object) -> str:
        """The form of a counted message for `n`, by the catalogue's `Plural-Forms` (Russian
        has three forms, Chinese one). The message ids are symbolic, so the singular and the
        plural id are the same; `n` only chooses the form, the caller formats the number."""
        text = self._translations.ngettext(msgid, msgid, n)
        return text.format(**values) if values else text

    def card_brand(self, brand: str) -> str:
        """A card network as its owner writes it ("Visa", not "visa"), or "Card" when unknown."""
        return brand_name(brand) or self.gettext("add_funds.card_brand_unknown")

    def money(self, amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency, locale=self._locale)

    def minor_money(self, minor: int, currency: str) -> str:
        """An amount kept in minor units (as the ledger keeps money), formatted."""
        return self.money(Money(minor, currency).to_decimal(), currency)

    def number(self, value: Decimal | int) -> str:
        return format_decimal(value, locale=self._locale)

    def date(self, value: date | datetime) -> str:
        return format_date(value, format="medium", locale=self._locale)

    def day_label(self, value: date, *, with_month: bool = False) -> str:
        """A day as short as the locale writes it: "23" ("23日"), or "Nov 1" with its month."""
        return format_skeleton("MMMd" if with_month else "d", value, locale=self._locale)

    def date_range(self, first: date, last: date, *, with_year: bool = False) -> str:
        """A period of days as the language writes it ("Nov 1 – 3"; one day: "Nov 1")."""
        skeleton = "yMMMd" if with_year else "MMMd"
        return format_interval(first, last, skeleton, locale=self._locale)

    def month(self, value: date) -> str:
        """A month and its year as the language writes them ("November 2026")."""
        return format_skeleton("yMMMM", value, locale=self._locale)

    def time(self, value: datetime) -> str:
        """A time of day, short ("2:45 PM", "14:45"), in UTC."""
        return format_time(value, format="short", locale=self._locale)

    def datetime(self, value: datetime) -> str:
        return format_datetime(value, format="medium", locale=self._locale)
