"""The directory port on Azure Tables: what the local stack and the tests use instead of Graph.

One partition per tenant in one table (`<prefix>Directory`). Row keys:

    user-<escaped user id>   a user: names, usage location, licences (SkuIds, JSON list of SKU
                             ids) and directory roles (Roles, JSON list of role template ids)
    sku-<sku id>             a subscribed SKU: part number, service plans (JSON), Enabled, Consumed

It behaves as Graph does where the product depends on it: a licence change fails for a user
without a usage location and when a SKU has no free seat, and adds and removes as one step.
Seats are counted on the SKU row. A change writes the user and every SKU it touches in one
entity-group transaction (they share the tenant's partition) with If-Match on each, so
concurrent assignments can never hand out more seats than are enabled: a writer that loses the
race reads again and decides again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from credits.directory import (
    DirectoryError,
    DirectoryProblem,
    DirectoryUser,
    Sku,
)
from storage.keys import escape_key
from storage.tables import TableStore

logger = logging.getLogger(__name__)

USER = "user-"
SKU = "sku-"
# Each lost race costs one read and one transaction; with N writers on one SKU the last one
# decides within N rounds.
MAX_ATTEMPTS = 30
_PREFIX_QUERY = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"


class EmbeddedDirectory:
    """`credits.directory.Directory` on an Azure Table."""

    def __init__(self, table: TableClient, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        self._table = table
        self._max_attempts = max(1, max_attempts)

    @classmethod
    def on(cls, store: TableStore) -> EmbeddedDirectory:
        return cls(store.table(store.names.directory))

    @property
    def table(self) -> TableClient:
        return self._table

    # --- the port ---------------------------------------------------------------------------

    async def list_users(self, tenant_id: str) -> AsyncIterator[DirectoryUser]:
        async for entity in self._query_prefix(tenant_id, USER):
            yield _user_from(entity)

    async def get_user(self, tenant_id: str, user_id: str) -> DirectoryUser:
        return _user_from(await self._user_entity(tenant_id, user_id))

    async def subscribed_skus(self, tenant_id: str) -> list[Sku]:
        return [_sku_from(entity) async for entity in self._query_prefix(tenant_id, SKU)]

    async def role_template_ids(self, tenant_id: str, user_id: str) -> frozenset[str]:
        entity = await self._user_entity(tenant_id, user_id)
        return frozenset(json.loads(entity.get("Roles") or "[]"))

    async def assign_licenses(
        self, tenant_id: str, user_id: str, *, add: list[str], remove: list[str]
    ) -> DirectoryUser:
        adding_ids = _normalised(add)
        removing_ids = _normalised(remove)
        if set(adding_ids) & set(removing_ids):
            raise ValueError("a licence cannot be added and removed in one change")
        for attempt in range(1, self._max_attempts + 1):
            entity = await self._user_entity(tenant_id, user_id)
            user = _user_from(entity)
            held = {sku_id.lower() for sku_id in user.sku_ids}
            # Already held, or already gone: no change and no seat, as with Graph.
            adding = [sku_id for sku_id in adding_ids if sku_id not in held]
            removing = [sku_id for sku_id in removing_ids if sku_id in held]
            if adding and not user.usage_location:
                raise DirectoryError(DirectoryProblem.NO_USAGE_LOCATION, user.id)
            if not adding and not removing:
                return user
            skus = {
                sku_id: await self._sku_entity(tenant_id, sku_id) for sku_id in adding + removing
            }
            for sku_id in adding:
                if _int(skus[sku_id]["Consumed"]) >= _int(skus[sku_id]["Enabled"]):
                    raise DirectoryError(DirectoryProblem.NO_SEATS, sku_id)
            licences = [s for s in user.sku_ids if s.lower() not in removing] + adding
            operations: list[tuple[Any, ...]] = [
                _merge({**_keys(entity), "SkuIds": json.dumps(licences)}, entity)
            ]
            for sku_id in adding + removing:
                sku = skus[sku_id]
                consumed = _int(sku["Consumed"]) + (1 if sku_id in adding else -1)
                operations.append(_merge({**_keys(sku), "Consumed": consumed}, sku))
            try:
                await self._table.submit_transaction(operations)
            except TableTransactionError as error:
                # 412: the user or a SKU changed since it was read; 404: one was deleted.
                if error.status_code not in (404, 412):
                    raise
                logger.debug("licence change for %s lost a race (attempt %d)", user.id, attempt)
                # A little jitter so the writers that lost do not collide again in lockstep.
                await asyncio.sleep(random.uniform(0, 0.005 * attempt))
                continue
            return replace(user, sku_ids=frozenset(licences))
        logger.warning("licence change for %s in %s kept losing races", user_id, tenant_id)
        raise DirectoryError(DirectoryProblem.THROTTLED, "too many concurrent licence changes")

    # --- filling it -------------------------------------------------------------------------

    async def add_user(
        self, tenant_id: str, user: DirectoryUser, *, roles: Iterable[str] = ()
    ) -> bool:
        """Inserts the user unless one with this id exists; True when inserted.

        Seats are not counted here: whoever adds users with licences sets the SKUs' consumed
        units to match (as `seed_demo_tenant` does).
        """
        return await _create(self._table, _user_entity(tenant_id, user, roles))

    async def add_sku(self, tenant_id: str, sku: Sku) -> bool:
        """Inserts the SKU unless it exists; True when inserted."""
        return await _create(self._table, _sku_entity(tenant_id, sku))

    async def fill(
        self,
        tenant_id: str,
        users: Iterable[tuple[DirectoryUser, Iterable[str]]],
        skus: Iterable[Sku],
    ) -> int:
        """Insert the SKUs and users (with their roles) that are not there yet; rows added.

        Idempotent: rows that exist are left as they are. An empty tenant is filled in one
        transaction, so its seats always match its users.
        """
        entities = [_sku_entity(tenant_id, sku) for sku in skus]
        entities += [_user_entity(tenant_id, user, roles) for user, roles in users]
        try:
            await self._table.submit_transaction([("create", entity) for entity in entities])
            return len(entities)
        except TableTransactionError as error:
            if error.status_code != 409:
                raise
        # Some rows exist (filled before, or concurrently): add only what is missing.
        created = 0
        for entity in entities:
            created += await _create(self._table, entity)
        return created

    # --- rows -------------------------------------------------------------------------------

    async def _user_entity(self, tenant_id: str, user_id: str) -> Any:
        try:
            return await self._table.get_entity(escape_key(tenant_id), _user_key(user_id))
        except ResourceNotFoundError as error:
            raise DirectoryError(DirectoryProblem.USER_NOT_FOUND, user_id) from error

    async def _sku_entity(self, tenant_id: str, sku_id: str) -> Any:
        try:
            return await self._table.get_entity(escape_key(tenant_id), _sku_key(sku_id))
        except ResourceNotFoundError as error:
            # Graph: "License … does not correspond to a valid company License."
            raise DirectoryError(
                DirectoryProblem.REJECTED, f"the tenant has no subscription for {sku_id}"
            ) from error

    def _query_prefix(self, tenant_id: str, prefix: str):
        return self._table.query_entities(
            _PREFIX_QUERY,
            parameters={
                "pk": escape_key(tenant_id),
                "lo": prefix,
                "hi": prefix[:-1] + chr(ord(prefix[-1]) + 1),
            },
        )


async def _create(table: TableClient, entity: dict[str, Any]) -> bool:
    """Insert-if-absent: True when inserted, False when the row was there."""
    try:
        await table.create_entity(entity)
    except ResourceExistsError:
        return False
    return True


def _normalised(sku_ids: Iterable[str]) -> list[str]:
    # SKU ids are GUIDs: compared without case, each once, in the caller's order.
    return list(dict.fromkeys(sku_id.lower() for sku_id in sku_ids))


def _int(value: Any) -> int:
    return int(getattr(value, "value", value))


def _keys(entity: Any) -> dict[str, str]:
    return {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}


def _merge(entity: dict[str, Any], current: Any) -> tuple[Any, ...]:
    """A transaction update of the given properties, valid only on the row as it was read."""
    return (
        "update",
        entity,
        {
            "mode": UpdateMode.MERGE,
            "etag": current.metadata["etag"],
            "match_condition": MatchConditions.IfNotModified,
        },
    )


def _user_key(user_id: str) -> str:
    return USER + escape_key(user_id)


def _sku_key(sku_id: str) -> str:
    return SKU + escape_key(sku_id.lower())


def _user_entity(tenant_id: str, user: DirectoryUser, roles: Iterable[str]) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(tenant_id),
        "RowKey": _user_key(user.id),
        "TenantId": tenant_id,
        "UserId": user.id,
        "DisplayName": user.display_name,
        "UserPrincipalName": user.user_principal_name,
        "UsageLocation": user.usage_location,
        "SkuIds": json.dumps(sorted(s.lower() for s in user.sku_ids)),
        "Roles": json.dumps(sorted(roles)),
    }


def _user_from(entity: Any) -> DirectoryUser:
    return DirectoryUser(
        id=entity["UserId"],
        display_name=entity.get("DisplayName") or "",
        user_principal_name=entity.get("UserPrincipalName") or "",
        usage_location=entity.get("UsageLocation") or "",
        sku_ids=frozenset(json.loads(entity.get("SkuIds") or "[]")),
    )


def _sku_entity(tenant_id: str, sku: Sku) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(tenant_id),
        "RowKey": _sku_key(sku.sku_id),
        "TenantId": tenant_id,
        "SkuId": sku.sku_id.lower(),
        "PartNumber": sku.part_number,
        "Enabled": sku.enabled_units,
        "Consumed": sku.consumed_units,
        "ServicePlans": json.dumps(sorted(sku.service_plans)),
    }


def _sku_from(entity: Any) -> Sku:
    return Sku(
        sku_id=entity["SkuId"],
        part_number=entity.get("PartNumber") or "",
        enabled_units=_int(entity["Enabled"]),
        consumed_units=_int(entity["Consumed"]),
        service_plans=frozenset(json.loads(entity.get("ServicePlans") or "[]")),
    )
