"""Adaptive Card validation for tests, through the official `adaptivecards` object model.

`validate_cards` sends a batch of cards to `tests/support/validate_cards.mjs` (one Node process per
batch, since starting Node costs more than validating) and returns each card's errors: the
library's parse and validation events, a declared version newer than 1.5 and a size of 28 KB or
more. An empty list means the card is valid.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "validate_cards.mjs"


class CardValidatorError(RuntimeError):
    """The validator itself could not run (no Node, no node_modules, bad output)."""


def validate_cards(cards: list[dict[str, Any]]) -> list[list[str]]:
    """The errors of each card, in the order given."""
    node = shutil.which("node")
    if node is None:
        raise CardValidatorError("node is not on PATH; the card validator needs Node.js")
    if not (REPO_ROOT / "node_modules" / "adaptivecards").is_dir():
        raise CardValidatorError("npm package adaptivecards is not installed: run `npm ci`")
    completed = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(cards, ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        raise CardValidatorError(
            f"validate_cards.mjs exited {completed.returncode}: {completed.stderr.strip()}"
        )
    results = json.loads(completed.stdout)
    if [r["index"] for r in results] != list(range(len(cards))):
        raise CardValidatorError(f"validate_cards.mjs answered for the wrong cards: {results}")
    return [list(r["errors"]) for r in results]
