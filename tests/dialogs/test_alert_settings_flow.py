"""The alert settings flow through the real app, as Teams (or the Playground) sends it.

Replies are caught by the fake Bot Connector; the preferences and the account's thresholds are
read back from Azurite through the real repositories after every scenario. Expected texts come
from the catalogues, never written out here.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from babel.lists import format_list
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

from app import SERVICES
from credits.alerts import CHOOSABLE_KINDS, AlertPreferences
from credits.model import AutoRecharge, EventKind
from locales import LANGUAGES
from storage.alerts import TableAlertStore
from storage.conversations import ConversationRepository
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.fakes.connector import card_texts
from tests.support import activities
from tests.support.chat import EN, L10N, NOT_ADMIN, Chat, UserChat, element, error_at, submit_data

MAX = "$100,000.00"
OTHER_ADMIN = "00000000-0000-0000-0000-0000000000021"  # Megan Bowen, Global Administrator
KIND_FIELDS = [f"kind_{kind.value}" for kind in CHOOSABLE_KINDS]
EVERY_KIND_ON = dict.fromkeys(KIND_FIELDS, "true")


class OtherAdminChat(UserChat):
    """Megan's own personal chat with the bot (each admin's dialog state is their chat's)."""

    def __init__(self, client, connector, **kwargs) -> None:
        super().__init__(client, connector, OTHER_ADMIN, **kwargs)

    async def _post(self, activity) -> None:
        activity["conversation"]["id"] = "a:personal-chat-megan"
        activity["from"]["id"] = "29:user-megan"
        await super()._post(activity)


class Stores:
    def __init__(self, store: TableStore) -> None:
        self.credits = TableCreditsRepository(store.table(store.names.credits))
        self.alerts = TableAlertStore(store.table(store.names.alerts))
        self.conversations = ConversationRepository(store.table(store.names.conversations))

    async def account(self, tenant: str = activities.TENANT):
        account = await self.credits.get_account(tenant)
        assert account is not None
        return account.value

    async def change_account(self, **changes) -> None:
        current = await self.credits.get_account(activities.TENANT)
        await self.credits.save_account(current, replace(current.value, **changes))

    async def preferences(self, user: str = activities.USER_AAD) -> AlertPreferences | None:
        return await self.alerts.preferences(activities.TENANT, user)

    async def nothing_saved(self) -> None:
        assert await self.alerts.all_preferences(activities.TENANT) == {}
        assert (await self.account()).low_balance_thresholds == ()


@pytest.fixture
async def stores(settings):
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url="",
        prefix=settings.table_prefix,
    )
    yield Stores(store)
    await store.close()


async def open_form(chat: Chat) -> dict[str, Any]:
    await chat.say(L10N.translator(chat.locale)("command.alerts").split("|")[0])
    card = chat.last_card()
    assert card_texts(card)[0] == L10N.translator(chat.locale)("alert_settings.title")
    return card


async def save(chat: Chat, form: dict[str, Any], **fields: Any) -> dict[str, Any]:
    data = {**EVERY_KIND_ON, "thresholds": ""}
    await chat.submit({**submit_data(form, "alert_settings"), **data, **fields})
    return chat.last_card()


def values_of(card: dict[str, Any]) -> dict[str, str]:
    return {k: element(card, k).get("value") for k in (*KIND_FIELDS, "thresholds")}


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for e in card["body"]
        if e.get("type") == "FactSet"
        for fact in e["facts"]
    }


def nonce_of(card: dict[str, Any]) -> str:
    return submit_data(card, "alert_settings")["nonce"]


# --- the form ----------------------------------------------------------------------------------


