"""Funds expire twelve months after purchase: warn before, forfeit after, once each.

The forfeiture is a ledger entry per lot, committed with the lot, the balance and the
`funds_expired` alert; the warnings are alerts whose ids name the lot and the lead time, so a
warning written twice is refused by the store instead of being sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from credits import ledger
from credits.model import EventKind, OutboxEvent
from credits.repository import ConcurrencyConflict, CreditsRepository, DuplicateRecord
from credits.usage_charging import MAX_OPERATIONS, plan_recharge_due

logger = logging.getLogger(__name__)

WARNING_LEAD_DAYS = (30, 7)
MAX_ATTEMPTS = 12


@dataclass
class ExpiryReport:
    forfeited_minor: int = 0
    expired_lots: int = 0
    warnings: list[str] = field(default_factory=list)


class ExpiryJob:
    def __init__(self, repository: CreditsRepository, *, clock: Callable[[], datetime]) -> None:
        self._repo = repository
        self._clock = clock

    async def run(self, tenant_id: str) -> ExpiryReport:
        report = ExpiryReport()
        now = self._clock()
        await self._forfeit(tenant_id, now, report)
        await self._warn(tenant_id, now, report)
        return report

    async def _forfeit(self, tenant_id: str, now: datetime, report: ExpiryReport) -> None:
        for _attempt in range(MAX_ATTEMPTS):
            current = await self._repo.get_account(tenant_id)
            if current is None:
                return
            expired = [
                lot
                for lot in await self._repo.list_lots(tenant_id)
                if lot.remaining_minor > 0 and lot.expires_at <= now
            ]
            # Each lot costs two operations plus its alert; the account is one more.
            expired = expired[: (MAX_OPERATIONS - 1) // 3]
            if not expired:
                return
            change = ledger.forfeit(current.value, expired, at=now)
            change = ledger.Change(
                plan_recharge_due(change.account, current.value), change.lots, change.entries
            )
            events = [
                OutboxEvent(
                    f"funds_expired-{lot.lot_id}",
                    EventKind.FUNDS_EXPIRED,
                    now,
                    {"amount_minor": lot.remaining_minor, "expired_at": lot.expires_at.isoformat()},
                )
                for lot in expired
            ]
            try:
                await self._repo.commit(current.etag, change, inserts=events)
            except (ConcurrencyConflict, DuplicateRecord):
                continue  # reload: another instance may have booked some of them
            report.expired_lots += len(expired)
            report.forfeited_minor += sum(lot.remaining_minor for lot in expired)
            logger.info("forfeited %d expired lots of tenant %s", len(expired), tenant_id)
        # More than one transaction's worth of lots, or a busy account: the next run goes on.

    async def _warn(self, tenant_id: str, now: datetime, report: ExpiryReport) -> None:
        for lot in await self._repo.list_lots(tenant_id):
            if lot.remaining_minor == 0 or lot.expires_at <= now:
                continue
            for days in WARNING_LEAD_DAYS:
                if lot.expires_at - now > timedelta(days=days):
                    continue
                event = OutboxEvent(
                    f"funds_expiring-{days}-{lot.lot_id}",
                    EventKind.FUNDS_EXPIRING,
                    now,
                    {
                        "amount_minor": lot.remaining_minor,
                        "expires_at": lot.expires_at.isoformat(),
                        "days": days,
                        # Used up before the warning is sent, the warning is not sent.
                        "lot_id": lot.lot_id,
                    },
                )
                if await self._repo.insert_event(tenant_id, event):
                    report.warnings.append(event.event_id)
