"""The `status` answer: balance, auto-recharge, funds lots with expiry, recent transactions."""

from __future__ import annotations

from botbuilder.core import MessageFactory, TurnContext

from cards import CardRenderer
from credits.accounts import AccountService, Status
from credits.model import Account, EntryKind, LedgerEntry
from credits.recommendation import FundingAdvisor
from dialogs.commands import ParsedCommand
from dialogs.turn import tenant_id_of, translator_of
from dialogs.usage import runway_text
from locales import Translator

# Lots shown on the card; more are summarised so the card stays far below Teams' size limit.
MAX_LOTS_SHOWN = 10


class StatusReply:
    def __init__(
        self, accounts: AccountService, cards: CardRenderer, advisor: FundingAdvisor
    ) -> None:
        self._accounts = accounts
        self._cards = cards
        self._advisor = advisor

    async def __call__(self, turn_context: TurnContext, _parsed: ParsedCommand) -> None:
        t = translator_of(turn_context)
        status = await self._accounts.status(tenant_id_of(turn_context.activity))
        account = status.account
        advice = await self._advisor.advise(account.tenant_id, with_licences=False)
        card = self._cards.attachment(
            "status",
            t,
            runway=runway_text(t, advice.recommendation.runway_days) if advice else "",
            balance=t.minor_money(account.balance_minor, account.currency),
            currency=account.currency,
            auto_recharge=_auto_recharge(t, account),
            # Refunded or disputed payments whose funds had already been spent.
            owed=t.minor_money(account.owed_minor, account.currency) if account.owed_minor else "",
            lots=_lots(t, status),
            next_expiry=_next_expiry(t, status),
            recent=_recent(t, status),
        )
        await turn_context.send_activity(MessageFactory.attachment(card))


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