async def test_the_form_opens_with_every_kind_on_and_says_what_the_default_is(
    client, connector, stores
):
    chat = Chat(client, connector)
    form = await open_form(chat)
    assert values_of(form) == {**EVERY_KIND_ON, "thresholds": ""}
    # One toggle per kind, labelled from the catalogue, in the order of CHOOSABLE_KINDS.
    toggles = [e for e in form["body"] if e.get("type") == "Input.Toggle"]
    assert [e["title"] for e in toggles] == [EN(f"alert.kind.{k.value}") for k in CHOOSABLE_KINDS]
    assert element(form, "thresholds")["label"] == EN(
        "alert_settings.thresholds_label", currency="USD"
    )
    texts = card_texts(form)
    assert EN.ngettext("alert_settings.thresholds_help", 5, count=5, maximum=MAX) in texts
    assert EN("alert_settings.default_none", percent=20) in texts  # nothing bought yet
    assert EN("alert_settings.channels_none") in texts
    assert EN("alert_settings.channels_help") in texts
    assert "**alerts here**" in EN("alert_settings.channels_help")

    await stores.change_account(last_purchase_minor=100000)
    texts = card_texts(await open_form(chat))
    assert EN("alert_settings.default_purchase", amount="$200.00", percent=20) in texts

    await stores.change_account(auto_recharge=AutoRecharge(True, 50000, 15000, "agreement:X"))
    texts = card_texts(await open_form(chat))
    assert EN("alert_settings.default_trigger", amount="$150.00") in texts
    await stores.nothing_saved()  # opening the form saves nothing


async def test_the_form_lists_the_channels_subscribed_to_alerts(client, connector, stores):
    def reference(conversation_id: str, name: str | None) -> ConversationReference:
        return ConversationReference(
            conversation=ConversationAccount(id=conversation_id, name=name),
            bot=ChannelAccount(id=activities.BOT_ID),
            channel_id="msteams",
            service_url=connector.url,
        )

    conversations = [
        ("19:finance@thread.tacv2", "Finance", "channel", True),
        ("19:no-name@thread.tacv2", None, "channel", True),
        ("19:chat@thread.v2", "Billing team", "groupChat", True),
        ("19:quiet@thread.tacv2", "Quiet", "channel", False),
        ("a:someone-personal", "Personal", "personal", True),
    ]
    for conversation_id, name, kind, subscribed in conversations:
        await stores.conversations.upsert(
            tenant_id=activities.TENANT,
            conversation_id=conversation_id,
            reference=reference(conversation_id, name).serialize(),
            kind=kind,
            locale="en-US",
        )
        if subscribed:
            await stores.conversations.set_subscribed(
                activities.TENANT, conversation_id, True, activities.USER_AAD
            )
    await stores.conversations.upsert(
        tenant_id=activities.TENANT,
        conversation_id="19:gone@thread.tacv2",
        reference=reference("19:gone@thread.tacv2", "Gone").serialize(),
        kind="channel",
        locale="en-US",
    )
    await stores.conversations.set_subscribed(
        activities.TENANT, "19:gone@thread.tacv2", True, activities.USER_AAD
    )
    await stores.conversations.deactivate(activities.TENANT, "19:gone@thread.tacv2")

    texts = card_texts(await open_form(Chat(client, connector)))
    listed = [text.removeprefix("• ") for text in texts if text.startswith("• ")]
    # A channel Teams never named is a "Channel", never its raw id.
    assert listed == ["Billing team", EN("alert_history.recipient.channel"), "Finance"]
    assert EN("alert_settings.channels_none") not in texts


# --- saving ----------------------------------------------------------------------------------


async def test_saving_kinds_and_thresholds(client, connector, stores):
    chat = Chat(client, connector)
    form = await open_form(chat)
    off = {"kind_recharge_succeeded": "false", "kind_funds_expiring": "false"}
    await save(chat, form, thresholds="500; 100", **off)
    chosen = frozenset(CHOOSABLE_KINDS) - {EventKind.RECHARGE_SUCCEEDED, EventKind.FUNDS_EXPIRING}
    assert await stores.preferences() == AlertPreferences(chosen, (50000, 10000))
    assert (await stores.account()).low_balance_thresholds == (50000, 10000)

    saved = chat.last_card()
    assert card_texts(saved)[0] == EN("alert_settings.saved_title")
    assert facts_of(saved) == {
        **{
            EN(f"alert.kind.{kind.value}"): EN(
                "alert_settings.on" if kind in chosen else "alert_settings.off"
            )
            for kind in CHOOSABLE_KINDS
        },
        EN("alert_settings.thresholds"): format_list(["$500.00", "$100.00"], locale="en"),
        EN("alert_settings.runway"): EN(
            "alert_settings.runway_default", default=EN.ngettext("usage.runway_days", 14, days="14")
        ),
    }

    # The form comes back with what was saved.
    again = await open_form(chat)
    assert values_of(again) == {**EVERY_KIND_ON, **off, "thresholds": "500; 100"}


