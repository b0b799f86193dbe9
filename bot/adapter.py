"""The CloudAdapter with the product's error handling."""

from __future__ import annotations

import logging

from botbuilder.core import ConversationState, InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ActivityTypes

from bot.channel_auth import TeamsAuthentication
from bot.settings import Settings
from bot.signing_keys import SigningKeys
from dialogs.card_actions import MESSAGE, TextAnswer
from dialogs.turn import TRANSLATOR_KEY, tenant_id_of
from locales import Localizer

logger = logging.getLogger(__name__)


class AdapterWithErrorHandler(CloudAdapter):
    """Logs a failed turn, apologises in the user's language and resets the conversation.

    Each recovery step is guarded on its own: failing to apologise (the connector is down)
    must not stop the state from being cleared, or a broken dialog would fail every turn.
    """

    def __init__(
        self,
        settings: Settings,
        conversation_state: ConversationState,
        localizer: Localizer,
        *,
        keys: SigningKeys | None = None,
        lost_races: tuple[type[Exception], ...] = (),
    ) -> None:
        """`keys` are the Bot Framework's signing keys (required with an app id); `lost_races`
        are the state store's errors for a write that another turn of the same conversation
        beat (the store's ETag conflict)."""
        botbuilder = ConfigurationBotFrameworkAuthentication(_BotConfig(settings))
        super().__init__(TeamsAuthentication(botbuilder, settings.microsoft_app_id, keys))
        self._conversation_state = conversation_state
        self._localizer = localizer
        self._lost_races = lost_races
        self.on_turn_error = self._on_error

    async def _on_error(self, turn_context: TurnContext, error: Exception) -> None:
        activity = turn_context.activity
        if isinstance(error, self._lost_races):
            # Two turns of one conversation ran at once (a double click, a redelivery) and the
            # other saved first. It has answered the user, and its state is the good one:
            # neither an apology nor clearing the state would help.
            logger.warning(
                "concurrent turn lost the state race: tenant=%s activity=%s",
                tenant_id_of(activity),
                activity.id,
            )
            return
        logger.error(
            "turn failed: tenant=%s activity=%s type=%s",
            tenant_id_of(activity),
            activity.id,
            activity.type,
            exc_info=error,
        )
        translator = turn_context.turn_state.get(TRANSLATOR_KEY) or self._localizer.translator(
            activity.locale
        )
        if activity.type == ActivityTypes.message:
            try:
                await turn_context.send_activity(translator.gettext("error.generic"))
            except Exception:  # noqa: BLE001 - any send failure is logged and recovery goes on
                logger.exception("could not tell the user about the failure")
        elif activity.type == ActivityTypes.invoke and activity.name == "adaptiveCard/action":
            # A card press: the apology answers the press, beside the card (nothing posted).
            answer = TextAnswer(
                status_code=200, type=MESSAGE, value=translator.gettext("error.generic")
            )
            await turn_context.send_activity(
                Activity(
                    type=ActivityTypes.invoke_response,
                    value=InvokeResponse(status=200, body=answer),
                )
            )
        try:
            await self._conversation_state.delete(turn_context)
        except Exception:  # noqa: BLE001 - a storage outage must not mask the original error
            logger.exception("could not clear the conversation state")


class _BotConfig:
    """The attribute names botbuilder's configuration-driven authentication reads."""

    def __init__(self, settings: Settings) -> None:
        self.APP_ID = settings.microsoft_app_id or None
        self.APP_PASSWORD = settings.microsoft_app_password or None
        self.APP_TYPE = settings.microsoft_app_type
        self.APP_TENANTID = settings.microsoft_app_tenant_id or None
