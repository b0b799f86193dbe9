"""The `status` answer: balance, auto-recharge, runway and the day the funds run out (the
forecast, credits/forecast.py), funds lots with expiry, recent transactions.

The card refreshes itself (Universal Actions' `refresh`): when an admin listed on it opens it
again, Teams asks the bot, and the answer is the card as the account is then. In a personal
chat that is its admin; in a channel or group chat, the admins who chat with the bot.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from botbuilder.core import TurnContext

from cards import CardRenderer
from credits.accounts import AccountService, Status
from credits.conversations import Conversations
from credits.directory import DirectoryError
from credits.forecast import Cause, Forecast
from credits.model import Account, EntryKind, LedgerEntry
from dialogs.card_actions import show
from dialogs.commands import ParsedCommand
from dialogs.turn import conversation_kind, tenant_id_of, translator_of
from dialogs.usage import runway_text
from locales import Translator

logger = logging.getLogger(__name__)

# Lots shown on the card; more are summarised so the card stays far below Teams' size limit.
MAX_LOTS_SHOWN = 10
# Teams refreshes a card on its own for the users it lists, up to a few dozen; the others
# refresh it by hand.
MAX_REFRESH_USERS = 60
# A Teams user id is short ("29:1a2b…"); anything longer is not written into a card.
MAX_USER_ID_CHARS = 200


class RefreshAudience:
    """Whose Teams client refreshes a status card when they open it: whoever asked for it,
    and in a shared chat the tenant's admins who chat with the bot (their Teams user ids, from
    their personal conversations), up to Teams' limit."""

    def __init__(
        self, conversations: Conversations, is_admin: Callable[[str, str], Awaitable[bool]]
    ) -> None:
        self._conversations = conversations
        self._is_admin = is_admin

    async def __call__(self, turn_context: TurnContext) -> list[str]:
        activity = turn_context.activity
        sender = activity.from_property.id if activity.from_property else None
        ids = [sender] if _user_id(sender) else []
        tenant_id = tenant_id_of(activity)
        if conversation_kind(activity) == "personal" or tenant_id is None:
            return ids
        for conversation in await self._conversations.list_active(tenant_id):
            user = conversation.reference.get("user")
            user_id = user.get("id") if isinstance(user, dict) else None
            if conversation.kind != "personal" or not _user_id(user_id) or user_id in ids:
                continue
            try:
                if not await self._is_admin(tenant_id, conversation.user_aad_object_id):
                    continue
            except DirectoryError:
                logger.warning("roles unreadable: the status card lists fewer admins")
                break
            ids.append(user_id)
            if len(ids) >= MAX_REFRESH_USERS:
                break
        return ids


class StatusReply:
    def __init__(
        self,
        accounts: AccountService,
        cards: CardRenderer,
        forecast: Callable[[str], Awaitable[Forecast | None]],
        audience: Callable[[TurnContext], Awaitable[list[str]]],
    ) -> None:
        """`forecast(tenant)`: the tenant's runway forecast (credits.runway.RunwayAlerts)."""
        self._accounts = accounts
        self._cards = cards
        self._forecast = forecast
        self._audience = audience

    async def __call__(self, turn_context: TurnContext, _parsed: ParsedCommand) -> None:
        t = translator_of(turn_context)
        status = await self._accounts.status(tenant_id_of(turn_context.activity))
        account = status.account
        outlook = await self._forecast(account.tenant_id)
        card = self._cards.attachment(
            "status",
            t,
            runway=_runway(t, outlook),
            forecast=_forecast(t, account, outlook),
            balance=t.minor_money(account.balance_minor, account.currency),
            currency=account.currency,
            auto_recharge=_auto_recharge(t, account),
            # Refunded or disputed payments whose funds had already been spent.
            owed=t.minor_money(account.owed_minor, account.currency) if account.owed_minor else "",
            lots=_lots(t, status),
            next_expiry=_next_expiry(t, status),
            recent=_recent(t, status),
            refresh_users=await self._audience(turn_context),
        )
        await show(turn_context, card)


def _user_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_USER_ID_CHARS


def _runway(t: Translator, outlook: Forecast | None) -> str:
    """Days left: as the forecast counts them when it runs out, else at the current rate."""
    if outlook is None:
        return ""
    days = outlook.days_left if outlook.days_left is not None else outlook.runway_days
    return runway_text(t, days)


def _forecast(t: Translator, account: Account, outlook: Forecast | None) -> str:
    """The day the funds run out, and why then; or why they do not."""
    if outlook is None or outlook.cause == Cause.NO_SPEND:
        return ""
    recharge = t.date(outlook.recharge_on) if outlook.recharge_on else ""
    if outlook.cause == Cause.COVERED:
        return t("status.forecast_covered", recharge=recharge)
    if outlook.runs_out is None:
        return t("status.forecast_later")
    when = t.date(outlook.runs_out)
    if outlook.cause == Cause.EXPIRY:
        return t(
            "status.forecast_expiring",
            date=when,
            amount=t.minor_money(outlook.expiring_minor, account.currency),
            expiry=t.date(outlook.expiring_on) if outlook.expiring_on else "",
        )
    if outlook.cause in (Cause.CARD_EXPIRES, Cause.CARD_FAILING, Cause.NO_METHOD):
        return t(f"status.forecast_{outlook.cause.value}", date=when, recharge=recharge)
    return when


def _auto_recharge(t: Translator, account: Account) -> str:
    recharge = account.auto_recharge
    if not recharge.enabled:
        return t("status.auto_recharge_off")
    return t(
        "status.auto_recharge_on",
        amount=t.minor_money(recharge.recharge_with_minor, account.currency),
        trigger=t.minor_money(recharge.trigger_minor, account.currency),
    )


def _lots(t: Translator, status: Status) -> list[dict[str, str]]:
    currency = status.account.currency
    return [
        {
            "text": t(
                "status.lot",
                remaining=t.minor_money(lot.remaining_minor, currency),
                amount=t.minor_money(lot.amount_minor, currency),
            ),
            "expires": t("status.lot_expires", date=t.date(lot.expires_at)),
        }
        for lot in status.lots[:MAX_LOTS_SHOWN]
    ]


def _next_expiry(t: Translator, status: Status) -> str:
    if not status.lots:
        return ""
    first = status.lots[0]
    return t(
        "status.next_expiry",
        amount=t.minor_money(first.remaining_minor, status.account.currency),
        date=t.date(first.expires_at),
    )


def _recent(t: Translator, status: Status) -> list[dict[str, str]]:
    currency = status.account.currency
    return [
        {
            "date": t.date(entry.at),
            "kind": _kind(t, entry),
            "amount": ("+" if entry.amount_minor > 0 else "")
            + t.minor_money(entry.amount_minor, currency),
        }
        for entry in status.recent
    ]


def _kind(t: Translator, entry: LedgerEntry) -> str:
    """A batch of calls reads "Calls (284), Nov 1 – 3"; anything else (and a single call charged
    before calls were booked in batches) reads as its kind alone."""
    first, last = entry.first_call, entry.last_call
    if entry.kind is not EntryKind.USAGE or not entry.calls or first is None or last is None:
        return t(f"entry.{entry.kind.value}")
    years = {first.year, last.year, entry.at.year}
    period = t.date_range(first.date(), last.date(), with_year=len(years) > 1)
    return t.ngettext("entry.calls", entry.calls, count=t.number(entry.calls), period=period)