async def test_the_saved_card_replaces_the_form(client, connector, stores):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.submit(
        {**submit_data(form, "alert_settings"), **EVERY_KIND_ON, "thresholds": ""},
        reply_to="activity-7",
    )
    update = connector.posted[-1]
    assert update.method == "PUT" and update.path.endswith("/activities/activity-7")
    assert facts_of(chat.last_card())[EN("alert_settings.thresholds")] == EN(
        "alert_settings.thresholds_default_none"
    )
    # Every kind on and no thresholds of its own: the admin takes the default.
    assert await stores.preferences() == AlertPreferences(frozenset(CHOOSABLE_KINDS), ())
    assert (await stores.account()).low_balance_thresholds == ()


async def test_duplicates_count_once_and_amounts_keep_their_cents(client, connector, stores):
    chat = Chat(client, connector)
    await save(chat, await open_form(chat), thresholds="100; 1,250.50;100 ;  100\n100")
    assert (await stores.preferences()).thresholds_minor == (125050, 10000)
    assert (await stores.account()).low_balance_thresholds == (125050, 10000)
    assert values_of(await open_form(chat))["thresholds"] == "1,250.50; 100"


async def test_every_alert_off_is_allowed_with_a_warning(client, connector, stores):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await stores.change_account(last_purchase_minor=100000)
    saved = await save(chat, form, **dict.fromkeys(KIND_FIELDS, "false"))
    assert EN("alert_settings.warning.none") in card_texts(saved)
    assert facts_of(saved)[EN("alert_settings.thresholds")] == EN(
        "alert_settings.thresholds_default", amount="$200.00"
    )
    assert await stores.preferences() == AlertPreferences(frozenset(), ())


async def test_save_pressed_again_after_saving_changes_nothing(client, connector, stores):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await save(chat, form, thresholds="500")
    await client.app[SERVICES].runway.idle()  # the forecast, looked at again after the save
    account = await stores.credits.get_account(activities.TENANT)
    again = await save(chat, form, thresholds="50")  # the flow has ended
    assert (await stores.preferences()).thresholds_minor == (50000,)
    assert (await stores.credits.get_account(activities.TENANT)).etag == account.etag
    # The answer is the settings as saved, not the menu.
    assert card_texts(again)[0] == EN("alert_settings.saved_title")
    assert "$500.00" in card_texts(again)


# --- problems at the field ---------------------------------------------------------------------


def _problem(typed: str, problem: str) -> str:
    return EN("alert_settings.error.amount", amount=typed, problem=problem)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("-500", _problem("-500", EN("error.amount.negative"))),
        ("500; -100", _problem("-100", EN("error.amount.negative"))),
        ("0", _problem("0", EN("error.amount.zero"))),
        ("100; 0.00", _problem("0.00", EN("error.amount.zero"))),
        ("1e9", _problem("1e9", EN("error.amount.not_a_number"))),
        ("1000000000", _problem("1000000000", EN("error.trigger.above_maximum", maximum=MAX))),
        ("100000.01", _problem("100000.01", EN("error.trigger.above_maximum", maximum=MAX))),
        ("NaN", _problem("NaN", EN("error.amount.not_a_number"))),
        ("Infinity", _problem("Infinity", EN("error.amount.not_a_number"))),
        (
            "12.345",
            _problem("12.345", EN.ngettext("error.amount.too_many_decimals", 2, decimals=2)),
        ),
        ("five hundred", _problem("five hundred", EN("error.amount.not_a_number"))),
        # The issue: a list typed with commas is no longer one number; the message says why.
        ("500,100", _problem("500,100", EN("alert_settings.error.separator"))),
        ("500, 100", _problem("500, 100", EN("alert_settings.error.separator"))),
        ("50 100", _problem("50 100", EN("alert_settings.error.separator"))),
        ("500; 400; 300; 200; 100; 50", EN.ngettext("alert_settings.error.too_many", 5, count=5)),
    ],
)
async def test_bad_thresholds_come_back_at_the_field(client, connector, stores, typed, message):
    chat = Chat(client, connector)
    form = await open_form(chat)
    again = await save(chat, form, thresholds=typed, kind_balance_zero="false")
    assert card_texts(again)[0] == EN("alert_settings.title")
    assert error_at(again, "thresholds") == message
    # What was typed is kept, and the form is the same one (same nonce).
    assert values_of(again) == {**EVERY_KIND_ON, "kind_balance_zero": "false", "thresholds": typed}
    assert nonce_of(again) == nonce_of(form)
    await stores.nothing_saved()
    # Corrected, it saves.
    await save(chat, again, thresholds="500")
    assert (await stores.account()).low_balance_thresholds == (50000,)


