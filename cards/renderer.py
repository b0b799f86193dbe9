"""Fill Adaptive Card templates with localised text and data.

Templates are Jinja2 files that produce JSON. Every value goes through the `tojson` filter, so
user-supplied text cannot break out of its JSON string; the result is parsed back with
`json.loads`, so a template that renders invalid JSON fails loudly in tests, not in Teams.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botbuilder.core import CardFactory
from botbuilder.schema import Attachment
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from locales import Translator

TEMPLATES_DIR = Path(__file__).resolve().parent
CARD_VERSION = "1.5"
# The main menu's buttons, in the order the welcome and menu cards show them: the values of
# `dialogs.commands.Command` they send (tests/test_cards.py holds the two together).
MENU_COMMANDS: tuple[str, ...] = (
    "status",
    "add_funds",
    "auto_recharge",
    "licences",
    "usage",
    "alerts",
    "history",
    "help",
)


class CardRenderer:
    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        self._env = Environment(
            loader=FileSystemLoader(templates_dir),
            undefined=StrictUndefined,
            autoescape=False,  # JSON, not HTML: values are escaped with |tojson instead.
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            # Templates ship with the code: no stat() of the file on every render.
            auto_reload=False,
        )
        self._env.globals["card_version"] = CARD_VERSION
        self._env.globals["menu_commands"] = list(MENU_COMMANDS)

    def render(self, name: str, t: Translator, **data: Any) -> dict[str, Any]:
        template = self._env.get_template(f"{name}.json.j2")
        return json.loads(template.render(t=t, **data))

    def attachment(self, name: str, t: Translator, **data: Any) -> Attachment:
        return CardFactory.adaptive_card(self.render(name, t, **data))
