"""Bot Framework state (`botbuilder.core.Storage`) on Azure Table storage.

One entity per state key:

- PartitionKey = `escape_key(key)` (storage/keys.py: `/ \\ # ?`, control characters and `*`
  become `*xx`; a key still longer than 255 characters is cut and ends in a SHA-256 of the whole
  key), RowKey = "state". Every state item is read and written alone by its key, never queried
  by range and never written together with another, so nothing is gained by grouping items in a
  partition; one item per partition lets the service spread a busy bot over as many servers as it
  likes. The RowKey is a constant rather than "" because some Table implementations and tools
  treat an empty key badly, and a name says what the row is.
- `Key` holds the original key; read() checks it, so two keys that escape to the same
  PartitionKey (possible in principle when a crafted short key equals the cut-and-hashed form
  of a long one) can never hand one conversation the state of another.
- The value, encoded by storage/state_codec.py, is split over `Data00`, `Data01`, ... with the
  count in `DataChunks`: a string property holds at most 64 KiB (32 K UTF-16 code units), an
  entity 1 MiB. Writes are REPLACE, so chunks left over from a longer earlier value disappear.

ETags follow botbuilder's BlobStorage: an item carrying a real `e_tag` (key of a dict, attribute
of a StoreItem) is written only if the stored entity still has that ETag (a deleted or never
written entity counts as changed); `*` or no ETag overwrites; an empty ETag is an error. read()
sets `e_tag` on every dict and StoreItem it returns. botbuilder-python spells the key `e_tag`
(MemoryStorage, BlobStorage, CosmosDbPartitionedStorage, BotState all do), not C#'s `eTag`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableErrorCode, UpdateMode
from azure.data.tables.aio import TableClient
from botbuilder.core import Storage, StoreItem

from storage import state_codec
from storage.keys import escape_key

logger = logging.getLogger(__name__)

ROW_KEY = "state"
KEY_PROPERTY = "Key"
CHUNK_COUNT_PROPERTY = "DataChunks"
ETAG = "e_tag"
WILDCARD_ETAG = "*"

# The service allows 32,768 UTF-16 code units per string; a round figure below it.
CHUNK_UNITS = 32_000
# The service allows 1 MiB per entity, counted as in _entity_bytes; the margin absorbs any
# difference between that documented formula and what the service really counts.
SERVICE_ENTITY_BYTES = 1_048_576
MAX_ENTITY_BYTES = SERVICE_ENTITY_BYTES - 32 * 1024

T = TypeVar("T")


class StateConflictError(Exception):
    """The stored state changed (or was deleted) after the ETag the write carried was read."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"bot state {_shown(key)} was changed or deleted by another writer since it was "
            "read; its ETag no longer matches, so the write was refused"
        )
        self.key = key