# --- runway thresholds ------------------------------------------------------------------------


async def test_runway_thresholds_are_saved_and_kept_on_the_account(client, connector, stores):
    chat = Chat(client, connector)
    form = await open_form(chat)
    assert element(form, "runway")["value"] == ""  # none chosen: the default, 14 days
    saved = await save(chat, form, runway="7; 30, 30")
    assert facts_of(saved)[EN("alert_settings.runway")] == format_list(
        [
            EN.ngettext("usage.runway_days", 30, days="30"),
            EN.ngettext("usage.runway_days", 7, days="7"),
        ],
        locale="en",
    )
    assert (await stores.preferences()).runway_days == (30, 7)
    assert (await stores.account()).runway_thresholds == (30, 7)
    assert element(await open_form(chat), "runway")["value"] == "30; 7"


@pytest.mark.parametrize("locale", [lang.tag for lang in LANGUAGES])
@pytest.mark.parametrize("typed", ["0", "91", "two weeks", "14.5", "-7", "1; 2; 3; 4; 5; 6"])
async def test_bad_runway_thresholds_come_back_at_the_field_in_every_language(
    client, connector, stores, locale, typed
):
    t = L10N.translator(locale)
    chat = Chat(client, connector, locale=locale)
    form = await open_form(chat)
    again = await save(chat, form, runway=typed)
    assert card_texts(again)[0] == t("alert_settings.title")
    if ";" in typed:
        expected = t.ngettext("alert_settings.error.too_many_days", 5, count=t.number(5))
    else:
        bad = typed.split()[0] if typed != "14.5" else typed
        expected = t(
            "alert_settings.error.days", value=bad, minimum=t.number(1), maximum=t.number(90)
        )
    assert error_at(again, "runway") == expected
    assert element(again, "runway")["value"] == typed
    await stores.nothing_saved()
    assert (await stores.account()).runway_thresholds == ()


# --- forged and stray input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "forged",
    [
        {"nonce": "forged"},
        {"form": "auto_recharge"},
        {"thresholds": 500},
        {"thresholds": ["500", "100"]},
        {"thresholds": {"$gt": ""}},
        {"thresholds": "1" * 10_000},
        {"thresholds": "500, " * 2_000},
        {"kind_balance_low": True},
        {"kind_balance_low": {"value": "true"}},
        {"kind_balance_low": "yes"},
        {"kind_balance_low": "true" * 2_500},
        {"kind_funds_expiring": None},
    ],
)
async def test_a_forged_submit_changes_nothing(client, connector, stores, forged):
    chat = Chat(client, connector)
    form = await open_form(chat)
    data = {**submit_data(form, "alert_settings"), **EVERY_KIND_ON, "thresholds": "500", **forged}
    await chat.submit({k: v for k, v in data.items() if v is not None})
    assert connector.texts()[-1] == EN("alert_settings.use_the_form")
    await stores.nothing_saved()
    # The open form still answers.
    await save(chat, form, thresholds="200")
    assert (await stores.account()).low_balance_thresholds == (20000,)


async def test_stray_input_keeps_the_form_waiting(client, connector, stores):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.say("ok then")
    await chat.submit({"form": "alert_settings", "nonce": "stale"})
    assert connector.texts()[-2:] == [EN("alert_settings.use_the_form")] * 2
    await stores.nothing_saved()
    await save(chat, form, thresholds="300")
    assert (await stores.preferences()).thresholds_minor == (30000,)


