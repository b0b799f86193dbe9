"""The Teams edge: turns activities into calls to the dialogs and the conversation store."""

from __future__ import annotations

import logging

from botbuilder.core import (
    ConversationState,
    InvokeResponse,
    MessageFactory,
    TurnContext,
    UserState,
)
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import ActivityTypes, AdaptiveCardInvokeResponse, ChannelAccount
from botbuilder.schema.teams import ChannelInfo, TeamInfo

from cards import CardRenderer
from credits.conversations import Conversations
from dialogs.card_actions import Verb, answer_of, begin_press, error_answer
from dialogs.channels import TeamRoster, place_of, reference_of
from dialogs.language import LanguagePreference
from dialogs.main_dialog import MainDialog
from dialogs.turn import set_translator, tenant_id_of, translator_of
from locales import Localizer

logger = logging.getLogger(__name__)

# Commands are a few words; anything this long is a paste or an attack, and is not parsed.
MAX_TEXT_CHARS = 2000
REFERENCE_FINGERPRINT = "ReferenceFingerprint"
# Conversation updates that rename what the bot shows by name (TeamsActivityHandler's hooks).
RENAMES = frozenset({"channelRenamed", "teamRenamed"})
# The invoke Teams sends for a press on an Action.Execute (Universal Actions).
CARD_ACTION = "adaptiveCard/action"
# Bounds what of a press's verb is read (the bot's verbs are single words).
MAX_VERB_CHARS = 40


