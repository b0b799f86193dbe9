"""`credits.alerts.AlertStore` on Azure Tables: deliveries and admins' alert preferences, one
partition per tenant.

A delivery's RowKey starts with the inverted event time, so the newest alerts come first and the
history is one short range read. Every state change of a delivery is ETag-guarded: two
dispatchers (two instances, or a wake-up and the sweep) can never both claim the same message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from credits.alerts import AlertPreferences, Delivery, DeliveryClaimed, DeliveryState
from credits.model import EventKind
from credits.repository import Versioned
from storage.keys import escape_key

DELIVERY = "d-"
MAX_TRANSACTION_OPERATIONS = 100
PREFERENCES = "prefs-"
# Milliseconds since the epoch fit 13 digits until the year 2286.
_INVERT = 10**13


class TableAlertStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    # --- deliveries ------------------------------------------------------------------------

    async def create_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Insert the deliveries not yet stored; the number inserted.

        One event's deliveries share the tenant's partition: one transaction inserts them all.
        When one exists already (the fan-out ran before and crashed before marking the event),
        the transaction fails as a whole and each is inserted on its own, skipping duplicates.
        """
        if not deliveries:
            return 0
        if len(deliveries) <= MAX_TRANSACTION_OPERATIONS:
            try:
                await self._table.submit_transaction(
                    [("create", _delivery_entity(d)) for d in deliveries]
                )
                return len(deliveries)
            except TableTransactionError as error:
                if error.status_code != 409:
                    raise

        async def create(delivery: Delivery) -> int:
            try:
                await self._table.create_entity(_delivery_entity(delivery))
            except ResourceExistsError:
                return 0
            return 1

        return sum(await asyncio.gather(*(create(d) for d in deliveries)))

    async def open_deliveries(self, tenant_id: str) -> list[Versioned[Delivery]]:
        """Deliveries still to send or in flight, oldest event first."""
        query = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi "
            "and ( State eq @pending or State eq @sending )",
            parameters={
                "pk": escape_key(tenant_id),
                "lo": DELIVERY,
                "hi": DELIVERY[:-1] + ".",
                "pending": DeliveryState.PENDING.value,
                "sending": DeliveryState.SENDING.value,
            },
        )
        found = [Versioned(_delivery_from(e), e.metadata["etag"]) async for e in query]
        return sorted(found, key=lambda v: (v.value.event_at, v.value.event_id))

    async def recent(self, tenant_id: str, limit: int) -> list[Delivery]:
        """The newest deliveries, newest first (the RowKey order)."""
        query = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": escape_key(tenant_id), "lo": DELIVERY, "hi": DELIVERY[:-1] + "."},
            results_per_page=limit,
        )
        found: list[Delivery] = []
        async for entity in query:
            found.append(_delivery_from(entity))
            if len(found) >= limit:
                break
        return found

    async def save(self, current: Versioned[Delivery], new: Delivery) -> Versioned[Delivery]:
        try:
            result = await self._table.update_entity(
                _delivery_entity(new),
                mode=UpdateMode.REPLACE,
                etag=current.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as error:
            raise DeliveryClaimed(new.message_id) from error
        return Versioned(new, result["etag"])

    async def prune(self, tenant_id: str, before: datetime) -> int:
        """Delete deliveries of alerts older than `before` (finished or not); the number deleted.

        The RowKey carries the inverted event time, so the old rows are one range at the end of
        the partition; they go in transactions of up to 100 deletes.
        """
        inverted = _INVERT - int(before.timestamp() * 1000)
        query = self._table.query_entities(
            "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
            parameters={
                "pk": escape_key(tenant_id),
                "lo": f"{DELIVERY}{inverted:013d}",
                "hi": DELIVERY[:-1] + ".",
            },
            select=["PartitionKey", "RowKey"],
        )
        keys = [(e["PartitionKey"], e["RowKey"]) async for e in query]
        for start in range(0, len(keys), MAX_TRANSACTION_OPERATIONS):
            chunk = keys[start : start + MAX_TRANSACTION_OPERATIONS]
            await self._table.submit_transaction(
                [("delete", {"PartitionKey": pk, "RowKey": rk}) for pk, rk in chunk]
            )
        return len(keys)

    # --- preferences -----------------------------------------------------------------------

    async def preferences(self, tenant_id: str, user_id: str) -> AlertPreferences | None:
        try:
            entity = await self._table.get_entity(
                escape_key(tenant_id), PREFERENCES + escape_key(user_id)
            )
        except ResourceNotFoundError:
            return None
        return _preferences_from(entity)

    async def all_preferences(self, tenant_id: str) -> dict[str, AlertPreferences]:
        query = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={
                "pk": escape_key(tenant_id),
                "lo": PREFERENCES,
                "hi": PREFERENCES[:-1] + ".",
            },
        )
        return {e["UserId"]: _preferences_from(e) async for e in query}

    async def save_preferences(
        self, tenant_id: str, user_id: str, preferences: AlertPreferences
    ) -> None:
        await self._table.upsert_entity(
            {
                "PartitionKey": escape_key(tenant_id),
                "RowKey": PREFERENCES + escape_key(user_id),
                "UserId": user_id,
                "Kinds": json.dumps(sorted(k.value for k in preferences.kinds)),
                "Thresholds": json.dumps(list(preferences.thresholds_minor)),
                "RunwayDays": json.dumps(list(preferences.runway_days)),
            },
            mode=UpdateMode.REPLACE,
        )


