"""How a turn answers: in place of the card that was pressed, or with a new message.

Every button of the bot's cards is a Universal Action (`Action.Execute`, card version 1.5):
Teams sends its press as an `adaptiveCard/action` invoke and shows the card the bot answers with
in place of the pressed one. Clients without Universal Actions use each button's
`Action.Submit` fallback, which arrives as a message with the same data, as before. The flows
do not tell the two apart: they `show` cards and `say` texts, and this module decides.

In a turn that answers a press (`begin_press`):

- the first card a flow shows, or the first text it says, answers the press: the pressed card
  changes into it, for the presser at once (the invoke's answer). A flow's last word (`final`:
  a receipt, saved settings, "cancelled") is also written over the card's message for
  everyone in the conversation (`update_activity`), so no one can press its buttons again;
- whatever the flow shows or says after that is posted as new messages;
- a `note` (use the form, access refused) answers beside the card and leaves it as it was;
- a press on a notice (a welcome, an alert, a status card: verb `open`) leaves the notice as
  it is, and what the button starts is posted below it.

In a message turn (typed text, or a fallback submit) cards and texts are posted as messages,
and a flow's last word replaces the submitted card when the channel says which it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.schema import Activity, ActivityTypes, AdaptiveCardInvokeResponse, Attachment

logger = logging.getLogger(__name__)

PRESS_KEY = "ccbot.card_press"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"
ERROR = "application/vnd.microsoft.error"


class TextAnswer(AdaptiveCardInvokeResponse):
    """An answer whose value is a text (botbuilder's model types `value` as an object, which
    a text cannot be serialised as)."""

    _attribute_map = {
        **AdaptiveCardInvokeResponse._attribute_map,
        "value": {"key": "value", "type": "str"},
    }


class Verb(StrEnum):
    """The `verb` of every `Action.Execute` the bot's cards carry: where its answer goes."""

    FORM = "form"
    """A press inside a flow's own card (its data names the form and nonce): answered in
    place."""
    COMMAND = "command"
    """A command button on a card that is only a way in (the menu, the language chooser, a
    form's Cancel): what it starts replaces the card."""
    OPEN = "open"
    """A command button on a notice (welcome, alert, status, usage, history, a failed
    payment): the notice stays, what it starts is posted below."""
    REFRESH = "refresh"
    """A card asking to be brought up to date (its `refresh`): answered with the card as it
    is now."""


@dataclass
class Press:
    """An `Action.Execute` press being answered: what answers it, once the turn is done."""

    verb: str
    card_id: str
    """The pressed card's message (the invoke's `replyToId`); "" when the client did not say."""
    text_card: Callable[[str], Attachment]
    """A read-only card that says one text (a text's answer in place of a card)."""
    card: dict[str, Any] | None = None
    note: str | None = None
    posted: list[str] = field(default_factory=list)
    """Ids of the messages posted while answering."""

    @property
    def in_place(self) -> bool:
        return self.verb != Verb.OPEN

    @property
    def answered(self) -> bool:
        return self.card is not None or self.note is not None


def begin_press(
    turn_context: TurnContext, verb: str, text_card: Callable[[str], Attachment]
) -> Press:
    """Mark this turn as the answer to a press on a card (an `adaptiveCard/action` invoke)."""
    press = Press(
        verb=verb if verb in Verb.__members__.values() else Verb.FORM,
        card_id=turn_context.activity.reply_to_id or "",
        text_card=text_card,
    )
    turn_context.turn_state[PRESS_KEY] = press
    return press


def press_of(turn_context: TurnContext) -> Press | None:
    """The press this turn answers, or None for a message turn."""
    return turn_context.turn_state.get(PRESS_KEY)


async def show(turn_context: TurnContext, attachment: Attachment, *, final: bool = False) -> str:
    """Show a card; the id of the message that shows it ("" when the channel did not say).

    `final`: the flow's last word on the card that was pressed (a read-only summary), written
    over that card for everyone.
    """
    press = press_of(turn_context)
    if press is not None and press.in_place and not press.answered:
        press.card = attachment.content
        if final:
            await _overwrite(turn_context, press.card_id, attachment)
        return press.card_id
    if press is None and final and turn_context.activity.reply_to_id:
        # A fallback submit: the result takes the submitted card's place, if the channel lets.
        if await _overwrite(turn_context, turn_context.activity.reply_to_id, attachment):
            return turn_context.activity.reply_to_id
    return await _post(turn_context, MessageFactory.attachment(attachment))


async def say(turn_context: TurnContext, text: str) -> None:
    """Say a text: in place of a pressed card, the card becomes this text (read-only)."""
    press = press_of(turn_context)
    if press is not None and press.in_place and not press.answered:
        await show(turn_context, press.text_card(text), final=True)
        return
    await _post(turn_context, MessageFactory.text(text))


async def note(turn_context: TurnContext, text: str) -> None:
    """A remark about a press that changes nothing (use the form, access refused): beside the
    pressed card, which stays as it was; a message otherwise."""
    press = press_of(turn_context)
    if press is not None and not press.answered:
        press.note = text
        return
    await _post(turn_context, MessageFactory.text(text))


def answer_of(press: Press, opened: str) -> AdaptiveCardInvokeResponse:
    """The invoke's answer: the card that replaces the pressed one, or a text beside it
    (`opened` when the press only posted messages below a notice)."""
    if press.card is not None:
        return AdaptiveCardInvokeResponse(status_code=200, type=ADAPTIVE_CARD, value=press.card)
    text = press.note if press.note is not None else (opened if press.posted else "")
    return TextAnswer(status_code=200, type=MESSAGE, value=text)


def error_answer(message: str) -> AdaptiveCardInvokeResponse:
    """An invoke that cannot be answered (malformed, or the turn failed): Teams shows the text."""
    return AdaptiveCardInvokeResponse(
        status_code=400, type=ERROR, value={"code": "BadRequest", "message": message}
    )


async def _post(turn_context: TurnContext, activity: Activity) -> str:
    sent = await turn_context.send_activity(activity)
    activity_id = (sent.id or "") if sent is not None else ""
    press = press_of(turn_context)
    if press is not None:
        press.posted.append(activity_id)
    return activity_id


async def _overwrite(turn_context: TurnContext, activity_id: str, attachment: Attachment) -> bool:
    """Write a card over a message of the conversation; False when the channel refused."""
    if not activity_id:
        return False
    update = Activity(type=ActivityTypes.message, id=activity_id, attachments=[attachment])
    try:
        await turn_context.update_activity(update)
    except Exception:  # noqa: BLE001 - any refusal by the channel only costs the overwrite
        logger.warning("could not update card %s in place", activity_id)
        return False
    return True
