"""Text commands: exact words and their synonyms in every language, never substrings.

Each command's words come from the catalogues (`command.<id>`, synonyms separated by `|`), so
translators own them next to the rest of the language. A message is a command when its leading
words are exactly one of the synonyms, in any of the six languages (an admin with an English
Teams client may still type Portuguese); the words after it are the command's argument
("add funds 500").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from locales import Localizer


class Command(StrEnum):
    MENU = "menu"
    HELP = "help"
    STATUS = "status"
    ADD_FUNDS = "add_funds"
    AUTO_RECHARGE = "auto_recharge"
    LICENCES = "licences"
    USAGE = "usage"
    ALERTS = "alerts"
    ALERTS_HERE = "alerts_here"
    STOP_ALERTS_HERE = "stop_alerts_here"
    ALERT_HISTORY = "alert_history"
    UPDATE_PAYMENT_METHOD = "update_payment_method"
    LANGUAGE = "language"
    CANCEL = "cancel"


_SEPARATORS = re.compile(r"[\s_/]+")
# A hyphen joins words ("auto-recharge") only between letters; "-500" keeps its sign.
_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")
# Punctuation around a message ("help!", "«status»"), but never the sign of a leading number.
_EDGE_PUNCTUATION = re.compile(r"^(?:(?![-+\u2212]\d)[\W_])+|[\W_]+$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def normalize(text: str) -> str:
    """Fold a message for matching: case, accents, hyphens, spacing, edge punctuation.

    "Auto-Recharge!", "auto recharge" and "AUTO_RECHARGE" are the same words; so are
    "Licenças" and "licencas". Letters inside words are never dropped.
    """
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    folded = unicodedata.normalize("NFKC", folded)
    folded = _WORD_HYPHEN.sub(" ", folded)
    folded = _SEPARATORS.sub(" ", folded).strip()
    # A message of punctuation alone ("?") is kept as it is: it may be a command itself.
    return _EDGE_PUNCTUATION.sub("", folded).strip() or folded


@dataclass(frozen=True)
class ParsedCommand:
    command: Command
    argument: str
    """What followed the command words, folded like the words ("500" in "Add funds 500")."""


class CommandParser:
    def __init__(self, synonyms: dict[str, Command]) -> None:
        self._synonyms = synonyms
        # Longest first, so "add funds" wins over a shorter synonym that is its prefix.
        self._ordered = sorted(synonyms, key=len, reverse=True)

    @classmethod
    def from_localizer(cls, localizer: Localizer) -> CommandParser:
        synonyms: dict[str, Command] = {}
        for translator in localizer.all():
            for command in Command:
                for word in translator.gettext(f"command.{command.value}").split("|"):
                    key = normalize(word)
                    if key:
                        synonyms.setdefault(key, command)
        return cls(synonyms)

    def parse(self, text: str | None) -> ParsedCommand | None:
        if not text:
            return None
        message = normalize(text)
        if not message:
            return None
        for synonym in self._ordered:
            if message == synonym:
                return ParsedCommand(self._synonyms[synonym], "")
            if message.startswith(synonym):
                rest = message[len(synonym) :]
                # A word boundary must follow, except after Chinese, which has no spaces
                # ("充值500" is "充值" + "500").
                if rest.startswith(" ") or (_CJK.search(synonym[-1]) and rest[:1].isdigit()):
                    return ParsedCommand(self._synonyms[synonym], rest.strip())
        return None

    def words(self) -> dict[str, Command]:
        return dict(self._synonyms)