class CreditsBot(TeamsActivityHandler):
    def __init__(
        self,
        *,
        conversation_state: ConversationState,
        user_state: UserState,
        localizer: Localizer,
        language: LanguagePreference,
        cards: CardRenderer,
        main_dialog: MainDialog,
        conversations: Conversations,
        roster: TeamRoster,
    ) -> None:
        self._conversation_state = conversation_state
        self._user_state = user_state
        self._localizer = localizer
        self._language = language
        self._cards = cards
        self._main_dialog = main_dialog
        self._conversations = conversations
        self._roster = roster
        self._fingerprint = conversation_state.create_property(REFERENCE_FINGERPRINT)

    async def on_turn(self, turn_context: TurnContext) -> None:
        chosen = await self._language.get(turn_context)
        set_translator(
            turn_context, self._localizer.translator(chosen or turn_context.activity.locale)
        )
        try:
            await super().on_turn(turn_context)
        finally:
            # Saved even when the turn failed half-way, so a half-started flow is not replayed;
            # the error handler clears the conversation state afterwards when it must. User
            # state is saved first: a conflict on the conversation must not lose a language.
            await self._user_state.save_changes(turn_context)
            await self._conversation_state.save_changes(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        t = translator_of(turn_context)
        tenant_id = tenant_id_of(activity)
        if tenant_id is None:
            logger.warning("message without a tenant id, activity %s", activity.id)
            await turn_context.send_activity(t("error.no_tenant"))
            return
        if activity.text and len(activity.text) > MAX_TEXT_CHARS:
            length = len(activity.text)
            await turn_context.send_activity(
                t.ngettext(
                    "error.too_long",
                    length,
                    length=t.number(length),
                    limit=t.number(MAX_TEXT_CHARS),
                )
            )
            return
        if activity.text:
            # In channels Teams prefixes the text with an <at>mention</at> of the bot.
            activity.text = without_bot_mention(activity) or activity.text
        await self._refresh_reference(turn_context, tenant_id)
        await self._main_dialog.on_message(turn_context)
        # Once more: the turn may have changed the language, which alerts must follow.
        await self._refresh_reference(turn_context, tenant_id)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        if turn_context.activity.name != CARD_ACTION:
            return await super().on_invoke_activity(turn_context)
        # Read here rather than by botbuilder's `on_adaptive_card_invoke`, whose parsing fails
        # the turn on an `action` that is not an object.
        value = turn_context.activity.value
        action = value.get("action") if isinstance(value, dict) else None
        if not isinstance(action, dict) or action.get("type") != "Action.Execute":
            logger.warning("card action invoke without an Action.Execute")
            return _invoke_response(error_answer("not an Action.Execute"))
        verb = action.get("verb")
        return _invoke_response(
            await self._on_card_action(
                turn_context,
                verb[:MAX_VERB_CHARS] if isinstance(verb, str) else "",
                action.get("data"),
            )
        )

    async def _on_card_action(self, turn_context: TurnContext, verb: str, data: object):
        """A press on one of the bot's cards (or its refresh): run as the message its
        Action.Submit fallback would have sent (the same data), and answer with what the turn
        showed (dialogs/card_actions.py)."""
        activity = turn_context.activity
        t = translator_of(turn_context)
        press = begin_press(
            turn_context, verb, lambda text: self._cards.attachment("text", t, text=text)
        )
        tenant_id = tenant_id_of(activity)
        if tenant_id is None:
            logger.warning("card action without a tenant id, activity %s", activity.id)
            press.note = t("error.no_tenant")
            return answer_of(press, "")
        await self._refresh_reference(turn_context, tenant_id)
        # Teams puts the action's data, with the card's inputs, under value.action.data: the
        # flows read it as the message of the Action.Submit fallback, which is what they (and
        # botbuilder's waterfall dialogs, which go on only on messages) know. The adapter reads
        # the type again to answer the invoke, so it is put back.
        activity.type, activity.text = ActivityTypes.message, None
        activity.value = data if isinstance(data, dict) else {}
        try:
            if press.verb == Verb.REFRESH:
                await self._main_dialog.on_refresh(turn_context)
            else:
                await self._main_dialog.on_message(turn_context)
                # The turn may have changed the language, which alerts must follow.
                await self._refresh_reference(turn_context, tenant_id)
        finally:
            activity.type = ActivityTypes.invoke
        # The answer speaks the language the turn ended in (a language chosen on the card).
        return answer_of(press, translator_of(turn_context)("card.opened_below"))

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        # Handled here rather than in on_teams_members_added, which looks every added user up
        # through the connector: one round trip per member that this bot does not need.
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if any(member.id == bot_id for member in activity.members_added or []):
            await self._installed(turn_context)
        elif any(member.id == bot_id for member in activity.members_removed or []):
            await self._uninstalled(turn_context)
        elif _event_type(activity) in RENAMES:
            # TeamsActivityHandler reads the renamed team or channel and calls the hooks below.
            await super().on_conversation_update_activity(turn_context)

    async def on_teams_channel_renamed(
        self, channel_info: ChannelInfo, team_info: TeamInfo, turn_context: TurnContext
    ) -> None:
        await self._renamed(turn_context, team_info, channel_info)

    async def on_teams_team_renamed(self, team_info: TeamInfo, turn_context: TurnContext) -> None:
        await self._renamed(turn_context, team_info, None)

    async def _renamed(
        self, turn_context: TurnContext, team: TeamInfo | None, channel: ChannelInfo | None
    ) -> None:
        """A team or channel got a new name: the event says which; the roster says the rest
        (a rename while the bot was away, a team renamed with the channel event)."""
        tenant_id = tenant_id_of(turn_context.activity)
        team_id = getattr(team, "id", None) or ""
        if tenant_id is None or not team_id:
            return
        channel_id, channel_name = getattr(channel, "id", None), getattr(channel, "name", None)
        await self._conversations.set_names(
            tenant_id,
            team_id,
            getattr(team, "name", None) or "",
            {channel_id: channel_name} if channel_id and channel_name else {},
        )
        await self._roster.refresh(turn_context, tenant_id, team_id)
        logger.info("names of team %s refreshed after a rename, tenant %s", team_id, tenant_id)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._installed(turn_context)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        await self._uninstalled(turn_context)

    async def _installed(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        tenant_id = tenant_id_of(activity)
        if tenant_id is None:
            logger.warning("installation without a tenant id, activity %s", activity.id)
            return
        place = place_of(activity)
        is_new = await self._conversations.upsert(
            tenant_id=tenant_id,
            conversation_id=place.conversation_id,
            reference=reference_of(activity, place),
            kind=place.kind,
            locale=activity.locale or "",
            user_aad_object_id=_aad_object_id(activity.from_property),
            team_id=place.team_id,
            team_name=place.team_name,
            channel_name=place.channel_name,
        )
        await self._fingerprint.set(turn_context, _fingerprint(activity))
        logger.info("installed in %s conversation, tenant %s", place.kind, tenant_id)
        if is_new and place.team_id:
            # Added to a team (Teams announces it twice: read the roster once).
            await self._roster.refresh(turn_context, tenant_id, place.team_id)
        if is_new:
            t = translator_of(turn_context)
            channel = place.kind == "channel"
            await turn_context.send_activity(
                MessageFactory.attachment(self._cards.attachment("welcome", t, channel=channel))
            )

    async def _uninstalled(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        tenant_id = tenant_id_of(activity)
        if tenant_id is None:
            return
        await self._conversations.deactivate(tenant_id, place_of(activity).conversation_id)
        logger.info("uninstalled from conversation, tenant %s", tenant_id)

    async def _refresh_reference(self, turn_context: TurnContext, tenant_id: str) -> None:
        """Keep the stored reference current (Teams can move a conversation's service URL).

        The fingerprint lives in conversation state, which the turn reads anyway, so an
        unchanged reference costs no storage round trip.
        """
        activity = turn_context.activity
        place = place_of(activity)
        kind = place.kind
        locale = activity.locale or ""
        if kind == "personal":
            # Alerts to a person speak the language they chose with `language`, if any.
            locale = await self._language.get(turn_context) or locale
        fingerprint = f"{activity.service_url}|{locale}"
        if await self._fingerprint.get(turn_context, lambda: None) == fingerprint:
            return
        await self._conversations.upsert(
            tenant_id=tenant_id,
            conversation_id=place.conversation_id,
            reference=reference_of(activity, place),
            kind=kind,
            locale=locale,
            user_aad_object_id=_aad_object_id(activity.from_property),
            team_id=place.team_id,
            team_name=place.team_name,
            channel_name=place.channel_name,
        )
        await self._fingerprint.set(turn_context, fingerprint)


def _invoke_response(answer: AdaptiveCardInvokeResponse) -> InvokeResponse:
    """The HTTP answer to an invoke: 200, with the Universal Actions answer as its body (the
    adapter serialises the model; botbuilder's `_create_invoke_response` would serialise it
    twice)."""
    return InvokeResponse(status=200, body=answer)


def without_bot_mention(activity) -> str:
    """The text without the `<at>Bot</at>` of each mention entity that names this bot.

    botbuilder's `TurnContext.remove_recipient_mention` does the same with a regex that is
    quadratic in the mention's length (32,000 characters took 15 s of the event loop) and
    fails on a mention entity without `mentioned`; this is plain replacement of the text
    Teams says it inserted.
    """
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    for entity in activity.entities or []:
        extra = entity.additional_properties or {}
        mentioned, inserted = extra.get("mentioned"), extra.get("text")
        if (
            isinstance(entity.type, str)
            and entity.type.lower() == "mention"
            and isinstance(mentioned, dict)
            and bot_id is not None
            and mentioned.get("id") == bot_id
            and isinstance(inserted, str)
            and inserted
        ):
            text = text.replace(inserted, "")
    return text


def _fingerprint(activity) -> str:
    return f"{activity.service_url}|{activity.locale or ''}"


def _event_type(activity) -> str:
    data = activity.channel_data
    return str(data.get("eventType") or "") if isinstance(data, dict) else ""


def _aad_object_id(account: ChannelAccount | None) -> str:
    return (account.aad_object_id or "") if account is not None else ""
