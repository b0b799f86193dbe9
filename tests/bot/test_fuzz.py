"""Fuzzing the two public endpoints through the real app (Hypothesis), on Azurite.

`POST /api/messages` gets arbitrary JSON activities: every field of a Teams activity swapped for
a value of another type, huge numbers, deep nesting, odd Unicode (lone surrogates, combining
marks, characters that grow when normalised), card submits of every form with every field's
type swapped, card presses as Teams sends an Action.Execute (`adaptiveCard/action` invokes whose
action, verb, data and trigger are anything: forms, refreshes, any JSON), commands with arbitrary
arguments, and arbitrary headers and raw bodies.
`POST /api/tenants/{tenant}/usage` gets arbitrary bodies (bytes, CSV-like text) with arbitrary,
wrong and right credentials, for the funded tenant and others.

After every example:
- no answer was a 500, and the service still answers: `/healthz` within HEALTH_SECONDS;
- a request that was refused (4xx) changed nothing in any table;
- the funded tenant's money (account, lots, ledger, orders) never changed, refused or not:
  nothing in these requests can place an order or charge usage without the tenant's key.

- no turn failed ("something went wrong"): bad input gets its own answer.

The number of examples is bounded (MESSAGE_EXAMPLES, UPLOAD_EXAMPLES) so the suite runs in
`make test`; HYPOTHESIS_EXAMPLES=n overrides both for a longer hunt. With CI=true the examples
are the same on every run. Replies go to the fake Bot
Connector (tests/fakes/connector.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from bot.settings import Settings
from bot.usage_api import tenant_key
from dialogs.card_actions import Verb
from dialogs.commands import CommandParser
from locales import Localizer
from storage.tables import TableStore
from tests.fakes.connector import FakeConnector
from tests.support import activities
from tests.support.usage_files import COLUMNS, ROWS, SECRET, TENANT, balance, export

MESSAGE_EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", 100))
UPLOAD_EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", 60))
HEALTH_SECONDS = 5.0
FUNDED_MINOR = 50_000
FUZZ = settings(
    max_examples=MESSAGE_EXAMPLES,
    # CI runs the same examples every time (a merge is not failed by what a new draw finds);
    # a developer's run draws new ones, and a failure found is replayed from .hypothesis/.
    derandomize=os.environ.get("CI") == "true",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies: values -------------------------------------------------------------------------

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.sampled_from(
        [
            "",
            " ",
            "\u2a0c" * 300,  # four characters each once normalised
            "\ufdfa" * 50,  # eighteen
            "e\u0301" * 50,
            "\u202e\u200b\ufeff",
            "\x00\x01\x1f",
            "../..",
            "<at>x</at>",
            "1" + "0" * 60,
            "-1e999",
            "NaN",
        ]
    ),
)
HUGE = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([2**63, -(2**63) - 1, 10**1000, float("inf"), float("-inf"), float("nan")]),
    st.floats(),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), HUGE, ODD_TEXT)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ODD_TEXT, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def deep(draw) -> Any:
    """JSON nested far deeper than any activity (and sometimes past the recursion limit)."""
    value: Any = draw(SCALARS)
    for _ in range(draw(st.integers(min_value=60, max_value=3000))):
        value = [value] if draw(st.booleans()) else {"x": value}
    return value


ANY_VALUE = st.one_of(JSON, deep())

# --- strategies: activities ---------------------------------------------------------------------

PARSER = CommandParser.from_localizer(Localizer.from_directory())
COMMAND_WORDS = sorted(PARSER.words())
FORMS: dict[str, tuple[str, ...]] = {
    "add_funds": ("amount", "method", "po", "card_number", "card_month", "card_year",
                  "card_cvc", "card_name", "card_save"),
    "add_funds_confirm": ("action",),
    "auto_recharge": ("enabled", "recharge_with", "trigger", "method"),
    "auto_recharge_confirm": ("action",),
    "licences": ("action", "users", "query", "filter", "page"),
    "licences_confirm": ("action", "prerequisite"),
    "alert_settings": ("thresholds", "kind_low_balance", "kind_zero_balance", "kind_expiring"),
    "language": ("language",),
}  # fmt: skip
# Two real tenants (each new tenant is seeded with a demo directory: kept few, the suite stays
# fast), and ids that are no tenant's.
TENANTS = st.one_of(
    st.sampled_from([TENANT, "fuzz-tenant", "", "../x", "a/b", "t#1", "\ud800", "x" * 300]),
    JSON,
)


@st.composite
def submits(draw) -> Any:
    form = draw(st.sampled_from(sorted(FORMS)))
    value: dict[str, Any] = {"form": draw(st.one_of(st.just(form), JSON))}
    value["nonce"] = draw(st.one_of(st.just("0" * 32), ODD_TEXT, JSON))
    for field in FORMS[form]:
        if draw(st.booleans()):
            value[field] = draw(st.one_of(ODD_TEXT, ANY_VALUE, st.sampled_from(["true", "500"])))
    if draw(st.booleans()):
        value["command"] = draw(st.one_of(st.sampled_from(["help", "status", "add_funds"]), JSON))
    return value


VERBS = st.one_of(st.sampled_from([*(verb.value for verb in Verb), "", "Form"]), JSON)


@st.composite
def card_actions(draw) -> Any:
    """The value of an `adaptiveCard/action` invoke: mostly shaped as Teams sends it, with any
    verb and data (a form's submit, a refresh, anything), sometimes anything at all."""
    if sometimes(draw, 15):
        return draw(ANY_VALUE)
    data = draw(
        st.one_of(
            submits(),
            st.fixed_dictionaries({"refresh": st.one_of(st.just("status"), JSON)}),
            JSON,
        )
    )
    action: dict[str, Any] = {
        "type": draw(st.one_of(st.just("Action.Execute"), JSON)),
        "verb": draw(VERBS),
        "data": data,
    }
    for key in draw(st.lists(st.sampled_from(sorted(action)), max_size=2, unique=True)):
        if sometimes(draw, 20):
            del action[key]
    return {
        "action": action,
        "trigger": draw(st.one_of(st.sampled_from(["manual", "automatic"]), JSON)),
    }


def sometimes(draw, percent: int) -> bool:
    """A biased coin: most activities should reach a turn, some should be odd everywhere."""
    return draw(st.sampled_from(range(100))) < percent  # integers() favour 0: too often


@st.composite
def texts(draw) -> Any:
    if sometimes(draw, 10):
        return draw(JSON)
    if sometimes(draw, 30):
        return draw(ODD_TEXT)
    word = draw(st.sampled_from(COMMAND_WORDS))
    argument = draw(st.one_of(st.just(""), ODD_TEXT, st.sampled_from(["500", "1,250.50", "pt"])))
    return f"{word} {argument}"


FIELDS = (
    "type", "id", "timestamp", "serviceUrl", "channelId", "from", "conversation", "recipient",
    "locale", "channelData", "text", "value", "entities", "attachments", "replyToId", "action",
    "membersAdded", "membersRemoved", "name",
)  # fmt: skip


@st.composite
def activities_from(draw, service_url: str) -> dict[str, Any]:
    activity = activities.message(service_url, draw(texts()))
    if draw(st.booleans()):
        activity["value"] = draw(st.one_of(submits(), JSON))
        if draw(st.booleans()):
            activity.pop("text", None)
    if sometimes(draw, 25):
        # A press on an Action.Execute, or its card's refresh.
        activity["type"] = "invoke"
        activity["name"] = draw(st.one_of(st.just("adaptiveCard/action"), ODD_TEXT))
        activity["value"] = draw(card_actions())
        activity["replyToId"] = draw(st.one_of(st.just("activity-1"), ODD_TEXT))
        activity.pop("text", None)
    if sometimes(draw, 25):
        activity["type"] = draw(
            st.one_of(
                st.sampled_from(["installationUpdate", "conversationUpdate", "invoke", "typing"]),
                JSON,
            )
        )
    if sometimes(draw, 30):
        activity["channelData"]["tenant"] = {"id": draw(TENANTS)}
    if sometimes(draw, 20):
        activity["entities"] = [
            {"type": "mention", "mentioned": {"id": activities.BOT_ID}, "text": draw(ODD_TEXT)},
            draw(st.dictionaries(ODD_TEXT, JSON, max_size=3)),
        ]
    if sometimes(draw, 15):
        activity["attachments"] = [
            {
                "contentType": "application/vnd.microsoft.teams.file.download.info",
                "name": draw(ODD_TEXT),
                "content": {
                    "downloadUrl": draw(
                        st.one_of(
                            st.sampled_from(["http://127.0.0.1:1/x.csv", "https://x.invalid/a"]),
                            JSON,
                        )
                    ),
                    "fileType": draw(st.one_of(st.just("csv"), JSON)),
                },
            }
        ]
    # Swap some fields for values of any type, or drop them.
    swapped = draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True))
    for field in swapped if sometimes(draw, 30) else ():
        if draw(st.booleans()):
            activity[field] = draw(ANY_VALUE)
        else:
            activity.pop(field, None)
    return activity


