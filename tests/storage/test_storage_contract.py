"""One contract for every `botbuilder.core.Storage` the bot may run on.

The same tests run against botbuilder's MemoryStorage (the reference behaviour) and against
TableBotStorage on Azurite. Where the two differ in a detail (MemoryStorage returns no ETag for an
item written without one, and does not version an item until one with an ETag is stored), the
contract asserts only what both do; the Table-only tests at the end pin down the rest.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from botbuilder.core import (
    ConversationState,
    MemoryStorage,
    MessageFactory,
    Storage,
    StoreItem,
    TurnContext,
)
from botbuilder.core.adapters import TestAdapter
from botbuilder.dialogs import (
    DialogSet,
    DialogState,
    DialogTurnStatus,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import ChoicePrompt, PromptOptions, TextPrompt
from botbuilder.schema import ActionTypes, CardAction

from storage import state_codec
from storage.bot_state import (
    CHUNK_UNITS,
    MAX_ENTITY_BYTES,
    ROW_KEY,
    StateConflictError,
    StateTooLargeError,
    TableBotStorage,
)
from storage.keys import escape_key
from storage.tables import TableStore


@dataclass(frozen=True)
class Backend:
    name: str
    storage: Storage
    # A new storage object over the same data: what a restarted process would build.
    restart: Callable[[], Storage]
    # What a write with a stale ETag raises (MemoryStorage: KeyError).
    conflict_error: type[Exception]
    # What write(None) and an empty ETag raise (MemoryStorage: a bare Exception).
    invalid_write_error: type[Exception]


@pytest.fixture(params=["memory", "table"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        memory = MemoryStorage()
        return Backend("memory", memory, lambda: memory, KeyError, Exception)
    store: TableStore = request.getfixturevalue("table_store")

    def table_storage() -> TableBotStorage:
        return TableBotStorage(store.table(store.names.bot_state))

    return Backend("table", table_storage(), table_storage, StateConflictError, ValueError)


def data_of(item: object) -> dict[str, Any]:
    """An item's data without its ETag, for comparing what was written with what was read."""
    fields = dict(item) if isinstance(item, dict) else dict(vars(item))
    fields.pop("e_tag", None)
    return fields


def a_dict(count: int, e_tag: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"count": count, "note": f"version {count}"}
    if e_tag is not None:
        item["e_tag"] = e_tag
    return item


def a_store_item(count: int, e_tag: str | None = None) -> StoreItem:
    item = StoreItem(count=count, note=f"version {count}")
    if e_tag is not None:
        item.e_tag = e_tag
    return item


ITEM_KINDS = pytest.mark.parametrize("make", [a_dict, a_store_item], ids=["dict", "StoreItem"])


def etag_of(item: object) -> str:
    return item["e_tag"] if isinstance(item, dict) else item.e_tag


async def versioned(storage: Storage, key: str, make: Callable[..., object]) -> str:
    """Store version 1 of `key` and return its current ETag.

    Written twice with "*": MemoryStorage keeps "*" as the ETag of a new item and starts numbering
    only from the second write, and a test of "the current ETag" must not be holding "*".
    """
    await storage.write({key: make(0, "*")})
    await storage.write({key: make(1, "*")})
    etag = etag_of((await storage.read([key]))[key])
    assert etag and etag != "*"
    return etag


# --- the contract ------------------------------------------------------------------------------


async def test_reading_unknown_keys_returns_nothing(backend: Backend) -> None:
    assert await backend.storage.read(["unknown"]) == {}
    assert await backend.storage.read([]) == {}


async def test_writing_nothing_is_fine_and_writing_none_is_an_error(backend: Backend) -> None:
    await backend.storage.write({})
    with pytest.raises(backend.invalid_write_error):
        await backend.storage.write(None)


