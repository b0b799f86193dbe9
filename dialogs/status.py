"""The `status` answer: balance, auto-recharge, funds lots with expiry, recent transactions."""

from __future__ import annotations

from botbuilder.core import MessageFactory, TurnContext

from bot.turn import tenant_id_of, translator_of
from cards import CardRenderer
from credits.accounts import AccountService
from credits.recommendation import FundingAdvisor
from dialogs.commands import ParsedCommand
from dialogs.usage import runway_text

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
        currency = account.currency

        def money(minor: int) -> str:
            return t.minor_money(minor, currency)

        recharge = account.auto_recharge
        auto_recharge = (
            t(
                "status.auto_recharge_on",
                amount=money(recharge.recharge_with_minor),
                trigger=money(recharge.trigger_minor),
            )
            if recharge.enabled
            else t("status.auto_recharge_off")
        )
        lots = [
            {
                "text": t(
                    "status.lot",
                    remaining=money(lot.remaining_minor),
                    amount=money(lot.amount_minor),
                ),
                "expires": t("status.lot_expires", date=t.date(lot.expires_at)),
            }
            for lot in status.lots[:MAX_LOTS_SHOWN]
        ]
        next_expiry = (
            t(
                "status.next_expiry",
                amount=money(status.lots[0].remaining_minor),
                date=t.date(status.lots[0].expires_at),
            )
            if status.lots
            else ""
        )
        recent = [
            {
                "date": t.date(entry.at),
                "kind": t(f"entry.{entry.kind.value}"),
                "amount": ("+" if entry.amount_minor > 0 else "") + money(entry.amount_minor),
            }
            for entry in status.recent
        ]
        advice = await self._advisor.advise(account.tenant_id, with_licences=False)
        runway = runway_text(t, advice.recommendation.runway_days) if advice else ""
        card = self._cards.attachment(
            "status",
            t,
            runway=runway,
            balance=money(account.balance_minor),
            currency=currency,
            auto_recharge=auto_recharge,
            lots=lots,
            next_expiry=next_expiry,
            recent=recent,
        )
        await turn_context.send_activity(MessageFactory.attachment(card))