HEADER_NAMES = st.sampled_from(
    ["Authorization", "X-Usage-Signature", "Accept", "X-Forwarded-For", "Cookie", "Channelid"]
)
# What an HTTP client can send: no CR or LF; Latin-1 and beyond (aiohttp sends UTF-8).
HEADER_VALUES = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), max_size=60
) | st.sampled_from(
    ["Bearer ", "Bearer é", "Bearer a.b.c", "sha256=" + "0" * 64, "application/json"]
)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3)


@st.composite
def message_requests(draw, service_url: str) -> list[tuple[dict[str, str], bytes]]:
    """One to three requests: (headers, body), most of them JSON activities."""
    requests = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        headers = {"Content-Type": "application/json", **draw(HEADERS)}
        if sometimes(draw, 5):
            headers["Content-Type"] = draw(HEADER_VALUES)
        kind = draw(st.integers(min_value=0, max_value=9))
        if kind == 0:
            body = draw(st.binary(max_size=200))
        elif kind == 1:
            body = _json_bytes(draw(ANY_VALUE))
        else:
            body = _json_bytes(draw(activities_from(service_url)))
        requests.append((headers, body))
    return requests


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):  # ints past Python's digit limit, too deep for dumps
        return b"[" * 5000


# --- strategies: uploads ------------------------------------------------------------------------


