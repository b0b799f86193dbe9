"""The main dialog: routes text commands and card actions to flows.

A command (typed, or a card button carrying `{"command": ...}`) always wins: it cancels whatever
flow was active and starts its own, so an admin is never stuck inside a form. Anything else goes
to the active flow, and with no active flow gets a hint and the menu.

A press on a card arrives here as the message its Action.Submit would send, whether Teams sent
it as an `adaptiveCard/action` invoke or not; where the answer goes (in place of the card, or
below it) is decided by `dialogs/card_actions.py`. A card's refresh (`{"refresh": "status"}`)
is answered by `on_refresh` with the card as it is now, and leaves any open flow as it was. So
is a press on a card that only shows something (a page of `history`, whose data names its view
and what it shows): its view answers it, and an open form stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import StatePropertyAccessor, TurnContext
from botbuilder.dialogs import Dialog, DialogSet, DialogTurnStatus
from botbuilder.schema import Attachment

from cards import CardRenderer
from dialogs.card_actions import note, say, show
from dialogs.commands import Command, CommandParser, ParsedCommand
from dialogs.turn import translator_of
from dialogs.usage import file_attachment

logger = logging.getLogger(__name__)

# Flows that later work builds; until then they answer "coming soon".
COMING_SOON = frozenset(
    {
        Command.STATUS,
        Command.ADD_FUNDS,
        Command.AUTO_RECHARGE,
        Command.LICENCES,
        Command.USAGE,
        Command.ALERTS,
    }
)

# A one-turn answer to a command (no dialog state), e.g. the status card.
Reply = Callable[[TurnContext, ParsedCommand], Awaitable[None]]
# Handles a card form submitted after its flow ended (a second press, a restart).
OrphanSubmit = Callable[[TurnContext, dict[str, Any]], Awaitable[None]]
# A file the admin sent in the chat (Teams' file download info attachment).
OnFile = Callable[[TurnContext, Attachment], Awaitable[None]]
# Whether the sender may do anything beyond `help`: None when allowed, else the id of the
# message that explains why not.
Authorize = Callable[[TurnContext], Awaitable[str | None]]
# Answers a press on a card that only shows something, given the press's data.
View = Callable[[TurnContext, dict[str, Any]], Awaitable[None]]


async def allow_everyone(_turn_context: TurnContext) -> str | None:
    return None


class MainDialog:
    def __init__(
        self,
        dialog_state: StatePropertyAccessor,
        parser: CommandParser,
        cards: CardRenderer,
        flows: dict[Command, Dialog],
        replies: dict[Command, Reply] | None = None,
        orphan_submits: dict[str, OrphanSubmit] | None = None,
        authorize: Authorize = allow_everyone,
        on_file: OnFile | None = None,
        refreshers: dict[str, Reply] | None = None,
        views: dict[str, View] | None = None,
    ) -> None:
        """`refreshers` answer a card's refresh (by the name in its data: `status`); `views`
        a press on a card that only shows something (by the `view` in its data: `history`)."""
        self._parser = parser
        self._cards = cards
        self._flows = flows
        self._replies = replies or {}
        self._orphan_submits = orphan_submits or {}
        self._authorize = authorize
        self._on_file = on_file
        self._refreshers = refreshers or {}
        self._views = views or {}
        self._dialogs = DialogSet(dialog_state)
        for dialog in flows.values():
            self._dialogs.add(dialog)

    async def on_message(self, turn_context: TurnContext) -> None:
        dc = await self._dialogs.create_context(turn_context)

        # Help is for everyone; every other command, card action and form is for admins. The
        # sender is checked before anything of the message is parsed: the message of someone
        # who may not act costs no parsing beyond "is this a short `help`?".
        refusal = await self._authorize(turn_context)
        if refusal is not None:
            if self._asks_for_help(turn_context):
                await self._start(dc, turn_context, ParsedCommand(Command.HELP, ""))
                return
            await dc.cancel_all_dialogs()
            await note(turn_context, translator_of(turn_context)(refusal))
            return
        value = turn_context.activity.value
        view = value.get("view") if isinstance(value, dict) and "command" not in value else None
        if isinstance(view, str) and view in self._views:
            await self._views[view](turn_context, value)
            return
        command = self._command_of(turn_context)

        attachment = file_attachment(turn_context) if self._on_file is not None else None
        if command is None and attachment is not None:
            await dc.cancel_all_dialogs()
            await self._on_file(turn_context, attachment)
            return

        if command is None:
            if dc.active_dialog is not None:
                result = await dc.continue_dialog()
                if result.status != DialogTurnStatus.Empty:
                    return
            value = turn_context.activity.value
            if is_form_submit(value) and value["form"] in self._orphan_submits:
                await self._orphan_submits[value["form"]](turn_context, value)
                return
            await self._send_menu(turn_context, translator_of(turn_context)("unknown.hint"))
            return

        if command.command == Command.CANCEL:
            t = translator_of(turn_context)
            if dc.active_dialog is None:
                await say(turn_context, t("nothing_to_cancel"))
            else:
                await dc.cancel_all_dialogs()
                await say(turn_context, t("cancelled"))
            return

        await dc.cancel_all_dialogs()
        await self._start(dc, turn_context, command)

    async def on_refresh(self, turn_context: TurnContext) -> None:
        """A card asks to be brought up to date: its answer, for admins; no flow is touched."""
        refusal = await self._authorize(turn_context)
        if refusal is not None:
            await note(turn_context, translator_of(turn_context)(refusal))
            return
        value = turn_context.activity.value
        name = value.get("refresh") if isinstance(value, dict) else None
        refresher = self._refreshers.get(name) if isinstance(name, str) else None
        if refresher is None:
            logger.warning("refresh of an unknown card %r", str(name)[:40])
            return
        await refresher(turn_context, ParsedCommand(Command.STATUS, ""))

    async def _start(self, dc, turn_context: TurnContext, parsed: ParsedCommand) -> None:
        t = translator_of(turn_context)
        command = parsed.command
        if command == Command.HELP:
            await say(turn_context, t("help.text"))
        elif command == Command.MENU:
            await self._send_menu(turn_context, None)
        elif command in self._flows:
            options = self._options(turn_context, parsed)
            await dc.begin_dialog(self._flows[command].id, options)
        elif command in self._replies:
            await self._replies[command](turn_context, parsed)
        elif command in COMING_SOON:
            await say(turn_context, t("coming_soon", feature=t(f"menu.{command.value}")))
        else:  # a command with neither flow nor answer is a wiring mistake
            logger.error("command %s has no handler", command)
            await self._send_menu(turn_context, t("unknown.hint"))

    def _asks_for_help(self, turn_context: TurnContext) -> bool:
        activity = turn_context.activity
        value = activity.value
        if isinstance(value, dict) and "command" in value:
            return value["command"] == Command.HELP.value
        return value is None and self._parser.asks_for_help(activity.text)

    def _command_of(self, turn_context: TurnContext) -> ParsedCommand | None:
        activity = turn_context.activity
        value = activity.value
        if isinstance(value, dict) and "command" in value:
            try:
                return ParsedCommand(Command(value["command"]), "")
            except ValueError:
                # Forged or stale card data: show the menu, never fail the turn.
                logger.warning("unknown card command %r", value.get("command"))
                return ParsedCommand(Command.MENU, "")
        if value is not None and not activity.text:
            if is_form_submit(value):
                return None
            logger.warning("card data without a command: %s", type(value).__name__)
            return ParsedCommand(Command.MENU, "")
        return self._parser.parse(activity.text)

    def _options(self, turn_context: TurnContext, parsed: ParsedCommand) -> dict[str, Any]:
        # Only named, expected fields go into dialog state: a forged submit must not be able to
        # park arbitrary card data (a card number, say) in stored state.
        options: dict[str, Any] = {"argument": parsed.argument[:100]}
        value = turn_context.activity.value
        if parsed.command == Command.LANGUAGE:
            chosen = value.get("language") if isinstance(value, dict) else None
            language = chosen if isinstance(chosen, str) else parsed.argument
            if language:
                options["language"] = language[:40]
        if parsed.command == Command.AUTO_RECHARGE and isinstance(value, dict):
            # "Turn on auto-recharge" (an alert's button): the form starts switched on.
            options["turn_on"] = value.get("turn_on") == "true"
        return options

    async def _send_menu(self, turn_context: TurnContext, message: str | None) -> None:
        t = translator_of(turn_context)
        await show(turn_context, self._cards.attachment("menu", t, message=message))


def is_form_submit(value: Any) -> bool:
    """A card form of an active flow submits its fields with a `form` marker."""
    return isinstance(value, dict) and isinstance(value.get("form"), str)
