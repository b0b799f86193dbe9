"""Microsoft Graph's `getPstnCalls`, app-only, per tenant: every page of a date range.

    GET {graph}/communications/callRecords/getPstnCalls(fromDateTime=…,toDateTime=…)

Graph takes at most 90 days per call, with both ends inclusive, and pages of 1,000 rows linked
by `@odata.nextLink`. `GraphPstnCalls.pages(tenant, start, end)` covers the half-open range
`start <= call start < end`: it splits it into windows of at most 90 days and asks each one up to
one tick (100 ns, .NET's resolution) before the next window begins, so a call that starts
exactly on a boundary comes once, not twice.

Pages come from the Graph client parsed with `parse_float=Decimal`: Graph's `charge` and
`connectionCharge` are doubles on the wire, and their decimal text is what Microsoft billed; no
binary float ever holds an amount. Feed each page to `credits.usage.iter_graph_rows`. Failures
are the client's `GraphError`s.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from yarl import URL

from graph.client import GraphClient
from graph.errors import GraphError

logger = logging.getLogger(__name__)

MAX_WINDOW = timedelta(days=90)
NOT_A_PAGE = "not_a_page"


def windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive half-open windows of at most 90 days."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("usage ranges are timezone-aware")
    if start >= end:
        raise ValueError("usage range is empty")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    while start < end:
        stop = min(start + MAX_WINDOW, end)
        yield start, stop
        start = stop


def odata_time(when: datetime, *, tick_before: bool = False) -> str:
    """A DateTimeOffset literal in UTC with seven fractional digits (100 ns ticks).

    `tick_before` gives the last tick before `when`: the inclusive end of a half-open window.
    Python's datetime stops at microseconds, so the tick is counted here.
    """
    when = when.astimezone(UTC)
    ticks = when.microsecond * 10 - (1 if tick_before else 0)
    whole = when.replace(microsecond=0)
    if ticks < 0:
        whole -= timedelta(seconds=1)
        ticks += 10_000_000
    return f"{whole:%Y-%m-%dT%H:%M:%S}.{ticks:07d}Z"


class GraphPstnCalls:
    """Pages of `getPstnCalls` for one tenant at a time (`credits.usage_import.PageSource`)."""

    def __init__(self, client: GraphClient) -> None:
        self._client = client

    async def pages(
        self, tenant_id: str, start: datetime, end: datetime
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of PSTN calls that started in [start, end), window after window."""
        for window_start, window_end in windows(start, end):
            logger.info("getPstnCalls for tenant %s: %s to %s", tenant_id, window_start, window_end)
            url = self._function_url(window_start, window_end)
            async for page in self._client.pages(tenant_id, url):
                if not isinstance(page.get("value"), list):
                    raise GraphError(200, NOT_A_PAGE, "no value list")
                yield page

    def _function_url(self, start: datetime, end: datetime) -> URL:
        # Not `client.url`: the function's parentheses, commas and colons are OData syntax and
        # go as they are; the times are ours, not input.
        begin = odata_time(start)
        finish = odata_time(end, tick_before=True)
        path = f"communications/callRecords/getPstnCalls(fromDateTime={begin},toDateTime={finish})"
        return URL(f"{self._client.base}/{path}", encoded=True)