@st.composite
def uploads(draw) -> tuple[str, dict[str, str], bytes, bool]:
    """(tenant, headers, body, whether the credentials are the tenant's own)."""
    tenant = draw(st.one_of(st.just(TENANT), st.just("another-tenant"), st.text(min_size=1)))
    body = draw(
        st.one_of(
            st.binary(max_size=2000),
            st.just(export(ROWS)),
            st.lists(st.lists(ODD_TEXT, max_size=len(COLUMNS)), max_size=5).map(
                lambda rows: "\r\n".join(
                    [",".join(COLUMNS), *(",".join(map(str, row)) for row in rows)]
                ).encode("utf-8", "surrogatepass")
            ),
        )
    )
    key = tenant_key(SECRET, tenant)
    credentials = draw(
        st.sampled_from(["none", "random", "other key", "wrong signature", "right key", "signed"])
    )
    headers: dict[str, str] = dict(draw(HEADERS))
    if credentials in ("right key", "signed"):
        headers.pop("Authorization", None)
    if credentials == "other key":
        headers["Authorization"] = f"Bearer {tenant_key(SECRET, tenant + 'x')}"
    elif credentials == "wrong signature":
        headers["X-Usage-Signature"] = "sha256=" + hmac.new(b"x", body, hashlib.sha256).hexdigest()
    elif credentials == "right key":
        headers["Authorization"] = f"Bearer {key}"
    elif credentials == "signed":
        headers.pop("X-Usage-Signature", None)
        mac = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Usage-Signature"] = f"sha256={mac}"
    elif credentials == "random":
        headers["Authorization"] = draw(HEADER_VALUES)
    return tenant, headers, body, credentials in ("right key", "signed")


# --- the harness --------------------------------------------------------------------------------


