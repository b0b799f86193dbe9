"""One usage import, whichever way the file arrived: parse, charge, then let auto-recharge act,
and look at the runway forecast again (credits/runway.py).

Parsing is synchronous CPU work over a file, so it runs in a worker thread a few hundred rows
at a time while the event loop keeps serving turns; charging streams those rows into batched
transactions (credits/usage_charging.py). Memory holds a chunk of parsed rows, the charger's
look-ahead (32 bytes a row) and the charged ids of the days the file touches (bounded), not
the file.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO, Protocol

from credits.accounts import AccountService
from credits.auto_recharge import AutoRecharger
from credits.model import Account
from credits.runway import RunwayAlerts
from credits.usage import ParseReport, SkipReason, UsageRow, iter_graph_rows
from credits.usage_charging import ChargeReport, UsageCharger
from credits.usage_export import iter_export_rows

logger = logging.getLogger(__name__)

CHUNK_ROWS = 500


@dataclass(frozen=True)
class ImportReport:
    rows_read: int
    charged: int
    already_charged: int
    """Rows charged by an earlier import (or repeated in this one): nothing charged again."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Rows not charged, by reason (other capability, other currency, malformed)."""
    uncovered: int = 0
    debited_minor: int = 0
    balance_after_minor: int = 0
    currency: str = ""
    recharge: str = "none"
    """The auto-recharge engine's answer after the import; `due` when the import runs without
    the engine (the operator's command line) and left a recharge for the service to place."""


Progress = Callable[[int], None]


class Accounts(Protocol):
    """What an import needs of the accounts (credits.accounts.AccountService has it)."""

    async def get_or_create(self, tenant_id: str) -> Account: ...


class UsageImporter:
    def __init__(
        self,
        accounts: Accounts,
        charger: UsageCharger,
        recharger: AutoRecharger | None,
        runway: RunwayAlerts | None = None,
    ) -> None:
        """Without a `recharger` a recharge the import makes due is left to whoever runs the
        auto-recharge engine (the service's job, every minute): an import needs no payments.
        Without `runway` the forecast is left to the service's runway job."""
        self._accounts = accounts
        self._charger = charger
        self._recharger = recharger
        self._runway = runway

    async def import_file(
        self,
        tenant_id: str,
        source: BinaryIO,
        *,
        origin: str,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Charge a PSTN usage export (CSV or the admin centre's zip) to a tenant.

        Raises credits.usage.UsageFormatError, before anything is charged, when the file as a
        whole is not a usage export (wrong columns, binary, a zip bomb).
        """
        account = await self._accounts.get_or_create(tenant_id)
        parsed = ParseReport()
        rows = iter_export_rows(source, account_currency=account.currency, report=parsed)
        # The first chunk is read before anything is charged: a file whose header or shape is
        # wrong fails here, whole, with nothing booked.
        first = await asyncio.to_thread(_take, rows, CHUNK_ROWS)
        charged = await self._charger.charge(
            tenant_id, _chunks(first, rows, parsed, progress), source=origin
        )
        recharge = await self._recharge(tenant_id)
        if self._runway is not None:
            await self._runway.settle(tenant_id)
        in_file = parsed.skipped.get(SkipReason.DUPLICATE_IN_FILE, 0)
        report = ImportReport(
            rows_read=parsed.rows_read,
            charged=charged.charged,
            already_charged=charged.already_charged + in_file,
            skipped={
                reason.value: count
                for reason, count in parsed.skipped.items()
                if reason is not SkipReason.DUPLICATE_IN_FILE and count
            },
            uncovered=charged.uncovered,
            debited_minor=charged.debited_minor,
            balance_after_minor=charged.balance_after_minor,
            currency=account.currency,
            recharge=recharge,
        )
        logger.info(
            "usage import for tenant %s from %s: %d rows read, %d charged, %d already charged",
            tenant_id,
            origin,
            report.rows_read,
            report.charged,
            report.already_charged,
        )
        return report

    async def _recharge(self, tenant_id: str) -> str:
        if self._recharger is not None:
            return (await self._recharger.run(tenant_id)).status
        after = await self._accounts.get_or_create(tenant_id)
        return "due" if after.auto_recharge.enabled and after.recharge.due_key else "none"


class PageSource(Protocol):
    def pages(self, tenant_id: str, start: datetime, end: datetime) -> AsyncIterator[dict]: ...


class GraphUsageSync:
    """Scheduled import from Microsoft Graph's getPstnCalls, for tenants where Graph serves.

    Each pass reads an overlapping window (the last `lookback`): Graph may publish a call late,
    and the UsageId makes a row read twice cost nothing.
    """

    def __init__(
        self,
        accounts: AccountService,
        charger: UsageCharger,
        recharger: AutoRecharger,
        graph: PageSource,
        *,
        clock: Callable[[], datetime],
        lookback: timedelta = timedelta(days=3),
        runway: RunwayAlerts | None = None,
    ) -> None:
        self._accounts = accounts
        self._charger = charger
        self._recharger = recharger
        self._graph = graph
        self._clock = clock
        self._lookback = lookback
        self._runway = runway

    async def run(self, tenant_id: str) -> ChargeReport:
        account = await self._accounts.get_or_create(tenant_id)
        end = self._clock()
        parsed = ParseReport()

        async def rows() -> AsyncIterator[UsageRow]:
            async for page in self._graph.pages(tenant_id, end - self._lookback, end):
                for row in iter_graph_rows(page, account_currency=account.currency, report=parsed):
                    yield row

        report = await self._charger.charge(tenant_id, rows(), source="graph")
        await self._recharger.run(tenant_id)
        if self._runway is not None:
            await self._runway.settle(tenant_id)
        return report


def _take(rows: Iterator[UsageRow], count: int) -> list[UsageRow]:
    return list(itertools.islice(rows, count))


async def _chunks(
    first: list[UsageRow],
    rows: Iterator[UsageRow],
    parsed: ParseReport,
    progress: Progress | None,
) -> AsyncIterator[UsageRow]:
    chunk = first
    while chunk:
        for row in chunk:
            yield row
        if progress is not None:
            progress(parsed.rows_read)
        chunk = await asyncio.to_thread(_take, rows, CHUNK_ROWS)
