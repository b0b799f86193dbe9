"""Explicit JSON encoding of bot state: no pickling, and nothing imported by name from data.

Plain JSON values (None, bool, int, float, str, list, dict with string keys) are written as
themselves. Any other value is written as `{"$type": NAME, "value": PAYLOAD}`, and only for the
types registered below; decoding looks NAME up in that registry and nowhere else, so stored data
can never make us import or call anything else (jsonpickle would: that is a code-execution hole
for anyone who can write to the table).

Registered:
- every msrest model and enum of `botbuilder.schema` and `botbuilder.schema.teams` (Activity,
  CardAction, Attachment, ...), through botbuilder's own (de)serializer helpers, so the payload
  is the Bot Framework wire format;
- the objects a waterfall and its prompts persist: `DialogState`, `DialogInstance`,
  `PromptOptions`, `Choice`, `ListStyle`, and `StoreItem`;
- `datetime` (ISO 8601; an aware value keeps its UTC offset, a naive one stays naive because
  botbuilder's OAuthPrompt stores naive times), `tuple`, and dicts that have a "$type" key of
  their own (user data, e.g. a card submit, must not be mistaken for a typed value).

Types are matched exactly, not with isinstance: a subclass would be decoded as its base class
and silently lose behaviour, so it is refused like any other unknown type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from inspect import getmembers
from typing import Any, TypeVar

import botbuilder.schema as schema
import botbuilder.schema.teams as teams_schema
from botbuilder.core import StoreItem
from botbuilder.core.serializer_helper import deserializer_helper, serializer_helper
from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import PromptOptions
from msrest.serialization import Model

T = TypeVar("T")

TYPE = "$type"
VALUE = "value"

_JSON_SCALARS = (str, int, float, bool, type(None))
# Python strings may hold unpaired surrogates (json.loads makes them from "\ud800"); written raw
# they are not valid UTF-16, so they are written as JSON escapes, which decode back to them.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class _Entry:
    name: str
    cls: type
    to_payload: Callable[[Any], Any]
    from_payload: Callable[[Any], Any]


_BY_TYPE: dict[type, _Entry] = {}
_BY_NAME: dict[str, _Entry] = {}


def _register(
    name: str, cls: type, to_payload: Callable[[Any], Any], from_payload: Callable[[Any], Any]
) -> None:
    if name in _BY_NAME or cls in _BY_TYPE:
        raise RuntimeError(f"state codec: {name} ({cls!r}) registered twice")
    entry = _Entry(name, cls, to_payload, from_payload)
    _BY_TYPE[cls] = entry
    _BY_NAME[name] = entry


def encode(value: object) -> str:
    """JSON text for `value`; TypeError naming the type for anything not registered."""
    text = json.dumps(_encode(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def decode(text: str) -> object:
    """The value `encode` was given; ValueError for malformed text or an unregistered type."""
    return _decode(json.loads(text))


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is list:
        return [_encode(item) for item in value]
    if kind is dict:
        return _encode_dict(value)
    entry = _BY_TYPE.get(kind)
    if entry is None:
        raise TypeError(
            f"{kind.__module__}.{kind.__qualname__} cannot be stored in bot state: "
            "only JSON values and the types registered in storage/state_codec.py can"
        )
    return {TYPE: entry.name, VALUE: entry.to_payload(value)}


def _encode_dict(value: dict[Any, Any]) -> dict[str, Any]:
    for key in value:
        if type(key) is not str:
            # json.dumps would turn 1 into "1" and the state would come back different.
            raise TypeError(f"bot state dict keys must be str, not {type(key).__name__} ({key!r})")
    body = {key: _encode(item) for key, item in value.items()}
    if TYPE in value:
        return {TYPE: "dict", VALUE: body}
    return body


def _decode(node: Any) -> Any:
    if isinstance(node, list):
        return [_decode(item) for item in node]
    if not isinstance(node, dict):
        return node
    if TYPE not in node:
        return {key: _decode(item) for key, item in node.items()}
    name = node[TYPE]
    entry = _BY_NAME.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(f"stored bot state names an unknown type {name!r}")
    if set(node) != {TYPE, VALUE}:
        raise ValueError(f"stored bot state has a malformed {name} (keys {sorted(node)})")
    return entry.from_payload(node[VALUE])


def _payload_dict(payload: Any, name: str) -> dict[str, Any]:
    return _payload_of(dict, payload, name)


def _payload_of(kind: type[T], payload: Any, name: str) -> T:
    if not isinstance(payload, kind):
        raise ValueError(f"stored bot state has a malformed {name}: {type(payload).__name__}")
    return payload


# --- plain objects: every instance attribute, restored onto a default-constructed object ------
# All attributes, not a fixed list, because botbuilder adds some at run time (DialogContainer sets
# `DialogInstance.version`); a fixed list would drop them without a word.


def _register_attributes(cls: type) -> None:
    def to_payload(obj: Any) -> dict[str, Any]:
        return _encode_dict(dict(vars(obj)))

    def from_payload(payload: Any) -> Any:
        obj = cls()
        for attribute, item in _payload_dict(_decode(payload), cls.__name__).items():
            setattr(obj, attribute, item)
        return obj

    _register(cls.__name__, cls, to_payload, from_payload)


for _cls in (DialogInstance, PromptOptions, Choice, StoreItem):
    _register_attributes(_cls)


# DialogState keeps its stack in a private attribute; the payload uses the public name and the
# constructor, so a rename inside botbuilder does not strand stored conversations.
def _dialog_state_payload(state: DialogState) -> dict[str, Any]:
    extra = set(vars(state)) - {"_dialog_stack"}
    if extra:
        raise TypeError(f"DialogState has attributes the codec does not store: {sorted(extra)}")
    return {"dialog_stack": [_encode(instance) for instance in state.dialog_stack]}


def _dialog_state_from(payload: Any) -> DialogState:
    stack = _payload_dict(payload, "DialogState").get("dialog_stack", [])
    return DialogState([_decode(instance) for instance in stack])


_register("DialogState", DialogState, _dialog_state_payload, _dialog_state_from)


# --- values with a natural text or list form ----------------------------------------------------

_register(
    "datetime",
    datetime,
    datetime.isoformat,
    lambda payload: datetime.fromisoformat(_payload_of(str, payload, "datetime")),
)
_register(
    "tuple",
    tuple,
    lambda items: [_encode(item) for item in items],
    lambda payload: tuple(_decode(_payload_of(list, payload, "tuple"))),
)
# Only reached through _encode_dict for dicts that carry a "$type" key of their own.
_register(
    "dict",
    dict,
    lambda value: {key: _encode(item) for key, item in value.items()},
    lambda payload: {key: _decode(item) for key, item in _payload_dict(payload, "dict").items()},
)


# --- Bot Framework schema: msrest models in their wire format, enums by value -------------------


def _register_model(cls: type[Model]) -> None:
    # serializer_helper knows the teams models too, so a Teams payload nested in an activity
    # survives; its output is plain JSON and is stored as is (not walked for "$type").
    _register(
        cls.__name__,
        cls,
        serializer_helper,
        lambda payload: deserializer_helper(cls, _payload_dict(payload, cls.__name__)),
    )


def _register_enum(cls: type[Enum]) -> None:
    _register(cls.__name__, cls, lambda member: member.value, cls)


for _module in (schema, teams_schema):
    for _, _cls in getmembers(_module, lambda member: isinstance(member, type)):
        if _cls in _BY_TYPE:
            continue  # botbuilder.schema.teams re-exports a few botbuilder.schema classes
        if issubclass(_cls, Model):
            _register_model(_cls)
        elif issubclass(_cls, Enum):
            _register_enum(_cls)

_register_enum(ListStyle)