def delivery_row_key(delivery: Delivery) -> str:
    inverted = _INVERT - int(delivery.event_at.timestamp() * 1000)
    return f"{DELIVERY}{inverted:013d}-{delivery.message_id}"


def _delivery_entity(d: Delivery) -> dict[str, Any]:
    entity = {
        "PartitionKey": escape_key(d.tenant_id),
        "RowKey": delivery_row_key(d),
        "TenantId": d.tenant_id,
        "EventId": d.event_id,
        "Kind": d.kind.value,
        "EventAt": d.event_at,
        "Data": json.dumps(d.data),
        "ConversationId": d.conversation_id,
        "ConversationKind": d.conversation_kind,
        "Locale": d.locale,
        "Recipient": d.recipient[:200],
        "State": d.state.value,
        "Attempts": d.attempts,
        "NextAt": d.next_at,
        "ClaimedUntil": d.claimed_until,
        "LastError": d.last_error[:500],
        "ActivityId": d.activity_id,
        "UpdatedAt": d.updated_at,
    }
    # A property left out reads back as None; Tables has no null to write.
    return {name: value for name, value in entity.items() if value is not None}


def _delivery_from(entity: dict[str, Any]) -> Delivery:
    return Delivery(
        tenant_id=entity["TenantId"],
        event_id=entity["EventId"],
        kind=EventKind(entity["Kind"]),
        event_at=entity["EventAt"],
        data=json.loads(entity.get("Data") or "{}"),
        conversation_id=entity["ConversationId"],
        conversation_kind=entity.get("ConversationKind", ""),
        locale=entity.get("Locale", ""),
        recipient=entity.get("Recipient", ""),
        state=DeliveryState(entity["State"]),
        attempts=int(entity.get("Attempts") or 0),
        next_at=_time(entity.get("NextAt")),
        claimed_until=_time(entity.get("ClaimedUntil")),
        last_error=entity.get("LastError", ""),
        activity_id=entity.get("ActivityId", ""),
        updated_at=_time(entity.get("UpdatedAt")),
    )


def _time(value: Any) -> datetime | None:
    # Tables drops properties written as None, and returns datetimes as TablesEntityDatetime.
    return value if isinstance(value, datetime) else None


def _preferences_from(entity: dict[str, Any]) -> AlertPreferences:
    known = {kind.value for kind in EventKind}
    kinds = frozenset(EventKind(k) for k in json.loads(entity.get("Kinds") or "[]") if k in known)
    if "RunwayDays" not in entity:
        # Saved before the runway alert existed: the admin never chose against it, and every
        # kind is on until chosen off.
        kinds |= {EventKind.RUNWAY_LOW}
    return AlertPreferences(
        kinds,
        tuple(json.loads(entity.get("Thresholds") or "[]")),
        tuple(json.loads(entity.get("RunwayDays") or "[]")),
    )