class Harness:
    """The real app and a fake Bot Connector on their own event loop, one funded tenant."""

    def __init__(self, app_settings: Settings) -> None:
        self.settings = app_settings
        self.loop = asyncio.new_event_loop()
        self.connector = FakeConnector()
        self.examples = 0
        self.statuses: dict[int, int] = {}
        self._failures = _Records()

    def __enter__(self) -> Harness:
        logging.getLogger("bot.adapter").addHandler(self._failures)
        try:
            self.run(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        logging.getLogger("bot.adapter").removeHandler(self._failures)
        self.run(self._stop())
        self.loop.close()

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def _start(self) -> None:
        self._connector_server = TestServer(self.connector.app())
        await self._connector_server.start_server()
        self.connector.url = str(self._connector_server.make_url("")).rstrip("/")
        self.client = TestClient(TestServer(create_app(self.settings)))
        await self.client.start_server()
        self.store = TableStore.from_settings(
            connection_string=self.settings.storage_connection_string,
            account_url="",
            prefix=self.settings.table_prefix,
        )
        await self._fund()

    async def _stop(self) -> None:
        for part in ("client", "_connector_server", "store"):
            if hasattr(self, part):
                await getattr(self, part).close()

    async def _fund(self) -> None:
        """$500 for TENANT, through the chat, as the `api` fixture does."""
        post = self.client.post
        await post("/api/messages", json=activities.message(self.connector.url, "add funds 500"))
        place = next(
            a["data"]
            for block in self.connector.cards()[-1]["body"]
            if block.get("type") == "ActionSet"
            for a in block["actions"]
            if a["data"].get("action") == "place"
        )
        await post("/api/messages", json=activities.message(self.connector.url, value=place))
        assert await balance(self.settings) == FUNDED_MINOR

    async def tables(self) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
        """Every row of every table, but what background jobs change on their own: leases,
        and the outbox rows the alert dispatcher works off."""
        snapshot = {}
        for name in self.store.names.all():
            if name == self.store.names.leases:
                continue
            rows = {}
            async for entity in self.store.table(name).list_entities():
                key = (entity["PartitionKey"], entity["RowKey"])
                if not key[1].startswith("outbox-"):
                    rows[key] = dict(entity)
            snapshot[name] = rows
        return snapshot

    async def money(self) -> dict[str, dict[str, Any]]:
        """The funded tenant's account, lots, ledger and orders."""
        table = self.store.table(self.store.names.credits)
        rows = {}
        async for entity in table.query_entities("PartitionKey eq @t", parameters={"t": TENANT}):
            if entity["RowKey"].split("-")[0] in ("account", "lot", "ledger", "order"):
                rows[entity["RowKey"]] = dict(entity)
        return rows

    def turn_failures(self) -> list[str]:
        return [r.getMessage() for r in self._failures.records]

    async def check(self, requests, *, own_key: bool = False, charges: bool = False) -> None:
        """Send the requests; assert the properties of the module docstring.

        `own_key`: the request carries its tenant's own key, so a file refused for its content
        (400) may still have opened the tenant's account, empty (the importer reads the
        account's currency first); `charges`: it is the funded tenant's, so usage may be
        charged."""
        money = await self.money()
        self._failures.records.clear()
        before = await self.tables()
        for send in requests:
            response = await send()
            status = response.status
            await response.read()
            self.statuses[status] = self.statuses.get(status, 0) + 1
            assert status != 500, f"500 for {send.__doc__}"
            after = await self.tables()
            if 400 <= status < 500 and not (own_key and status == 400):
                assert after == before, (
                    f"a refused request ({status}) changed {_diff(before, after)}"
                )
            before = after
            health = await asyncio.wait_for(self.client.get("/healthz"), HEALTH_SECONDS)
            assert health.status == 200
            # Bad input gets its own answer, never "something went wrong".
            assert not self.turn_failures(), f"a turn failed for {send.__doc__}"
        if not charges:
            assert await self.money() == money, "the funded tenant's money changed"
        self.examples += 1


class _Records(logging.Handler):
    """The adapter's "turn failed" records (it logs every turn that raised)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _diff(before, after) -> list[tuple[str, tuple[str, str]]]:
    """The rows that differ: (table, (partition, row))."""
    return [
        (table, key)
        for table in sorted(set(before) | set(after))
        for key in sorted(set(before.get(table, {})) | set(after.get(table, {})))
        if before.get(table, {}).get(key) != after.get(table, {}).get(key)
    ]


def _sender(client: TestClient, method_path: str, headers: dict[str, str], body: bytes):
    async def send():
        return await client.post(method_path, data=body, headers=headers)

    send.__doc__ = f"POST {method_path} {headers!r} {body[:300]!r}"
    return send


@pytest.fixture
def fuzz_settings(azurite, table_prefix) -> Settings:
    return Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": table_prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "USAGE_API_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
        }
    )


def _report(name: str, harness: Harness, started: float) -> None:
    logging.getLogger(__name__).warning(
        "%s: %d examples in %.1f s; statuses %s",
        name,
        harness.examples,
        time.monotonic() - started,
        dict(sorted(harness.statuses.items())),
    )


def test_fuzz_the_message_endpoint(fuzz_settings):
    started = time.monotonic()
    with Harness(fuzz_settings) as harness:
        url = harness.connector.url

        @FUZZ
        @given(requests=message_requests(url))
        def one(requests):
            harness.run(
                harness.check(
                    [_sender(harness.client, "/api/messages", h, body) for h, body in requests]
                )
            )

        one()
        _report("POST /api/messages", harness, started)
    assert harness.examples >= min(MESSAGE_EXAMPLES, 20)


def test_fuzz_the_usage_endpoint(fuzz_settings):
    started = time.monotonic()
    with Harness(fuzz_settings) as harness:

        @settings(FUZZ, max_examples=UPLOAD_EXAMPLES)
        @given(upload=uploads())
        def one(upload):
            tenant, headers, body, own = upload
            path = "/api/tenants/" + _quote(tenant) + "/usage"
            send = _sender(harness.client, path, headers, body)
            harness.run(harness.check([send], own_key=own, charges=own and tenant == TENANT))

        one()
        _report("POST /api/tenants/{tenant}/usage", harness, started)
    assert harness.examples >= min(UPLOAD_EXAMPLES, 20)


def _quote(tenant: str) -> str:
    from urllib.parse import quote

    return quote(tenant.encode("utf-8", "surrogatepass"), safe="")
