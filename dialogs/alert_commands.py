"""One-turn alert commands: "alerts here", "stop alerts here" and "alert history".

A channel subscribes by an admin typing "alerts here" in it; every alert then goes there too,
in the channel's locale. History shows the latest alerts and what became of each message.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from botbuilder.core import MessageFactory, TurnContext

from cards import CardRenderer
from credits.alerts import AlertStore, Delivery, DeliveryState
from credits.conversations import Conversations
from dialogs.commands import Command, ParsedCommand
from dialogs.forms import actor_of
from dialogs.turn import conversation_kind, tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

# Deliveries read for the history card: a few recipients for each of the last alerts.
HISTORY_ROWS = 40
HISTORY_EVENTS = 10


class AlertsHere:
    """Subscribes or unsubscribes the channel the command was typed in."""

    def __init__(self, conversations: Conversations) -> None:
        self._conversations = conversations

    async def __call__(self, turn_context: TurnContext, parsed: ParsedCommand) -> None:
        t = translator_of(turn_context)
        activity = turn_context.activity
        tenant_id = tenant_id_of(activity) or ""
        kind = conversation_kind(activity)
        if kind == "personal":
            await turn_context.send_activity(t("alerts_here.personal"))
            return
        subscribe = parsed.command == Command.ALERTS_HERE
        stored = await self._conversations.get(tenant_id, activity.conversation.id)
        if stored is None or not stored.active:
            # Added before references were kept, or reinstalled: store it now.
            await self._conversations.upsert(
                tenant_id=tenant_id,
                conversation_id=activity.conversation.id,
                reference=TurnContext.get_conversation_reference(activity).serialize(),
                kind=kind,
                locale=activity.locale or "",
            )
        elif stored.subscribed == subscribe:
            await turn_context.send_activity(
                t("alerts_here.already" if subscribe else "alerts_here.not_subscribed")
            )
            return
        await self._conversations.set_subscribed(
            tenant_id, activity.conversation.id, subscribe, actor_of(turn_context)
        )
        logger.info(
            "channel %s of tenant %s %s alerts",
            activity.conversation.id,
            tenant_id,
            "subscribed to" if subscribe else "unsubscribed from",
        )
        await turn_context.send_activity(
            MessageFactory.text(
                t("alerts_here.subscribed" if subscribe else "alerts_here.unsubscribed")
            )
        )


class AlertHistory:
    def __init__(self, store: AlertStore, cards: CardRenderer) -> None:
        self._store = store
        self._cards = cards

    async def __call__(self, turn_context: TurnContext, _parsed: ParsedCommand) -> None:
        t = translator_of(turn_context)
        tenant_id = tenant_id_of(turn_context.activity) or ""
        deliveries = await self._store.recent(tenant_id, HISTORY_ROWS)
        await turn_context.send_activity(
            MessageFactory.attachment(
                self._cards.attachment("alert_history", t, alerts=history_of(t, deliveries))
            )
        )


def history_of(t: Translator, deliveries: list[Delivery]) -> list[dict[str, object]]:
    """Deliveries grouped by alert, newest alert first, each recipient with its state."""
    events: OrderedDict[str, dict[str, object]] = OrderedDict()
    for delivery in deliveries:
        if delivery.event_id not in events:
            if len(events) >= HISTORY_EVENTS:
                continue
            events[delivery.event_id] = {
                "title": t(f"alert.{delivery.kind.value}.title"),
                "when": t.datetime(delivery.event_at),
                "recipients": [],
            }
        events[delivery.event_id]["recipients"].append(  # type: ignore[union-attr]
            {
                "title": _recipient(t, delivery),
                "value": _state(t, delivery),
                "failed": delivery.state in (DeliveryState.DEAD, DeliveryState.GONE),
            }
        )
    return list(events.values())


def _recipient(t: Translator, delivery: Delivery) -> str:
    kind = (
        delivery.conversation_kind
        if delivery.conversation_kind in ("personal", "channel", "groupChat")
        else "channel"
    )
    label = t(f"alert_history.recipient.{kind}")
    return f"{label}: {delivery.recipient}" if delivery.recipient else label


def _state(t: Translator, delivery: Delivery) -> str:
    state = delivery.state
    if state == DeliveryState.PENDING and delivery.attempts > 0:
        return t("alert_history.state.retrying", attempts=t.number(delivery.attempts))
    return t(f"alert_history.state.{state.value}", attempts=t.number(delivery.attempts))
