"""`credits.conversations.Conversations` on Azure Tables: one partition per tenant, one row per
conversation (RowKey = the escaped conversation id), the reference as JSON text; and the chat
cards that opened a processor's hosted page (`TableCheckoutCards`), on a table of their own."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from credits.conversations import CheckoutCard, ConversationConflict, StoredConversation
from credits.repository import Versioned
from storage.keys import escape_key

logger = logging.getLogger(__name__)


class ConversationRepository:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def upsert(
        self,
        *,
        tenant_id: str,
        conversation_id: str,
        reference: dict[str, Any],
        kind: str,
        locale: str,
        user_aad_object_id: str = "",
        active: bool = True,
        team_id: str = "",
        team_name: str = "",
        channel_name: str = "",
    ) -> bool:
        """Store or refresh a reference; True when it was new or had been inactive.

        The answer decides whether to welcome: Teams announces one installation with both a
        conversationUpdate and an installationUpdate, and the admin should be welcomed once.
        """
        row_key = escape_key(conversation_id)
        entity = {
            "PartitionKey": escape_key(tenant_id),
            "RowKey": row_key,
            "TenantId": tenant_id,
            "ConversationId": conversation_id,
            "Kind": kind,
            "Reference": json.dumps(reference),
            "Locale": locale,
            "UserAadObjectId": user_aad_object_id,
            "Active": active,
            "UpdatedAt": datetime.now(UTC),
            # Names only when given: the merge below keeps what an earlier activity said.
            **_names(team_id=team_id, team_name=team_name, channel_name=channel_name),
        }
        for _attempt in range(5):
            try:
                current = await self._table.get_entity(entity["PartitionKey"], row_key)
            except ResourceNotFoundError:
                current = None
            if current is None:
                try:
                    await self._table.create_entity(entity)
                    return active
                except ResourceExistsError:
                    continue  # another instance created it meanwhile; read it again
            was_active = bool(current.get("Active"))
            try:
                await self._table.update_entity(
                    # Merge keeps a channel's alert subscription; a reinstall starts unsubscribed.
                    entity if was_active else {**entity, "Subscribed": False},
                    mode=UpdateMode.MERGE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return active and not was_active
            except ResourceModifiedError:
                continue
        raise ConversationConflict(f"conversation {conversation_id!r} kept changing underfoot")

    async def deactivate(self, tenant_id: str, conversation_id: str) -> None:
        try:
            await self._table.update_entity(
                {
                    "PartitionKey": escape_key(tenant_id),
                    "RowKey": escape_key(conversation_id),
                    "Active": False,
                    "UpdatedAt": datetime.now(UTC),
                },
                mode=UpdateMode.MERGE,
            )
        except ResourceNotFoundError:
            logger.info("uninstall for a conversation never stored: %s", conversation_id)

    async def get(self, tenant_id: str, conversation_id: str) -> StoredConversation | None:
        try:
            entity = await self._table.get_entity(
                escape_key(tenant_id), escape_key(conversation_id)
            )
        except ResourceNotFoundError:
            return None
        return _to_stored(entity)

    async def set_subscribed(
        self, tenant_id: str, conversation_id: str, subscribed: bool, by: str
    ) -> bool:
        """Subscribe a stored conversation to alerts (or not); False when it is not stored."""
        try:
            await self._table.update_entity(
                {
                    "PartitionKey": escape_key(tenant_id),
                    "RowKey": escape_key(conversation_id),
                    "Subscribed": subscribed,
                    "SubscribedBy": by,
                },
                mode=UpdateMode.MERGE,
            )
        except ResourceNotFoundError:
            return False
        return True

    async def list_active(self, tenant_id: str) -> list[StoredConversation]:
        query = self._table.query_entities(
            "PartitionKey eq @tenant and Active eq true",
            parameters={"tenant": escape_key(tenant_id)},
        )
        return [_to_stored(entity) async for entity in query]

    async def set_names(
        self, tenant_id: str, team_id: str, team_name: str, channel_names: Mapping[str, str]
    ) -> int:
        """Merge the names into each stored channel of the team (a team has a few channels)."""
        query = self._table.query_entities(
            "PartitionKey eq @tenant and TeamId eq @team",
            parameters={"tenant": escape_key(tenant_id), "team": team_id},
            select=["PartitionKey", "RowKey", "ConversationId"],
        )
        updated = 0
        async for entity in query:
            names = _names(
                team_name=team_name, channel_name=channel_names.get(entity["ConversationId"], "")
            )
            if not names:
                continue
            try:
                await self._table.update_entity(
                    {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], **names},
                    mode=UpdateMode.MERGE,
                )
            except ResourceNotFoundError:
                continue
            updated += 1
        return updated


def _names(**names: str) -> dict[str, str]:
    """The non-empty names as entity properties (TeamId, TeamName, ChannelName)."""
    columns = {"team_id": "TeamId", "team_name": "TeamName", "channel_name": "ChannelName"}
    return {columns[key]: value for key, value in names.items() if value}


def _to_stored(entity: dict) -> StoredConversation:
    return StoredConversation(
        tenant_id=entity["TenantId"],
        conversation_id=entity["ConversationId"],
        kind=entity["Kind"],
        reference=json.loads(entity["Reference"]),
        locale=entity.get("Locale", ""),
        user_aad_object_id=entity.get("UserAadObjectId", ""),
        active=bool(entity.get("Active")),
        updated_at=entity["UpdatedAt"],
        subscribed=bool(entity.get("Subscribed")),
        subscribed_by=entity.get("SubscribedBy", ""),
        team_id=entity.get("TeamId", ""),
        team_name=entity.get("TeamName", ""),
        channel_name=entity.get("ChannelName", ""),
    )


class TableCheckoutCards:
    """`credits.conversations.CheckoutCards` on its own table: one partition per tenant, one
    row per key of an order or setup that opened a hosted page."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def remember(self, card: CheckoutCard) -> None:
        entity = {
            "PartitionKey": escape_key(card.tenant_id),
            "RowKey": escape_key(card.key),
            "TenantId": card.tenant_id,
            "Key": card.key,
            "Reference": json.dumps(card.reference),
            "ActivityId": card.activity_id,
            "Locale": card.locale,
            "Purpose": card.purpose,
            "Told": card.told,
        }
        # The same order's card shown again (a repeat) replaces the one it was.
        await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def get(self, tenant_id: str, key: str) -> Versioned[CheckoutCard] | None:
        try:
            entity = await self._table.get_entity(escape_key(tenant_id), escape_key(key))
        except ResourceNotFoundError:
            return None
        card = CheckoutCard(
            tenant_id=entity["TenantId"],
            key=entity["Key"],
            reference=json.loads(entity["Reference"]),
            activity_id=entity.get("ActivityId", ""),
            locale=entity.get("Locale", ""),
            purpose=entity.get("Purpose", ""),
            told=bool(entity.get("Told")),
        )
        return Versioned(card, entity.metadata["etag"])

    async def claim(self, current: Versioned[CheckoutCard]) -> Versioned[CheckoutCard] | None:
        return await self._mark(current, told=True)

    async def release(self, claimed: Versioned[CheckoutCard]) -> None:
        await self._mark(claimed, told=False)

    async def _mark(
        self, current: Versioned[CheckoutCard], *, told: bool
    ) -> Versioned[CheckoutCard] | None:
        card = current.value
        try:
            metadata = await self._table.update_entity(
                {
                    "PartitionKey": escape_key(card.tenant_id),
                    "RowKey": escape_key(card.key),
                    "Told": told,
                },
                mode=UpdateMode.MERGE,
                etag=current.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return Versioned(replace(card, told=told), metadata["etag"])