async def test_dict_round_trip(backend: Backend) -> None:
    value = {
        "name": "Zoë 😀",
        "count": 2**40,
        "ratio": 0.25,
        "flags": [True, False, None],
        "nested": {"list": [1, "two", {"three": 3}], "empty": {}},
    }
    await backend.storage.write({"conversation": copy.deepcopy(value)})

    read = await backend.storage.read(["conversation"])

    assert list(read) == ["conversation"]
    assert data_of(read["conversation"]) == value


async def test_store_item_round_trip(backend: Backend) -> None:
    await backend.storage.write({"item": StoreItem(name="Ada", scores=[1, 2], e_tag="*")})

    item = (await backend.storage.read(["item"]))["item"]

    assert isinstance(item, StoreItem)
    assert data_of(item) == {"name": "Ada", "scores": [1, 2]}
    assert item.e_tag


async def test_several_items_are_written_read_and_deleted_together(backend: Backend) -> None:
    await backend.storage.write({"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}})

    read = await backend.storage.read(["a", "b", "c", "missing"])
    assert {key: data_of(item) for key, item in read.items()} == {
        "a": {"n": 1},
        "b": {"n": 2},
        "c": {"n": 3},
    }

    await backend.storage.delete(["a", "c", "never-written"])

    remaining = await backend.storage.read(["a", "b", "c"])
    assert {key: data_of(item) for key, item in remaining.items()} == {"b": {"n": 2}}


async def test_deleting_a_missing_key_is_fine(backend: Backend) -> None:
    await backend.storage.delete(["never-written"])

    assert await backend.storage.read(["never-written"]) == {}


@ITEM_KINDS
async def test_current_etag_updates_and_stale_etag_is_refused(
    backend: Backend, make: Callable[..., object]
) -> None:
    first = await versioned(backend.storage, "item", make)

    await backend.storage.write({"item": make(2, first)})
    second = etag_of((await backend.storage.read(["item"]))["item"])
    assert second != first

    with pytest.raises(backend.conflict_error):
        await backend.storage.write({"item": make(3, first)})

    assert data_of((await backend.storage.read(["item"]))["item"]) == data_of(make(2))


@ITEM_KINDS
async def test_wildcard_or_no_etag_overwrites_whatever_is_stored(
    backend: Backend, make: Callable[..., object]
) -> None:
    stale = await versioned(backend.storage, "item", make)
    await backend.storage.write({"item": make(2, stale)})  # makes `stale` stale

    await backend.storage.write({"item": make(3, "*")})
    assert data_of((await backend.storage.read(["item"]))["item"]) == data_of(make(3))

    await backend.storage.write({"item": make(4)})
    assert data_of((await backend.storage.read(["item"]))["item"]) == data_of(make(4))


@ITEM_KINDS
async def test_empty_etag_is_an_error_and_changes_nothing(
    backend: Backend, make: Callable[..., object]
) -> None:
    await versioned(backend.storage, "item", make)

    with pytest.raises(backend.invalid_write_error):
        await backend.storage.write({"item": make(2, "")})

    assert data_of((await backend.storage.read(["item"]))["item"]) == data_of(make(1))


AWKWARD_KEYS = [
    "msteams/conversations/a:1xyz-ABC_123;messageid=1680000000000/",
    "back\\slash",
    "hash#tag",
    "question?mark",
    "star*2f",  # what "/" escapes to must not meet "/" itself
    "/",
    "controls \x00\x01\t\n\x1f\x7f\x80\x9f end",
    "ünïcødé/日本語/😀/\u200b",
    '!@#$%^&*()_+??><":QASD~`',
    "x" * 1000,
    "/" * 1000,
]


async def test_awkward_keys_round_trip_without_colliding(backend: Backend) -> None:
    changes = {key: {"index": index} for index, key in enumerate(AWKWARD_KEYS)}
    await backend.storage.write(changes)

    read = await backend.storage.read(AWKWARD_KEYS)

    assert {key: data_of(item) for key, item in read.items()} == changes

    await backend.storage.delete(AWKWARD_KEYS)
    assert await backend.storage.read(AWKWARD_KEYS) == {}


async def test_long_keys_sharing_a_long_prefix_do_not_collide(backend: Backend) -> None:
    prefix = "msteams/conversations/" + "p" * 300
    first, second = prefix + "/first", prefix + "/second"
    await backend.storage.write({first: {"who": "first"}, second: {"who": "second"}})

    read = await backend.storage.read([first, second])

    assert data_of(read[first]) == {"who": "first"}
    assert data_of(read[second]) == {"who": "second"}


async def test_a_300_kib_value_round_trips(backend: Backend) -> None:
    text = ("0123456789abcdef" * 64 + "é€😀\n") * 300  # ~300 KiB, non-ASCII throughout
    assert len(text.encode("utf-8")) > 300 * 1024
    await backend.storage.write({"big": {"text": text}})

    assert (await backend.storage.read(["big"]))["big"]["text"] == text


async def test_concurrent_writers_with_the_same_etag_exactly_one_wins(backend: Backend) -> None:
    etag = await versioned(backend.storage, "contested", a_dict)

    outcomes = await asyncio.gather(
        *(
            backend.storage.write({"contested": {"writer": writer, "e_tag": etag}})
            for writer in range(10)
        ),
        return_exceptions=True,
    )

    winners = [writer for writer, outcome in enumerate(outcomes) if outcome is None]
    assert len(winners) == 1
    losers = [outcome for outcome in outcomes if outcome is not None]
    assert all(isinstance(outcome, backend.conflict_error) for outcome in losers), losers
    stored = (await backend.storage.read(["contested"]))["contested"]
    assert data_of(stored) == {"writer": winners[0]}


async def test_waterfall_with_prompts_survives_a_restart_between_turns(backend: Backend) -> None:
    """Every turn builds storage, ConversationState and dialogs afresh: only stored data links
    one turn to the next, as when each message reaches a newly started process."""
    started = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    stored: dict[str, Any] = {}

    async def ask_name(step: WaterfallStepContext):
        step.values["started"] = step.options["started"]
        return await step.prompt("name", PromptOptions(prompt=MessageFactory.text("Your name?")))

    async def ask_colour(step: WaterfallStepContext):
        step.values["name"] = step.result
        return await step.prompt(
            "colour",
            PromptOptions(
                prompt=MessageFactory.text(f"Which colour, {step.result}?"),
                retry_prompt=MessageFactory.text("Please pick red, green or blue."),
                choices=[
                    Choice("red", synonyms=["crimson", "scarlet"]),
                    Choice(
                        "green",
                        action=CardAction(type=ActionTypes.im_back, title="Green", value="green"),
                    ),
                    Choice("blue"),
                ],
                style=ListStyle.none,
            ),
        )

    async def finish(step: WaterfallStepContext):
        since = step.values["started"]
        assert since == started and since.utcoffset() is not None
        await step.context.send_activity(
            f"{step.values['name']} likes {step.result.value} (asked {since.isoformat()})"
        )
        return await step.end_dialog()

    async def turn(turn_context: TurnContext) -> None:
        conversation_state = ConversationState(backend.restart())
        dialogs = DialogSet(conversation_state.create_property("DialogState"))
        dialogs.add(TextPrompt("name"))
        dialogs.add(ChoicePrompt("colour"))
        dialogs.add(WaterfallDialog("profile", [ask_name, ask_colour, finish]))
        dialog_context = await dialogs.create_context(turn_context)
        result = await dialog_context.continue_dialog()
        if result.status == DialogTurnStatus.Empty:
            await dialog_context.begin_dialog("profile", {"started": started})
        await conversation_state.save_changes(turn_context)
        stored["key"] = conversation_state.get_storage_key(turn_context)

    adapter = TestAdapter(turn)

    flow = await adapter.send("hi")
    flow = await flow.assert_reply("Your name?")
    flow = await flow.send("Ada")
    flow = await flow.assert_reply("Which colour, Ada?")

    # Between turns the whole conversation is in storage, objects included.
    state = (await backend.restart().read([stored["key"]]))[stored["key"]]
    stack = state["DialogState"].dialog_stack
    assert [instance.id for instance in stack] == ["colour", "profile"]  # top first
    options = stack[0].state["options"]
    assert isinstance(options, PromptOptions)
    assert [choice.value for choice in options.choices] == ["red", "green", "blue"]
    assert options.choices[1].action.title == "Green"
    assert options.style == ListStyle.none

    flow = await flow.send("purple")
    flow = await flow.assert_reply("Please pick red, green or blue.")
    flow = await flow.send("crimson")
    flow = await flow.assert_reply("Ada likes red (asked 2024-05-06T07:08:09+00:00)")

    state = (await backend.restart().read([stored["key"]]))[stored["key"]]
    assert isinstance(state["DialogState"], DialogState)
    assert state["DialogState"].dialog_stack == []

    # The finished flow starts over rather than resuming.
    flow = await flow.send("hello again")
    await flow.assert_reply("Your name?")


# --- Table storage only -------------------------------------------------------------------------


@pytest.fixture
def table(table_store: TableStore):
    return table_store.table(table_store.names.bot_state)


@pytest.fixture
def storage(table) -> TableBotStorage:
    return TableBotStorage(table)


@pytest.fixture
async def counted(azurite, table_prefix: str, table_store: TableStore):
    """TableBotStorage on the same tables, with every HTTP request it makes recorded."""
    requests: list[Any] = []
    store = TableStore.from_settings(
        connection_string=azurite.connection_string,
        account_url="",
        prefix=table_prefix,
        request_hook=requests.append,
    )
    yield TableBotStorage(store.table(store.names.bot_state)), requests
    await store.close()


async def test_read_returns_the_entity_etag_even_for_items_written_without_one(
    storage: TableBotStorage, table
) -> None:
    await storage.write({"plain": {"n": 1}, "item": StoreItem(n=2)})

    read = await storage.read(["plain", "item"])

    plain_entity = await table.get_entity(escape_key("plain"), ROW_KEY)
    item_entity = await table.get_entity(escape_key("item"), ROW_KEY)
    assert read["plain"]["e_tag"] == plain_entity.metadata["etag"]
    assert read["item"].e_tag == item_entity.metadata["etag"]


async def test_the_etag_is_not_stored_as_data(storage: TableBotStorage, table) -> None:
    await storage.write({"plain": {"n": 1, "e_tag": "*"}})

    entity = await table.get_entity(escape_key("plain"), ROW_KEY)

    assert json.loads(entity["Data00"]) == {"n": 1}


async def test_a_stale_etag_raises_a_conflict_naming_the_key(storage: TableBotStorage) -> None:
    key = "msteams/conversations/a:1stale/"
    etag = await versioned(storage, key, a_dict)
    await storage.write({key: a_dict(2, etag)})

    with pytest.raises(StateConflictError, match="a:1stale") as raised:
        await storage.write({key: a_dict(3, etag)})

    assert raised.value.key == key


async def test_an_etag_for_a_missing_item_is_a_conflict(storage: TableBotStorage) -> None:
    etag = await versioned(storage, "gone", a_dict)
    await storage.delete(["gone"])

    with pytest.raises(StateConflictError):
        await storage.write({"gone": a_dict(2, etag)})
    with pytest.raises(StateConflictError):
        await storage.write({"never-written": a_dict(1, etag)})

    assert await storage.read(["gone", "never-written"]) == {}


async def test_an_empty_etag_is_refused_before_any_request(counted) -> None:
    storage, requests = counted

    with pytest.raises(ValueError, match="'item' has an empty ETag"):
        await storage.write({"item": a_dict(1, "")})

    assert requests == []


async def test_a_value_over_1_mib_is_refused_before_any_request(counted) -> None:
    storage, requests = counted
    await storage.write({"conversation": {"text": "kept"}})
    requests.clear()
    huge = {"text": "x" * (600 * 1024)}  # 1.2 MB as UTF-16

    with pytest.raises(StateTooLargeError, match=r"'conversation'.*bytes") as raised:
        await storage.write({"conversation": huge, "bystander": {"n": 1}})

    assert requests == []
    assert raised.value.size > 1_048_576
    assert isinstance(raised.value, ValueError)
    read = await storage.read(["conversation", "bystander"])
    assert list(read) == ["conversation"]
    assert read["conversation"]["text"] == "kept"


async def test_a_value_just_under_the_limit_round_trips(storage: TableBotStorage, table) -> None:
    # ~15 chunks and about 50 KB below the margin-reduced limit: the limit is not too strict.
    text = "y" * ((MAX_ENTITY_BYTES - 50_000) // 2)
    await storage.write({"near": {"text": text}})

    assert (await storage.read(["near"]))["near"]["text"] == text
    entity = await table.get_entity(escape_key("near"), ROW_KEY)
    assert entity["DataChunks"] >= 15


async def test_chunks_never_split_a_surrogate_pair(storage: TableBotStorage, table) -> None:
    value = {"v": "a" + "😀" * 50_000}
    encoded = state_codec.encode(value).encode("utf-16-le")
    # Precondition: a cut at exactly CHUNK_UNITS code units would land inside a pair.
    unit = int.from_bytes(encoded[2 * CHUNK_UNITS - 2 : 2 * CHUNK_UNITS], "little")
    assert 0xD800 <= unit <= 0xDBFF

    await storage.write({"emoji": value})

    assert (await storage.read(["emoji"]))["emoji"]["v"] == value["v"]
    entity = await table.get_entity(escape_key("emoji"), ROW_KEY)
    chunks = [entity[f"Data{index:02d}"] for index in range(entity["DataChunks"])]
    assert len(chunks) == 4
    for chunk in chunks:
        assert len(chunk.encode("utf-16-le")) <= 2 * CHUNK_UNITS
        assert not 0xDC00 <= ord(chunk[0]) <= 0xDFFF  # no piece starts with half a pair


async def test_a_shorter_value_leaves_no_old_chunks_behind(storage: TableBotStorage, table) -> None:
    await storage.write({"shrinks": {"text": "z" * 100_000}})
    await storage.write({"shrinks": {"text": "small"}})

    entity = await table.get_entity(escape_key("shrinks"), ROW_KEY)

    assert entity["DataChunks"] == 1
    assert "Data01" not in entity
    assert (await storage.read(["shrinks"]))["shrinks"]["text"] == "small"


async def test_the_entity_keeps_the_original_key_and_a_legal_partition_key(
    storage: TableBotStorage, table
) -> None:
    key = "msteams/conversations/a:1\x00#?\\\x7f😀/" + "q" * 400
    await storage.write({key: {"n": 1}})

    entity = await table.get_entity(escape_key(key), ROW_KEY)

    assert entity["Key"] == key
    partition_key = entity["PartitionKey"]
    assert len(partition_key) <= 255
    assert not any(char in "/\\#?" for char in partition_key)
    assert not any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in partition_key)


async def test_an_entity_holding_another_key_is_not_returned(
    storage: TableBotStorage, table
) -> None:
    # What a hash collision of two long keys would look like: same entity, different Key.
    await table.upsert_entity(
        {
            "PartitionKey": escape_key("mine"),
            "RowKey": ROW_KEY,
            "Key": "someone else's",
            "DataChunks": 1,
            "Data00": '{"secret":1}',
        }
    )

    assert await storage.read(["mine"]) == {}


async def test_an_unregistered_type_is_refused_before_any_request(counted) -> None:
    storage, requests = counted

    with pytest.raises(TypeError, match="Decimal"):
        await storage.write({"money": {"amount": Decimal("1.50")}})

    assert requests == []
    assert await storage.read(["money"]) == {}


async def test_a_missing_table_is_an_error_not_an_empty_read(table_store: TableStore) -> None:
    storage = TableBotStorage(table_store.table(table_store.names.prefix + "Nonexistent"))

    with pytest.raises(ResourceNotFoundError):
        await storage.read(["anything"])
