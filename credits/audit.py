"""The audit port: who changed what in a tenant's settings, and when. Append-only.

Licence changes (who was given or lost the licence, and the result for each user), auto-recharge
settings, alert settings and the channels alerts go to. `storage/audit.py` keeps them in Azure
Tables, newest first; `history` shows a period of them.

Details are plain data, written as the change was made (a card's brand and last four digits,
not a reference that may be gone when the history is read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from credits.alerts import CHOOSABLE_KINDS, AlertPreferences
from credits.auto_recharge_settings import AGREEMENT
from credits.model import Account


class AuditAction(StrEnum):
    LICENCE_ASSIGN = "licence.assign"
    LICENCE_REMOVE = "licence.remove"
    AUTO_RECHARGE = "auto_recharge"
    ALERT_SETTINGS = "alert_settings"
    ALERTS_HERE = "alerts_here"
    STOP_ALERTS_HERE = "stop_alerts_here"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    """Who: an admin's Entra object id."""
    action: str
    """An `AuditAction` value (an entry of a later version may hold another)."""
    details: dict[str, Any] = field(default_factory=dict)


class AuditTrail(Protocol):
    async def record(
        self, tenant_id: str, actor: str, action: AuditAction, details: dict[str, Any]
    ) -> None: ...

    async def between(
        self, tenant_id: str, start: datetime, end: datetime, limit: int
    ) -> list[AuditEntry]:
        """Entries from `start` (included) to `end` (excluded), newest first, at most
        `limit`."""


def auto_recharge_details(account: Account) -> dict[str, Any]:
    """Auto-recharge as an admin saved it: on or off, the amounts and what pays."""
    saved = account.auto_recharge
    details: dict[str, Any] = {"enabled": saved.enabled, "currency": account.currency}
    if not saved.enabled:
        return details
    details |= {
        "recharge_with_minor": saved.recharge_with_minor,
        "trigger_minor": saved.trigger_minor,
    }
    card = account.card(saved.method_id) if saved.method_id else None
    if card is not None:
        details |= {"card_brand": card.brand, "card_last4": card.last4}
    elif saved.method_id.startswith(AGREEMENT):
        details["agreement"] = saved.method_id[len(AGREEMENT) :]
    return details


def alert_settings_details(preferences: AlertPreferences, currency: str) -> dict[str, Any]:
    """An admin's alert choices: the kinds switched off, and their low-balance thresholds."""
    return {
        "kinds_off": [kind.value for kind in CHOOSABLE_KINDS if kind not in preferences.kinds],
        "thresholds_minor": list(preferences.thresholds_minor),
        "currency": currency,
    }
