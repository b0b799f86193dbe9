"""`history`: the transactions and the changes of a period, a page at a time, and its export.

The card shows one period (this month when typed; last month, or the days an admin chooses)
with its opening and closing balance, and one list: the ledger's transactions (purchases with
their payment method and PO, recharges, calls, expiries, refunds and disputes), or the changes
admins made (licences, auto-recharge, alert settings, the channels alerts go to), newest
first. Its buttons carry what the card shows (period, list, page), so a press is answered from
the press alone: the card changes in place, no dialog state is kept, and an open form stays
open (`MainDialog` routes a press whose data names the `history` view here).

Export (in a personal chat only: the link opens the books to whoever holds it) posts a card
below with a signed link to the period's CSV, served by the bot for 15 minutes
(`credits/export_links.py`, `bot/history_export.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from babel.lists import format_list
from botbuilder.core import TurnContext

from cards import CardRenderer
from credits.accounts import AccountService
from credits.audit import AuditAction, AuditEntry, AuditTrail
from credits.conversations import Conversations
from credits.directory import Directory, DirectoryError
from credits.export_links import LINK_LIFETIME, ExportLinks
from credits.history import (
    History,
    LedgerSpan,
    OrderLookup,
    Period,
    PeriodChoice,
    PeriodError,
    chosen_period,
    parse_day,
    period_of,
)
from credits.model import Account, EntryKind, LedgerEntry, MethodKind, Order
from credits.repository import CreditsRepository
from dialogs.add_funds import card_label
from dialogs.card_actions import note, show
from dialogs.channels import display_name
from dialogs.commands import ParsedCommand
from dialogs.forms import text_of
from dialogs.turn import conversation_kind, tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

VIEW = "history"
PAGE_SIZE = 10
LEDGER = "ledger"
CHANGES = "changes"
LISTS = (LEDGER, CHANGES)
# Changes read for one period's pages (admins change settings a few times a month).
MAX_CHANGES = 500
# User names shown in a licence change; the rest are counted.
NAMES_SHOWN = 3
# Licence outcomes that changed a user (the others left them as they were).
_LICENCE_DONE = frozenset({"assigned", "assigned_with_prerequisite", "removed"})


class HistoryView:
    def __init__(
        self,
        accounts: AccountService,
        repository: CreditsRepository,
        audit: AuditTrail,
        directory: Directory,
        conversations: Conversations,
        cards: CardRenderer,
        links: ExportLinks,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._accounts = accounts
        self._repo = repository
        self._history = History(repository)
        self._audit = audit
        self._directory = directory
        self._conversations = conversations
        self._cards = cards
        self._links = links
        self._clock = clock

    async def __call__(self, turn_context: TurnContext, _parsed: ParsedCommand) -> None:
        """Typed `history`: this month's transactions."""
        await self._show(turn_context, Period.this_month(self._today()), LEDGER, 0)

    async def on_press(self, turn_context: TurnContext, value: dict[str, Any]) -> None:
        """A press on a history card: its data holds what the card showed."""
        today = self._today()
        shown = _shown_period(value, today)
        list_name = value.get("list") if value.get("list") in LISTS else LEDGER
        action = value.get("action")
        if action in (PeriodChoice.THIS_MONTH, PeriodChoice.LAST_MONTH):
            period = period_of(action, today)
            assert period is not None
            await self._show(turn_context, period, list_name, 0)
        elif action == PeriodChoice.DATES:
            typed = {"from": text_of(value.get("from"))[:20], "to": text_of(value.get("to"))[:20]}
            chosen = chosen_period(typed["from"], typed["to"], today)
            if isinstance(chosen, PeriodError):
                error = {chosen.field: _period_error(translator_of(turn_context), chosen)}
                await self._show(turn_context, shown, list_name, 0, typed=typed, errors=error)
            else:
                await self._show(turn_context, chosen, list_name, 0)
        elif action == "export":
            await self._export(turn_context, shown)
        else:  # a page, or the other list
            await self._show(turn_context, shown, list_name, _page_of(value))

    # --- the card -----------------------------------------------------------------------------

    async def _show(
        self,
        turn_context: TurnContext,
        period: Period,
        list_name: str,
        page: int,
        *,
        typed: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        t = translator_of(turn_context)
        tenant_id = tenant_id_of(turn_context.activity) or ""
        account = await self._accounts.get_or_create(tenant_id)
        span = await self._history.locate(account, period)
        if list_name == LEDGER:
            total = span.count
            page = min(page, _pages(total) - 1)
            entries = await self._history.page(tenant_id, span, page, PAGE_SIZE)
            orders = await OrderLookup(self._repo, tenant_id).of(entries)
            lines = [ledger_line(t, account, e, orders.get(e.reference)) for e in entries]
        else:
            changes = await self._audit.between(tenant_id, period.start, period.end, MAX_CHANGES)
            total = len(changes)
            page = min(page, _pages(total) - 1)
            shown = changes[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
            names = await self._names(t, tenant_id, {c.actor for c in shown})
            channels = await self._channels(t, tenant_id, shown)
            lines = [change_line(t, account, c, names, channels) for c in shown]
        view = {
            "view": VIEW,
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
            "list": list_name,
        }
        card = self._cards.attachment(
            "history",
            t,
            view=view,
            period=period_text(t, period),
            facts=_facts(t, account, span),
            inputs=typed or {"from": view["first"], "to": view["last"]},
            errors=errors or {},
            list_name=list_name,
            lines=lines,
            page=page,
            page_text=t.ngettext(
                "history.page" if list_name == LEDGER else "history.changes_page",
                total,
                page=t.number(page + 1),
                pages=t.number(_pages(total)),
                total=t.number(total),
            ),
            has_previous=page > 0,
            has_next=page < _pages(total) - 1,
            can_export=conversation_kind(turn_context.activity) == "personal",
        )
        await show(turn_context, card)

    async def _export(self, turn_context: TurnContext, period: Period) -> None:
        t = translator_of(turn_context)
        if conversation_kind(turn_context.activity) != "personal":
            await note(turn_context, t("history.export_personal"))
            return
        tenant_id = tenant_id_of(turn_context.activity) or ""
        account = await self._accounts.get_or_create(tenant_id)
        span = await self._history.locate(account, period)
        link = self._links.link(tenant_id, period, t.tag, self._clock())
        minutes = int(LINK_LIFETIME.total_seconds() // 60)
        card = self._cards.attachment(
            "history_export",
            t,
            period=period_text(t, period),
            facts=_facts(t, account, span),
            url=self._links.address(link),
            expiry=t.ngettext(
                "history.export_expiry",
                minutes,
                minutes=t.number(minutes),
                time=t.time(link.expires_at),
            ),
        )
        logger.info("export link of %s made for tenant %s", period, tenant_id)
        await show(turn_context, card)

    # --- who and where ------------------------------------------------------------------------

    async def _names(self, t: Translator, tenant_id: str, actors: set[str]) -> dict[str, str]:
        """Admins' names as the directory has them now (a handful per page, read at once)."""

        async def name(actor: str) -> str:
            # Any actor is asked for: the directory says which ids it knows (Graph refuses what
            # is not an Entra object id, the embedded directory knows the demo's own ids).
            if not actor:
                return ""
            try:
                return (await self._directory.get_user(tenant_id, actor)).display_name
            except DirectoryError:
                return ""  # left the organisation, or the directory cannot answer now

        found = await asyncio.gather(*(name(actor) for actor in actors))
        return {
            actor: name or t("history.someone") for actor, name in zip(actors, found, strict=True)
        }

    async def _channels(
        self, t: Translator, tenant_id: str, changes: list[AuditEntry]
    ) -> dict[str, str]:
        ids = {
            str(c.details.get("conversation_id"))
            for c in changes
            if c.action in (AuditAction.ALERTS_HERE, AuditAction.STOP_ALERTS_HERE)
        }
        found = await asyncio.gather(*(self._conversations.get(tenant_id, i) for i in ids))
        return {c.conversation_id: display_name(t, c) for c in found if c is not None}

    def _today(self) -> date:
        return self._clock().date()


# --- what the card says -------------------------------------------------------------------------


def period_text(t: Translator, period: Period) -> str:
    """ "November 2026" for a whole month, else its days ("Nov 1 – 15, 2026"); in UTC."""
    if period.whole_month:
        text = t.month(period.first)
    else:
        text = t.date_range(period.first, period.last, with_year=True)
    return t("history.period_utc", period=text)


def entry_title(t: Translator, entry: LedgerEntry) -> str:
    """What an entry is: its kind, and for a batch of calls how many and when they started."""
    first, last = entry.first_call, entry.last_call
    if entry.kind is not EntryKind.USAGE or not entry.calls or first is None or last is None:
        return t(f"entry.{entry.kind.value}")
    period = t.date_range(first.date(), last.date(), with_year=first.year != last.year)
    return t.ngettext("entry.calls", entry.calls, count=t.number(entry.calls), period=period)


def method_text(t: Translator, account: Account, order: Order) -> str:
    """How an order was paid: the card as it reads on receipts, or the agreement number."""
    method = order.method
    if method.kind == MethodKind.AGREEMENT:
        return t("add_funds.method_agreement", number=method.agreement_number)
    card = account.card(method.card_id) if method.card_id else None
    if card is None:
        return t("add_funds.method_new_card")
    return card_label(t, card, with_failure=False)


def ledger_line(
    t: Translator, account: Account, entry: LedgerEntry, order: Order | None
) -> dict[str, str]:
    currency = account.currency
    details = []
    if order is not None:
        details.append(method_text(t, account, order))
        if order.method.purchase_order:
            details.append(t("add_funds.po_short", po=order.method.purchase_order))
    return {
        "date": t.date(entry.at),
        "title": entry_title(t, entry),
        "details": " · ".join(details),
        "amount": ("+" if entry.amount_minor > 0 else "")
        + t.minor_money(entry.amount_minor, currency),
        "balance": t(
            "history.balance_after", balance=t.minor_money(entry.balance_after_minor, currency)
        ),
    }


def change_line(
    t: Translator,
    account: Account,
    change: AuditEntry,
    names: dict[str, str],
    channels: dict[str, str],
) -> dict[str, str]:
    return {
        "when": t.datetime(change.at),
        "text": t(
            "history.change",
            who=names.get(change.actor) or t("history.someone"),
            what=_what(t, account, change, channels),
        ),
    }


def _what(t: Translator, account: Account, change: AuditEntry, channels: dict[str, str]) -> str:
    details = change.details
    action = change.action
    if action in (AuditAction.LICENCE_ASSIGN, AuditAction.LICENCE_REMOVE):
        results = [r for r in details.get("results", []) if isinstance(r, dict)]
        done = [
            str(r.get("display_name", "")) for r in results if r.get("outcome") in _LICENCE_DONE
        ]
        names = format_list(done[:NAMES_SHOWN], locale=t.language.babel)
        if len(done) > NAMES_SHOWN:
            more = len(done) - NAMES_SHOWN
            names = t.ngettext("licences.and_more", more, names=names, more=t.number(more))
        if not done:
            count = len(results)
            return t.ngettext("history.audit.licence_unchanged", count, count=t.number(count))
        verb = "assign" if action == AuditAction.LICENCE_ASSIGN else "remove"
        count = len(done)
        return t.ngettext(
            f"history.audit.licence_{verb}", count, count=t.number(count), names=names
        )
    if action == AuditAction.AUTO_RECHARGE:
        return _auto_recharge(t, details)
    if action == AuditAction.ALERT_SETTINGS:
        return _alert_settings(t, details, account.currency)
    if action in (AuditAction.ALERTS_HERE, AuditAction.STOP_ALERTS_HERE):
        channel = channels.get(str(details.get("conversation_id"))) or t("history.a_channel")
        return t(f"history.audit.{action}", channel=channel)
    return t("history.audit.other", action=action)


def _auto_recharge(t: Translator, details: dict[str, Any]) -> str:
    if not details.get("enabled"):
        return t("history.audit.auto_recharge_off")
    currency = str(details.get("currency", ""))
    if details.get("card_last4"):
        method = t(
            "history.audit.card",
            brand=t.card_brand(str(details.get("card_brand", ""))),
            last4=str(details["card_last4"]),
        )
    elif details.get("agreement"):
        method = t("add_funds.method_agreement", number=str(details["agreement"]))
    else:
        method = t("history.audit.no_method")
    return t(
        "history.audit.auto_recharge_on",
        amount=t.minor_money(int(details.get("recharge_with_minor", 0)), currency),
        trigger=t.minor_money(int(details.get("trigger_minor", 0)), currency),
        method=method,
    )


def _alert_settings(t: Translator, details: dict[str, Any], currency: str) -> str:
    currency = str(details.get("currency") or currency)
    thresholds = [int(m) for m in details.get("thresholds_minor", [])]
    off = [str(kind) for kind in details.get("kinds_off", [])]
    return t(
        "history.audit.alert_settings",
        thresholds=format_list(
            [t.minor_money(m, currency) for m in thresholds], locale=t.language.babel
        )
        if thresholds
        else t("history.audit.default_threshold"),
        kinds=t(
            "history.audit.kinds_off",
            kinds=format_list([t(f"alert.{kind}.title") for kind in off], locale=t.language.babel),
        )
        if off
        else t("history.audit.all_kinds"),
    )


def _facts(t: Translator, account: Account, span: LedgerSpan) -> list[dict[str, str]]:
    currency = account.currency
    change = span.change_minor
    return [
        {"title": t("history.opening"), "value": t.minor_money(span.opening_minor, currency)},
        {"title": t("history.closing"), "value": t.minor_money(span.closing_minor, currency)},
        {
            "title": t("history.net_change"),
            "value": ("+" if change > 0 else "") + t.minor_money(change, currency),
        },
    ]


def _period_error(t: Translator, error: PeriodError) -> str:
    return t(f"history.error.{error.problem.value}")


def _shown_period(value: dict[str, Any], today: date) -> Period:
    """The period a card showed (from its data); this month when the data holds none."""
    first = parse_day(text_of(value.get("first"))[:20])
    last = parse_day(text_of(value.get("last"))[:20])
    if first is None or last is None or last < first:
        return Period.this_month(today)
    return Period(first, last)


def _page_of(value: dict[str, Any]) -> int:
    page = value.get("page")
    return page if isinstance(page, int) and not isinstance(page, bool) and page >= 0 else 0


def _pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))
