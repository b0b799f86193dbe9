"""`GET /api/tenants/{tenant}/history.csv?…`: a period's ledger as CSV, behind a signed link.

The link comes from `history` in an admin's personal chat (`dialogs/history.py`) and is checked
here (`credits/export_links.py`): a link made for another tenant, or altered, is a 403; one past
its 15 minutes a 410, each saying to ask the bot for a new one. Both say so in the language of
the link.

The file is for a spreadsheet in any language: UTF-8 with a byte order mark (Excel reads the
encoding from it), one row per ledger entry, oldest first, with its date and time (UTC, ISO
8601), kind, amount and balance after as plain decimals (a point, no grouping, a minus sign
for a debit) beside the currency, the entry's reference, and for purchases, recharges, refunds
and disputes their order, payment method, purchase order and the processor's reference. The
headers and kinds are in the language of the link. Amounts sum to the period's balance change.

A text cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab
or a carriage return; a PO number is whatever an admin typed) is written with a leading `'`,
which spreadsheets show as text; the bot's own numbers are left as numbers.

The period is streamed: its entries are read 1,000 at a time (one range read each, by sequence
number) and written as they come, so memory does not grow with the period's length.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from aiohttp import web

from credits.export_links import ExportLinks, LinkProblem, LinkRefused
from credits.history import History, OrderLookup
from credits.model import Account, LedgerEntry, Order
from credits.money import Money
from credits.repository import CreditsRepository
from dialogs.history import method_text
from locales import Localizer, Translator

logger = logging.getLogger(__name__)

BOM = "\ufeff"
COLUMNS = (
    "date", "sequence", "kind", "amount", "currency", "balance_after", "reference", "lot",
    "calls", "first_call", "last_call", "order", "payment_method", "purchase_order",
    "processor_reference",
)  # fmt: skip
# What a spreadsheet takes for the start of a formula (OWASP's list for CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The bot's own amounts ("-12.50"): numbers, not formulas, and they must stay numbers.
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_STATUS = {LinkProblem.MALFORMED: 400, LinkProblem.FORGED: 403, LinkProblem.EXPIRED: 410}
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def spreadsheet_safe(cell: str) -> str:
    """A text cell a spreadsheet shows as it is: one that could start a formula gets a `'`."""
    if cell.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def header_row(t: Translator) -> list[str]:
    return [t(f"history.csv.{column}") for column in COLUMNS]


def entry_row(
    t: Translator, account: Account, entry: LedgerEntry, order: Order | None
) -> list[str]:
    currency = account.currency
    row = [
        _utc(entry.at),
        str(entry.seq),
        t(f"entry.{entry.kind.value}"),
        _plain(entry.amount_minor, currency),
        currency,
        _plain(entry.balance_after_minor, currency),
        entry.reference,
        entry.lot_id,
        str(entry.calls) if entry.calls else "",
        _utc(entry.first_call) if entry.first_call else "",
        _utc(entry.last_call) if entry.last_call else "",
    ]
    if order is None:
        row += ["", "", "", ""]
    else:
        row += [
            order.key,
            method_text(t, account, order),
            order.method.purchase_order,
            order.gateway_reference,
        ]
    return [spreadsheet_safe(cell) for cell in row]


def csv_text(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


class HistoryExport:
    """Serves the CSV of a signed link."""

    def __init__(
        self,
        links: ExportLinks,
        repository: CreditsRepository,
        localizer: Localizer,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._links = links
        self._repo = repository
        self._history = History(repository)
        self._localizer = localizer
        self._clock = clock

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        tenant_id = request.match_info["tenant"]
        t = self._localizer.translator(request.query.get("lang", "")[:20])
        try:
            link = self._links.check(tenant_id, request.query, self._clock())
        except LinkRefused as refused:
            logger.warning("export link refused for tenant %s: %s", tenant_id[:64], refused)
            return web.Response(
                status=_STATUS[refused.problem],
                text=t(f"history.link.{refused.problem.value}"),
                headers=_HEADERS,
            )
        account = await self._repo.get_account(tenant_id)
        if account is None:
            # A signed link names a tenant that had an account: its books cannot be gone.
            raise web.HTTPNotFound(text="no books for this tenant")
        span = await self._history.locate(account.value, link.period)
        name = f"communications-credits-{link.period.first}-{link.period.last}.csv"
        response = web.StreamResponse(
            headers={
                **_HEADERS,
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            }
        )
        await response.prepare(request)
        t = self._localizer.translator(link.language)
        await response.write((BOM + csv_text([header_row(t)])).encode("utf-8"))
        orders = OrderLookup(self._repo, tenant_id)
        async for chunk in self._history.chunks(tenant_id, span):
            found = await orders.of(chunk)
            rows = (entry_row(t, account.value, e, found.get(e.reference)) for e in chunk)
            await response.write(csv_text(rows).encode("utf-8"))
        await response.write_eof()
        logger.info(
            "export of %d ledger entries (%s to %s) for tenant %s",
            span.count,
            link.period.first,
            link.period.last,
            tenant_id,
        )
        return response


def _plain(minor: int, currency: str) -> str:
    """An amount as a plain decimal: "-12.50", "1234.00" (no grouping, no symbol)."""
    return format(Money(minor, currency).to_decimal(), "f")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
