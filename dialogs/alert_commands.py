"""One-turn alert commands: "alerts here", "stop alerts here" and "alert history".

A channel subscribes by an admin typing "alerts here" in it; every alert then goes there too,
in the channel's locale. History shows the latest alerts and what became of each message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping

from botbuilder.core import TurnContext

from cards import CardRenderer
from credits.alerts import AlertStore, Delivery, DeliveryState
from credits.audit import AuditAction, AuditTrail
from credits.conversations import Conversations
from credits.model import EventKind
from dialogs.card_actions import say, show
from dialogs.channels import TeamRoster, display_name, place_of, reference_of
from dialogs.commands import Command, ParsedCommand
from dialogs.forms import actor_of
from dialogs.turn import tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

# Deliveries read for the history card: a few recipients for each of the last alerts.
HISTORY_ROWS = 40
HISTORY_EVENTS = 10
# Why an alert was not sent, by kind (the balance ones: "the balance had recovered").
SUPERSEDED = {
    EventKind.RECHARGE_FAILED: "alert_history.state.superseded_recharged",
    EventKind.AUTO_RECHARGE_DISABLED: "alert_history.state.superseded_enabled",
    EventKind.FUNDS_EXPIRING: "alert_history.state.superseded_used",
    EventKind.RUNWAY_LOW: "alert_history.state.superseded_runway",
}


class AlertsHere:
    """Subscribes or unsubscribes the channel the command was typed in (in whichever thread:
    the channel is one conversation)."""

    def __init__(self, conversations: Conversations, roster: TeamRoster, audit: AuditTrail) -> None:
        """`audit` hears who sent alerts to which channel, or stopped them."""
        self._conversations = conversations
        self._roster = roster
        self._audit = audit

    async def __call__(self, turn_context: TurnContext, parsed: ParsedCommand) -> None:
        t = translator_of(turn_context)
        activity = turn_context.activity
        tenant_id = tenant_id_of(activity) or ""
        place = place_of(activity)
        subscribe = parsed.command == Command.ALERTS_HERE
        if place.kind == "personal":
            await say(
                turn_context,
                t("alerts_here.personal" if subscribe else "alerts_here.stop_personal"),
            )
            return
        stored = await self._conversations.get(tenant_id, place.conversation_id)
        if stored is None or not stored.active:
            # Added before references were kept, or reinstalled: store it now.
            await self._conversations.upsert(
                tenant_id=tenant_id,
                conversation_id=place.conversation_id,
                reference=reference_of(activity, place),
                kind=place.kind,
                locale=activity.locale or "",
                team_id=place.team_id,
                team_name=place.team_name,
                channel_name=place.channel_name,
            )
        elif stored.subscribed == subscribe:
            await say(
                turn_context,
                t("alerts_here.already" if subscribe else "alerts_here.not_subscribed"),
            )
            return
        await self._conversations.set_subscribed(
            tenant_id, place.conversation_id, subscribe, actor_of(turn_context)
        )
        await self._audit.record(
            tenant_id,
            actor_of(turn_context),
            AuditAction.ALERTS_HERE if subscribe else AuditAction.STOP_ALERTS_HERE,
            {"conversation_id": place.conversation_id},
        )
        if subscribe and place.team_id and not (stored is not None and stored.team_name):
            # A channel message names neither team nor channel: ask the roster, so that the
            # settings and the history show the channel by name.
            await self._roster.refresh(turn_context, tenant_id, place.team_id)
        logger.info(
            "channel %s of tenant %s %s alerts",
            place.conversation_id,
            tenant_id,
            "subscribed to" if subscribe else "unsubscribed from",
        )
        await say(
            turn_context, t("alerts_here.subscribed" if subscribe else "alerts_here.unsubscribed")
        )


class AlertHistory:
    def __init__(
        self, store: AlertStore, conversations: Conversations, cards: CardRenderer
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._cards = cards

    async def __call__(self, turn_context: TurnContext, _parsed: ParsedCommand) -> None:
        t = translator_of(turn_context)
        tenant_id = tenant_id_of(turn_context.activity) or ""
        deliveries = await self._store.recent(tenant_id, HISTORY_ROWS)
        names = await self._names(t, tenant_id, {d.conversation_id for d in deliveries})
        await show(
            turn_context,
            self._cards.attachment("alert_history", t, alerts=history_of(t, deliveries, names)),
        )

    async def _names(self, t: Translator, tenant_id: str, ids: set[str]) -> dict[str, str]:
        """Each recipient's name as it is now (a renamed channel by its new name), read from
        the stored conversations: a handful of recipients, read at once."""
        found = await asyncio.gather(*(self._conversations.get(tenant_id, i) for i in ids))
        return {c.conversation_id: display_name(t, c) for c in found if c is not None}


def history_of(
    t: Translator, deliveries: list[Delivery], names: Mapping[str, str] | None = None
) -> list[dict[str, object]]:
    """Deliveries grouped by alert, newest alert first, each recipient with its state;
    `names` are the recipients' current names by conversation id."""
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
                "title": _recipient(t, delivery, names or {}),
                "value": _state(t, delivery),
                "failed": delivery.state in (DeliveryState.DEAD, DeliveryState.GONE),
            }
        )
    return list(events.values())


def _recipient(t: Translator, delivery: Delivery, names: Mapping[str, str]) -> str:
    kind = (
        delivery.conversation_kind
        if delivery.conversation_kind in ("personal", "channel", "groupChat")
        else "channel"
    )
    label = t(f"alert_history.recipient.{kind}")
    # Never the raw id: the name now, else the one recorded when the alert went out.
    name = names.get(delivery.conversation_id) or delivery.recipient
    return f"{label}: {name}" if name else label


def _state(t: Translator, delivery: Delivery) -> str:
    state = delivery.state
    attempts = delivery.attempts
    if state == DeliveryState.PENDING and attempts > 0:
        return t.ngettext("alert_history.state.retrying", attempts, attempts=t.number(attempts))
    if state == DeliveryState.DEAD:
        return t.ngettext("alert_history.state.dead", attempts, attempts=t.number(attempts))
    if state == DeliveryState.SUPERSEDED:
        return t(SUPERSEDED.get(delivery.kind, "alert_history.state.superseded"))
    return t(f"alert_history.state.{state.value}")
