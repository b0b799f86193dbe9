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
    HISTORY = "history"
    UPDATE_PAYMENT_METHOD = "update_payment_method"
    LANGUAGE = "language"
    CANCEL = "cancel"


# Commands are a few words ("add funds 1,250.50", "language português"): a longer message is
# not a command and is not parsed. Bounds the work a message costs before anything else looks
# at it (normalising can make a text much longer: U+2A0C becomes four characters).
MAX_COMMAND_CHARS = 200

# Every pattern below sees user text: each is linear in its length (one character class per
# quantifier, fixed-width lookarounds), as tests/dialogs/test_regex_linearity.py checks.
_SEPARATORS = re.compile(r"[\s_/]+")
# A hyphen joins words ("auto-recharge") only between letters; "-500" keeps its sign.
_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")
# Punctuation before a message ("«status"), but never the sign of a leading number. Matched
# at the start only.
_LEADING_PUNCTUATION = re.compile(r"(?:(?![-+\u2212]\d)[\W_])+")
# Punctuation after it ("help!"). The lookbehind starts a match only where a run of
# punctuation starts, and the possessive run never gives characters back: each run inside a
# message is scanned once, not once per character (a search for "[\W_]+$" is quadratic).
_TRAILING_PUNCTUATION = re.compile(r"(?<![\W_])[\W_]++\Z")
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
    leading = _LEADING_PUNCTUATION.match(folded)
    start = leading.end() if leading else 0
    trailing = _TRAILING_PUNCTUATION.search(folded, start)
    end = trailing.start() if trailing else len(folded)
    # A message of punctuation alone ("?") is kept as it is: it may be a command itself.
    return folded[start:end].strip() or folded


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
        helps = [word for word, command in synonyms.items() if command == Command.HELP]
        # The longest help word, with room for spaces and punctuation around it ("HELP!").
        self._help_chars = max(map(len, helps), default=0) + 8

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
        if not text or len(text) > MAX_COMMAND_CHARS:
            return None
        message = normalize(text)
        if not message or len(message) > MAX_COMMAND_CHARS:
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

    def asks_for_help(self, text: str | None) -> bool:
        """Whether a message is `help` and nothing else: what anybody may ask.

        Only a message as short as a help word (and some punctuation) is looked at, so a
        message from somebody who may do nothing else costs next to no work.
        """
        if not text or len(text) > self._help_chars:
            return False
        parsed = self.parse(text)
        return parsed is not None and parsed.command == Command.HELP and not parsed.argument

    def words(self) -> dict[str, Command]:
        return dict(self._synonyms)
