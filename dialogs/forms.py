"""What every card-driven flow shares: reading submits, naming the actor, amount errors.

How a flow's cards and texts reach the chat (in place of a pressed card, or as new messages) is
`dialogs/card_actions.py`.
"""

from __future__ import annotations

from typing import Any

from botbuilder.core import TurnContext
from botbuilder.dialogs import Dialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext

from locales import Translator


def is_submit(value: Any, form: str, nonce: str) -> bool:
    """A press on this flow's own card: its form name and the nonce the flow issued."""
    return isinstance(value, dict) and value.get("form") == form and value.get("nonce") == nonce


def text_of(value: Any) -> str:
    """A card input as trimmed text; anything that is not a string (forged data) is empty."""
    return value.strip() if isinstance(value, str) else ""


def actor_of(turn_context: TurnContext) -> str:
    """Who acts: the sender's Entra object id (Teams) or channel id (elsewhere)."""
    sender = turn_context.activity.from_property
    return (sender.aad_object_id or sender.id or "") if sender else ""


def wait_again(step: WaterfallStepContext) -> DialogTurnResult:
    """Wait for the same card again: the next turn runs this step once more.

    A step that returns `end_of_turn` normally hands the next turn to the following step; after
    a stray message (typed text, a stale card) the flow must keep waiting where it is instead.
    """
    step.active_dialog.state[WaterfallDialog.StepIndex] = step.index - 1
    return Dialog.end_of_turn


def amount_error(t: Translator, code: str, *, decimals: int, **limits: str) -> str:
    """The message of an amount problem (`error.<code>`, such as `amount.zero`), given the
    currency's decimal places and the field's formatted limits (`minimum`, `maximum`).

    The decimal places are counted, so that message takes the language's plural form.
    """
    if code == "amount.too_many_decimals":
        return t.ngettext("error.amount.too_many_decimals", decimals, decimals=t.number(decimals))
    return t(f"error.{code}", **limits)