async def test_cancel_leaves_the_settings_as_they_were(client, connector, stores):
    chat = Chat(client, connector)
    form = await open_form(chat)
    await chat.say("cancel")
    assert connector.texts()[-1] == EN("cancelled")
    await save(chat, form, thresholds="300")
    await stores.nothing_saved()


# --- several admins ----------------------------------------------------------------------------


async def test_every_admins_thresholds_are_raised(client, connector, stores):
    alex = Chat(client, connector)
    megan = OtherAdminChat(client, connector)
    await save(alex, await open_form(alex), thresholds="500; 100")
    await save(megan, await open_form(megan), thresholds="250; 100", kind_balance_zero="false")
    assert (await stores.account()).low_balance_thresholds == (50000, 25000, 10000)
    # Each admin's own choices are their own.
    assert (await stores.preferences()).thresholds_minor == (50000, 10000)
    assert await stores.preferences(OTHER_ADMIN) == AlertPreferences(
        frozenset(CHOOSABLE_KINDS) - {EventKind.BALANCE_ZERO}, (25000, 10000)
    )
    assert values_of(await open_form(megan))["thresholds"] == "250; 100"

    # Back to the default for Alex: only Megan's remain.
    await save(alex, await open_form(alex), thresholds="")
    assert (await stores.account()).low_balance_thresholds == (25000, 10000)


async def test_two_admins_saving_at_once_both_count(client, connector, stores):
    alex = Chat(client, connector)
    megan = OtherAdminChat(client, connector)
    alex_form = await open_form(alex)
    megan_form = await open_form(megan)
    await asyncio.gather(
        save(alex, alex_form, thresholds="700"), save(megan, megan_form, thresholds="300")
    )
    assert (await stores.account()).low_balance_thresholds == (70000, 30000)


# --- languages and access ----------------------------------------------------------------------


async def test_the_flow_in_portuguese(client, connector, stores):
    pt = L10N.translator("pt-BR")
    chat = Chat(client, connector, locale="pt-BR")
    form = await open_form(chat)
    texts = card_texts(form)
    assert pt("alert_settings.intro") in texts and pt("alert_settings.channels_help") in texts
    toggles = [e["title"] for e in form["body"] if e.get("type") == "Input.Toggle"]
    assert toggles == [pt(f"alert.kind.{k.value}") for k in CHOOSABLE_KINDS]
    assert element(form, "thresholds")["label"] == pt(
        "alert_settings.thresholds_label", currency="USD"
    )
    assert (
        pt.ngettext("alert_settings.thresholds_help", 5, count=5, maximum="US$\xa0100.000,00")
        in texts
    )

    # Amounts as a Brazilian admin types them; the errors in Portuguese.
    again = await save(chat, form, thresholds="1.250,50; 0,001")
    assert error_at(again, "thresholds") == pt(
        "alert_settings.error.amount",
        amount="0,001",
        problem=pt.ngettext("error.amount.too_many_decimals", 2, decimals=2),
    )
    saved = await save(chat, again, thresholds="1.250,50; 100")
    assert card_texts(saved)[0] == pt("alert_settings.saved_title")
    assert facts_of(saved)[pt("alert_settings.thresholds")] == format_list(
        ["US$\xa01.250,50", "US$\xa0100,00"], locale="pt_BR"
    )
    assert facts_of(saved)[pt("alert.kind.balance_low")] == pt("alert_settings.on")
    assert (await stores.account()).low_balance_thresholds == (125050, 10000)
    assert values_of(await open_form(chat))["thresholds"] == "1.250,50; 100"


async def test_a_non_admin_is_refused(client, connector, stores):
    chat = UserChat(client, connector, NOT_ADMIN)
    await chat.say("alerts")
    await chat.submit({"form": "alert_settings", "nonce": "x", **EVERY_KIND_ON, "thresholds": "1"})
    assert connector.texts() == [EN("access.refused")] * 2
    assert await stores.alerts.all_preferences(activities.TENANT) == {}
    assert await stores.credits.get_account(activities.TENANT) is None