class StateTooLargeError(ValueError):
    """The encoded state does not fit in one Table entity; nothing was written."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(
            f"bot state {_shown(key)} encodes to an entity of about {size:,} bytes; "
            f"at most {limit:,} fit in one Table entity"
        )
        self.key = key
        self.size = size
        self.limit = limit


class TableBotStorage(Storage):
    """`botbuilder.core.Storage` on one Azure table, which must already exist."""

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    async def read(self, keys: Iterable[str]) -> dict[str, object]:
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        items = await _gather_all([self._read_one(key) for key in unique])
        return {key: item for key, item in zip(unique, items, strict=True) if item is not _MISSING}

    async def write(self, changes: dict[str, object]) -> None:
        if changes is None:
            raise ValueError("Changes are required when writing")
        if not changes:
            return
        # Every item is encoded and checked before the first request, so an empty ETag or an
        # oversized value leaves the table exactly as it was. The items are separate entities,
        # written concurrently: a conflict on one does not undo the others (as in BlobStorage).
        writes = [_prepare_write(key, item) for key, item in changes.items()]
        await _gather_all([self._write_one(write) for write in writes])

    async def delete(self, keys: Iterable[str]) -> None:
        if keys is None:
            raise ValueError("Keys are required when deleting")
        # delete_entity already ignores an entity that is not there: deleting is idempotent.
        await _gather_all(
            [
                self._table.delete_entity(partition_key=escape_key(key), row_key=ROW_KEY)
                for key in dict.fromkeys(keys)
            ]
        )

    async def _read_one(self, key: str) -> object:
        try:
            entity = await self._table.get_entity(partition_key=escape_key(key), row_key=ROW_KEY)
        except ResourceNotFoundError as error:
            if error.error_code == TableErrorCode.TABLE_NOT_FOUND:
                raise  # a missing table is an outage, not an empty conversation
            return _MISSING
        if entity.get(KEY_PROPERTY) != key:
            logger.error(
                "bot state entity %s holds key %r, not %r; treated as absent",
                entity["PartitionKey"],
                entity.get(KEY_PROPERTY),
                key,
            )
            return _MISSING
        try:
            item = state_codec.decode(_join_chunks(entity))
        except ValueError as error:
            error.add_note(f"while reading bot state {_shown(key)}")
            raise
        etag = entity.metadata["etag"]
        if isinstance(item, dict):
            item[ETAG] = etag
        elif isinstance(item, StoreItem):
            item.e_tag = etag
        return item

    async def _write_one(self, write: _Write) -> None:
        if write.etag is None:
            await self._table.upsert_entity(write.entity, mode=UpdateMode.REPLACE)
            return
        try:
            await self._table.update_entity(
                write.entity,
                mode=UpdateMode.REPLACE,
                etag=write.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as error:  # 412: written by someone else since our read
            raise StateConflictError(write.key) from error
        except ResourceNotFoundError as error:
            if error.error_code == TableErrorCode.TABLE_NOT_FOUND:
                raise
            # Deleted since our read (or never written): BlobStorage fails the precondition
            # here too, and overwriting would resurrect state someone meant to remove.
            raise StateConflictError(write.key) from error


@dataclass(frozen=True)
class _Write:
    key: str
    entity: dict[str, Any]
    etag: str | None  # None: unconditional


class _Missing:
    """Marks a key with no entity; None is a value a caller may have stored."""


_MISSING = _Missing()


def _prepare_write(key: str, item: object) -> _Write:
    if not isinstance(key, str):
        raise TypeError(f"bot state keys must be str, not {type(key).__name__}")
    if _utf16_units(key) > CHUNK_UNITS:
        raise ValueError(f"bot state key {_shown(key)} is too long to store in a Table property")
    etag = _etag_of(item)
    if etag == "":
        raise ValueError(
            f"bot state {_shown(key)} has an empty ETag; use '*' or no ETag to overwrite"
        )
    if etag is not None and not isinstance(etag, str):
        raise TypeError(f"bot state {_shown(key)} has a {type(etag).__name__} ETag, not a str")
    chunks = _split(state_codec.encode(_without_etag(item)))
    entity: dict[str, Any] = {
        "PartitionKey": escape_key(key),
        "RowKey": ROW_KEY,
        KEY_PROPERTY: key,
        CHUNK_COUNT_PROPERTY: len(chunks),
    }
    entity.update((_chunk_property(index), chunk) for index, chunk in enumerate(chunks))
    size = _entity_bytes(entity)
    if size > MAX_ENTITY_BYTES:
        raise StateTooLargeError(key, size, MAX_ENTITY_BYTES)
    return _Write(key, entity, None if etag in (None, WILDCARD_ETAG) else etag)


def _etag_of(item: object) -> object:
    if isinstance(item, dict):
        return item.get(ETAG)
    return getattr(item, ETAG, None)


def _without_etag(item: object) -> object:
    """The item as stored: the ETag belongs to the entity, not to the data."""
    if isinstance(item, dict):
        return {key: value for key, value in item.items() if key != ETAG}
    if ETAG in getattr(item, "__dict__", {}):
        stored = copy.copy(item)  # shallow: the caller's object keeps its ETag
        delattr(stored, ETAG)
        return stored
    return item


def _chunk_property(index: int) -> str:
    return f"Data{index:02d}"


def _split(text: str) -> list[str]:
    """Pieces of at most CHUNK_UNITS UTF-16 code units, never splitting a surrogate pair."""
    data = text.encode("utf-16-le")
    limit = CHUNK_UNITS * 2
    chunks = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        if end < len(data) and 0xD800 <= int.from_bytes(data[end - 2 : end], "little") <= 0xDBFF:
            end -= 2  # the piece would end on a high surrogate: leave it to the next piece
        chunks.append(data[start:end].decode("utf-16-le"))
        start = end
    return chunks


def _join_chunks(entity: dict[str, Any]) -> str:
    count = entity.get(CHUNK_COUNT_PROPERTY)
    if not isinstance(count, int):
        raise ValueError(f"entity {entity.get('PartitionKey')!r} is not bot state (no chunk count)")
    try:
        return "".join(entity[_chunk_property(index)] for index in range(count))
    except KeyError as error:
        raise ValueError(
            f"bot state entity {entity.get('PartitionKey')!r} lacks chunk {error.args[0]}"
        ) from None


def _entity_bytes(entity: dict[str, Any]) -> int:
    """Size as the Table service documents it, Timestamp included: each property 8 bytes plus
    its name, a string 4 bytes plus 2 a UTF-16 code unit, a number at most 8 bytes."""
    size = 4 + 2 * (_utf16_units(entity["PartitionKey"]) + _utf16_units(entity["RowKey"]))
    size += 8 + 2 * len("Timestamp") + 8
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        size += 8 + 2 * _utf16_units(name)
        size += 4 + 2 * _utf16_units(value) if isinstance(value, str) else 8
    return size


def _utf16_units(text: str) -> int:
    # Characters beyond the BMP take two units, which len() counts as one.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _shown(key: str) -> str:
    """The key for a message: whole when short, its start when it is a thousand characters."""
    return repr(key) if len(key) <= 120 else f"{key[:100]!r}... ({len(key)} characters)"


async def _gather_all(calls: list[Awaitable[T]]) -> list[T]:
    """Run concurrently and let every call finish before reporting the first failure, so
    no request is left running unobserved after the caller has moved on."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    for extra in failures[1:]:
        logger.warning("bot storage: a further request failed as well: %r", extra)
    if failures:
        raise failures[0]
    return results
