"""What every card-driven flow shares: reading submits, naming the actor, replacing a card."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.dialogs import Dialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext
from botbuilder.schema import Activity, ActivityTypes, Attachment

from locales import Translator

logger = logging.getLogger(__name__)


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


async def replace_card(turn_context: TurnContext, attachment: Attachment) -> str:
    """Put a result where the submitted card was, so its buttons cannot be pressed again; the
    id of the message that shows it ("" when the channel did not say)."""
    reply_to = turn_context.activity.reply_to_id
    if reply_to:
        update = Activity(type=ActivityTypes.message, id=reply_to, attachments=[attachment])
        try:
            await turn_context.update_activity(update)
            return reply_to
        except Exception:  # noqa: BLE001 - any refusal by the channel falls back to a new message
            logger.warning("could not replace the submitted card; sending the result instead")
    sent = await turn_context.send_activity(MessageFactory.attachment(attachment))
    return (sent.id or "") if sent is not None else ""


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
