"""GraphPstnCalls on the Graph client against a fake getPstnCalls on loopback
(tests/fakes/graph_pstn.py, standing for Microsoft Graph's call records API)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from credits.usage import ParseReport, SkipReason, iter_graph_rows
from graph.client import GraphClient
from graph.errors import GraphError
from graph.pstn_calls import NOT_A_PAGE, GraphPstnCalls, odata_time, windows
from graph.retries import IN_THE_BACKGROUND
from tests.fakes.graph_pstn import FakeGraphPstn, FakeTokens, pstn_row

TENANT = "11111111-2222-3333-4444-555555555555"
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def pstn() -> FakeGraphPstn:
    return FakeGraphPstn()


@pytest.fixture
async def calls(aiohttp_server, pstn: FakeGraphPstn, sleep) -> AsyncIterator[GraphPstnCalls]:
    server = await aiohttp_server(pstn.app())
    async with aiohttp.ClientSession() as session:
        client = GraphClient(
            session,
            FakeTokens(pstn),
            base=str(server.make_url("/v1.0")),
            retries=dataclasses.replace(IN_THE_BACKGROUND, attempts=4),
            sleep=sleep,
        )
        yield GraphPstnCalls(client)


async def collect(calls: GraphPstnCalls, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return [page async for page in calls.pages(TENANT, start, end)]


def ids(pages: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for page in pages for row in page["value"]]


async def test_pages_follow_next_links_to_the_last_page(pstn, calls) -> None:
    rows = [
        pstn_row(start=START + timedelta(minutes=i), charge=Decimal("0.10")) for i in range(2_500)
    ]
    pstn.add_calls(TENANT, rows)

    pages = await collect(calls, START, START + timedelta(days=30))

    assert [len(page["value"]) for page in pages] == [1_000, 1_000, 500]
    assert ids(pages) == [row["id"] for row in rows]
    assert "@odata.nextLink" not in pages[-1]
    assert [bool(seen.query.get("$skiptoken")) for seen in pstn.requests] == [False, True, True]
    token = pstn.token_for(TENANT)
    assert all(seen.authorization == f"Bearer {token}" for seen in pstn.requests)


async def test_a_120_day_range_is_asked_as_two_windows_without_overlap(pstn, calls) -> None:
    boundary = START + timedelta(days=90)
    end = START + timedelta(days=120)
    before = pstn_row(start=boundary - timedelta(seconds=1), charge=Decimal("1.00"))
    on = pstn_row(start=boundary, charge=Decimal("2.00"))  # inclusive ends would give it twice
    after_end = pstn_row(start=end, charge=Decimal("4.00"))  # [start, end) leaves it out
    pstn.add_calls(TENANT, [before, on, after_end])

    pages = await collect(calls, START, end)

    windows_asked = [(seen.from_time, seen.to_time) for seen in pstn.requests]
    assert windows_asked == [
        ("2024-01-01T00:00:00.0000000Z", "2024-03-30T23:59:59.9999999Z"),
        ("2024-03-31T00:00:00.0000000Z", "2024-04-29T23:59:59.9999999Z"),
    ]
    assert ids(pages) == [before["id"], on["id"]]


def test_windows_are_at_most_90_days_and_cover_the_range() -> None:
    end = START + timedelta(days=400, hours=5)
    cut = list(windows(START, end))
    assert cut[0][0] == START and cut[-1][1] == end
    assert all(b - a <= timedelta(days=90) for a, b in cut)
    assert all(cut[i][1] == cut[i + 1][0] for i in range(len(cut) - 1))
    with pytest.raises(ValueError):
        list(windows(datetime(2024, 1, 1), datetime(2024, 2, 1)))  # naive
    with pytest.raises(ValueError):
        list(windows(START, START))


async def test_429_waits_retry_after_then_succeeds(pstn, calls, sleeps) -> None:
    pstn.add_calls(TENANT, [pstn_row(start=START, charge=Decimal("0.50"))])
    pstn.fail_next(429, retry_after="7")
    pstn.fail_next(503, retry_after="2")

    pages = await collect(calls, START, START + timedelta(days=1))

    assert len(ids(pages)) == 1
    assert sleeps == [7.0, 2.0]
    assert len(pstn.requests) == 3


async def test_retries_are_bounded(pstn, calls, sleeps) -> None:
    pstn.fail_next(503, times=10)

    with pytest.raises(GraphError) as raised:
        await collect(calls, START, START + timedelta(days=1))

    assert raised.value.status == 503 and raised.value.transient
    assert len(pstn.requests) == 4  # max_attempts
    assert len(sleeps) == 3


async def test_a_refusal_is_not_retried(pstn, calls, sleeps) -> None:
    pstn.fail_next(403, code="Forbidden")

    with pytest.raises(GraphError) as raised:
        await collect(calls, START, START + timedelta(days=1))

    assert (raised.value.status, raised.value.code) == (403, "Forbidden")
    assert len(pstn.requests) == 1
    assert sleeps == []


async def test_a_next_link_to_another_origin_is_refused(pstn, calls) -> None:
    pstn.page_size = 1
    pstn.next_link_base = "https://attacker.example"
    rows = [pstn_row(start=START + timedelta(minutes=i), charge=Decimal("1")) for i in range(2)]
    pstn.add_calls(TENANT, rows)

    with pytest.raises(GraphError) as raised:
        await collect(calls, START, START + timedelta(days=1))

    assert raised.value.code == "bad_next_link"
    assert len(pstn.requests) == 1


async def test_amounts_stay_exact_decimals_end_to_end(pstn, calls) -> None:
    row = pstn_row(start=START, charge=Decimal("0.1"), connection_charge=Decimal("0.2"))
    pstn.add_calls(TENANT, [row])
    report = ParseReport()

    pages = await collect(calls, START, START + timedelta(days=1))
    usage = [
        usage
        for page in pages
        for usage in iter_graph_rows(page, account_currency="USD", report=report)
    ]

    assert [u.amount for u in usage] == [Decimal("0.3")]
    assert usage[0].charge + usage[0].connection_fee == Decimal("0.3")
    assert usage[0].amount_minor() == 30
    assert report.total_eligible == Decimal("0.3")
    # What binary floats would have made of the same body.
    as_floats = json.loads(json.dumps({"c": 0.1, "f": 0.2}))
    assert as_floats["c"] + as_floats["f"] != 0.3


async def test_rows_of_a_graph_page_are_classified(pstn, calls) -> None:
    usage_id = "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"
    rows = [
        pstn_row(start=START, charge=Decimal("1.25"), usage_id=usage_id, user_id=None),
        pstn_row(start=START, charge=Decimal("1.25"), usage_id=usage_id.lower()),  # repeat
        pstn_row(start=START, charge=Decimal("9"), capability="MCOPSTNU"),
        pstn_row(start=START, charge=Decimal("9"), capability="MCOPSTN1"),
        pstn_row(start=START, charge=Decimal("9"), currency="EUR"),
        pstn_row(start=START, charge=Decimal("0.0123")),
        pstn_row(start=START, charge=None),
        pstn_row(start=START, charge=Decimal("-1")),
        pstn_row(start=START, charge=Decimal("3"), connection_charge=None),  # no fee
    ]
    rows[0]["userId"] = None  # a bot call
    pstn.add_calls(TENANT, rows)
    report = ParseReport()

    pages = await collect(calls, START, START + timedelta(days=1))
    usage = [
        u for page in pages for u in iter_graph_rows(page, account_currency="usd", report=report)
    ]

    assert [(u.usage_id, u.user_id, u.amount) for u in usage] == [
        (usage_id.lower(), "", Decimal("1.25")),
        (rows[-1]["id"], rows[-1]["userId"], Decimal("3")),
    ]
    assert report.rows_read == 9
    assert report.skipped == {
        SkipReason.DUPLICATE_IN_FILE: 1,
        SkipReason.NOT_COMMUNICATIONS_CREDITS: 2,
        SkipReason.OTHER_CURRENCY: 1,
        SkipReason.MALFORMED: 3,
    }
    assert report.total_eligible == Decimal("4.25")


def test_a_window_ends_one_tick_before_the_next_begins() -> None:
    assert odata_time(START) == "2024-01-01T00:00:00.0000000Z"
    assert odata_time(START, tick_before=True) == "2023-12-31T23:59:59.9999999Z"
    later = START.replace(microsecond=250)
    assert odata_time(later, tick_before=True) == "2024-01-01T00:00:00.0002499Z"


async def test_a_long_wait_is_capped_not_refused(pstn, calls, sleeps) -> None:
    # A background job: Graph's hour becomes two minutes, then the page comes.
    pstn.add_calls(TENANT, [pstn_row(start=START, charge=Decimal("0.50"))])
    pstn.fail_next(429, retry_after="3600")

    pages = await collect(calls, START, START + timedelta(days=1))

    assert len(ids(pages)) == 1 and sleeps == [120.0]


async def test_a_page_without_a_value_list_is_refused(session, issued, graph) -> None:
    # The fake Graph of the directory answers anything scripted: here a 200 that is no page.
    graph.answer_next(200, b'{"@odata.context": "x"}')
    calls = GraphPstnCalls(GraphClient(session, issued, base=f"{graph.url}/v1.0"))

    with pytest.raises(GraphError) as refused:
        await collect(calls, START, START + timedelta(days=1))

    assert (refused.value.status, refused.value.code) == (200, NOT_A_PAGE)
