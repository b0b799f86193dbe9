"""The bot-state codec: what round-trips, and what is refused on the way in and the way out."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum

import pytest
from botbuilder.core import CardFactory, MessageFactory, StoreItem
from botbuilder.dialogs import DialogInstance, DialogState
from botbuilder.dialogs.choices import Choice, ListStyle
from botbuilder.dialogs.prompts import PromptOptions
from botbuilder.schema import (
    ActionTypes,
    Activity,
    ActivityTypes,
    Attachment,
    CardAction,
    ChannelAccount,
    HeroCard,
    SuggestedActions,
)
from botbuilder.schema.teams import TeamsChannelData, TenantInfo

from storage.state_codec import decode, encode


def round_trip(value: object) -> object:
    return decode(encode(value))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        "",
        "plain",
        "Zoë ✓ 日本語 😀 \x00 \u2028",
        [],
        [1, [2, [3]]],
        {},
        {"a": {"b": [None, False, {"c": "d"}]}},
    ],
)
def test_json_values_round_trip_as_themselves(value: object) -> None:
    text = encode(value)

    assert json.loads(text) == value  # stored as plain JSON, no wrapping
    assert decode(text) == value


def test_a_lone_surrogate_round_trips_and_the_text_is_valid_unicode() -> None:
    value = {"text": "half \ud83d of a pair"}

    text = encode(value)

    text.encode("utf-8")  # would raise on a raw lone surrogate
    assert round_trip(value) == value


def test_tuples_stay_tuples() -> None:
    assert round_trip({"pair": (1, "two")}) == {"pair": (1, "two")}
    assert type(round_trip((1,))) is tuple


def test_a_dict_with_its_own_type_key_is_data_not_a_type() -> None:
    # A card submit is user input; it must not be able to name a type.
    forged = {"$type": "StoreItem", "value": {"admin": True}}

    restored = round_trip({"submit": forged})

    assert restored == {"submit": forged}
    assert type(restored["submit"]) is dict


def test_aware_datetimes_keep_their_instant_and_offset() -> None:
    utc = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)
    offset = datetime(2024, 2, 29, 8, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    restored = round_trip({"utc": utc, "offset": offset})

    assert restored == {"utc": utc, "offset": offset}
    assert restored["offset"].utcoffset() == timedelta(hours=5, minutes=30)


def test_naive_datetimes_stay_naive() -> None:
    # botbuilder's OAuthPrompt stores datetime.now(); it must come back comparable to it.
    naive = datetime(2024, 1, 1, 12, 0)

    restored = round_trip(naive)

    assert restored == naive
    assert restored.tzinfo is None


def test_store_item_round_trips() -> None:
    restored = round_trip(StoreItem(name="Ada", when=datetime(2024, 1, 1, tzinfo=UTC)))

    assert isinstance(restored, StoreItem)
    assert vars(restored) == {"name": "Ada", "when": datetime(2024, 1, 1, tzinfo=UTC)}


def test_activities_round_trip_in_wire_format() -> None:
    activity = MessageFactory.attachment(
        CardFactory.hero_card(
            HeroCard(
                title="Pick",
                buttons=[CardAction(type=ActionTypes.im_back, title="One", value="1")],
            )
        ),
        text="Choose one",
    )
    activity.suggested_actions = SuggestedActions(
        actions=[CardAction(type=ActionTypes.post_back, title="Two", value={"n": 2})]
    )
    activity.from_property = ChannelAccount(id="29:user", name="Zoë")
    activity.timestamp = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
    activity.channel_data = TeamsChannelData(tenant=TenantInfo(id="tenant-1")).serialize()
    activity.value = {"$type": "not a type", "list": [1, 2]}

    restored = round_trip({"prompt": activity})["prompt"]

    assert isinstance(restored, Activity)
    assert restored.serialize() == activity.serialize()
    assert restored.type == ActivityTypes.message
    assert restored.from_property.name == "Zoë"
    assert restored.timestamp == activity.timestamp
    assert restored.value == {"$type": "not a type", "list": [1, 2]}


def test_card_action_and_attachment_round_trip() -> None:
    action = CardAction(type=ActionTypes.open_url, title="Docs", value="https://example.test/")
    attachment = Attachment(content_type="application/json", content={"a": [1]})

    restored_action, restored_attachment = round_trip([action, attachment])

    assert restored_action == action
    assert isinstance(restored_attachment, Attachment)
    assert restored_attachment.serialize() == attachment.serialize()


def test_prompt_options_with_choices_round_trip() -> None:
    options = PromptOptions(
        prompt=MessageFactory.text("Which colour?"),
        retry_prompt=MessageFactory.text("Red, green or blue?"),
        choices=[
            Choice("red", synonyms=["crimson"]),
            Choice("green", action=CardAction(type=ActionTypes.im_back, title="G", value="g")),
        ],
        style=ListStyle.suggested_action,
        validations={"min": 1},
        number_of_attempts=2,
    )

    restored = round_trip(options)

    assert isinstance(restored, PromptOptions)
    assert restored.prompt.text == "Which colour?"
    assert restored.retry_prompt.text == "Red, green or blue?"
    assert [type(choice) for choice in restored.choices] == [Choice, Choice]
    assert [choice.value for choice in restored.choices] == ["red", "green"]
    assert restored.choices[0].synonyms == ["crimson"]
    assert restored.choices[0].action is None
    assert restored.choices[1].action == options.choices[1].action
    assert restored.style is ListStyle.suggested_action
    assert restored.validations == {"min": 1}
    assert restored.number_of_attempts == 2


def test_a_component_dialog_stack_round_trips() -> None:
    # A ComponentDialog keeps its inner DialogState inside its own instance's state.
    inner = DialogState(
        [
            DialogInstance(
                "TextPrompt",
                {"options": PromptOptions(prompt=MessageFactory.text("Name?")), "state": {}},
            ),
            DialogInstance(
                "WaterfallDialog",
                {
                    "options": {"argument": "500"},
                    "values": {"nonce": "abc", "instanceId": "42"},
                    "instanceId": "42",
                    "stepIndex": 1,
                },
            ),
        ]
    )
    outer_instance = DialogInstance("AddFundsDialog", {"dialogs": inner})
    outer_instance.version = "v1"  # set at run time by DialogContainer
    state = {"DialogState": DialogState([outer_instance])}

    restored = round_trip(state)["DialogState"]

    assert isinstance(restored, DialogState)
    (outer,) = restored.dialog_stack
    assert (outer.id, outer.version) == ("AddFundsDialog", "v1")
    restored_inner = outer.state["dialogs"]
    assert isinstance(restored_inner, DialogState)
    prompt, waterfall = restored_inner.dialog_stack
    assert prompt.id == "TextPrompt"
    assert prompt.state["options"].prompt.text == "Name?"
    assert waterfall.state == inner.dialog_stack[1].state


class Colour(Enum):
    RED = "red"


class MyStoreItem(StoreItem):
    pass


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (Decimal("1.5"), "decimal.Decimal"),
        ({1, 2}, "builtins.set"),
        (object(), "builtins.object"),
        (Colour.RED, "Colour"),
        (MyStoreItem(a=1), "MyStoreItem"),  # a subclass of a registered type is not that type
        (b"bytes", "builtins.bytes"),
    ],
)
def test_an_unregistered_type_is_refused_by_name(value: object, named: str) -> None:
    with pytest.raises(TypeError, match=named):
        encode({"nested": [value]})


def test_non_string_dict_keys_are_refused() -> None:
    with pytest.raises(TypeError, match="keys must be str"):
        encode({1: "one"})


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        encode({"x": float("nan")})


@pytest.mark.parametrize(
    "name", ["os.system", "subprocess.Popen", "builtins.eval", "storage.state_codec._Entry", 7]
)
def test_stored_data_cannot_name_an_unregistered_type(name: object) -> None:
    forged = json.dumps({"state": {"$type": name, "value": ["rm -rf /"]}})
    modules_before = set(sys.modules)

    with pytest.raises(ValueError, match="unknown type"):
        decode(forged)

    assert set(sys.modules) == modules_before  # nothing was imported on its say-so


def test_a_malformed_typed_value_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed"):
        decode('{"$type": "datetime", "value": "2024-01-01", "extra": 1}')
    with pytest.raises(ValueError, match="malformed"):
        decode('{"$type": "StoreItem", "value": [1, 2]}')
