"""Microsoft Graph's `getPstnCalls`, app-only, per tenant: every page of a date range.

    GET {graph}/communications/callRecords/getPstnCalls(fromDateTime=…,toDateTime=…)

Graph takes at most 90 days per call, with both ends inclusive, and pages of 1,000 rows linked
by `@odata.nextLink`. `GraphPstnCalls.pages(tenant, start, end)` covers the half-open range
`start <= call start < end`: it splits it into windows of at most 90 days and asks each one up to
one tick (100 ns, .NET's resolution) before the next window begins, so a call that starts
exactly on a boundary comes once, not twice.

Each page is parsed with `parse_float=Decimal` (`credits.usage.parse_graph_page`): Graph's
`charge` and `connectionCharge` are doubles on the wire, and their decimal text is what Microsoft
billed; no binary float ever holds an amount. Feed each page to `credits.usage.iter_graph_rows`.

Throttling (429) and passing outages (502, 503, 504, a dropped connection) are retried a bounded
number of times, waiting Graph's `Retry-After` when it gives one, else exponential back-off with
jitter. The bearer token goes to Graph's origin only, whatever a next link says.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from yarl import URL

from credits.graph_directory import TokenProvider
from credits.retry_after import retry_after_seconds
from credits.usage import UsageFormatError, parse_graph_page

logger = logging.getLogger(__name__)

GRAPH_BASE = "https://graph.microsoft.com/v1.0"
MAX_WINDOW = timedelta(days=90)
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 5
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
# A Retry-After beyond this is capped: a long import may wait, but not for hours on one page.
MAX_RETRY_AFTER = 120.0
# A page of 1,000 rows is a few hundred KB; far more than that is not a page.
MAX_PAGE_BYTES = 32 << 20

# A dropped connection, a body cut short, a timeout: retried like a 503.
_PASSING_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)

Sleep = Callable[[float], Awaitable[Any]]

__all__ = ["GraphPstnCalls", "GraphUsageError", "TokenProvider", "windows"]


class GraphUsageError(RuntimeError):
    """Graph did not give the page: refused (`status` 4xx), or still failing after retries."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{status or 'no answer'} {code}: {message}"[:300])
        self.status = status
        self.code = code

    @property
    def throttled(self) -> bool:
        return self.status == 429


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


def _odata_time(when: datetime, *, tick_before: bool = False) -> str:
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
    """Pages of `getPstnCalls` for one tenant at a time."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        token_provider: TokenProvider,
        *,
        graph_base: str = GRAPH_BASE,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Sleep = asyncio.sleep,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        """`session` is shared when given (and left open by `close()`); None makes one here.
        `sleep` is injectable so tests see the waits without spending them."""
        self._owns_session = session is None
        self._session = session or aiohttp.ClientSession()
        self._tokens = token_provider
        self._base = graph_base.rstrip("/")
        self._origin = URL(self._base).origin()
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._timeout = timeout or aiohttp.ClientTimeout(total=60)

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    async def pages(
        self, tenant_id: str, start: datetime, end: datetime
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of PSTN calls that started in [start, end), window after window."""
        for window_start, window_end in windows(start, end):
            url: URL | None = self._function_url(window_start, window_end)
            logger.info("getPstnCalls for tenant %s: %s to %s", tenant_id, window_start, window_end)
            while url is not None:
                page = await self._get(tenant_id, url)
                yield page
                url = self._next_url(page)

    def _function_url(self, start: datetime, end: datetime) -> URL:
        begin = _odata_time(start)
        finish = _odata_time(end, tick_before=True)
        path = f"communications/callRecords/getPstnCalls(fromDateTime={begin},toDateTime={finish})"
        return URL(f"{self._base}/{path}", encoded=True)

    def _next_url(self, page: dict[str, Any]) -> URL | None:
        link = page.get("@odata.nextLink")
        if link is None:
            return None
        if not isinstance(link, str) or not link:
            raise GraphUsageError(200, "bad_next_link", "the next link is not a URL")
        url = URL(link, encoded=True)
        if url.origin() != self._origin:
            # The bearer token goes only to Graph, whatever a response says.
            raise GraphUsageError(200, "bad_next_link", "the next link leaves Graph")
        return url

    async def _get(self, tenant_id: str, url: URL) -> dict[str, Any]:
        status: int | None = None
        code, message = "", ""
        for attempt in range(1, self._max_attempts + 1):
            # Asked on every attempt: the provider caches, and a long wait may outlast a token.
            token = await self._tokens.token(tenant_id)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            retry_after: str | None = None
            try:
                async with self._session.get(
                    url, headers=headers, timeout=self._timeout, allow_redirects=False
                ) as response:
                    status = response.status
                    if status == 200:
                        return _page_of(await _body(response))
                    retry_after = response.headers.get("Retry-After")
                    code, message = _error_of(await _body(response))
            except _PASSING_ERRORS as error:
                status, code, message = None, "", repr(error)
            if status is not None and status not in RETRIED_STATUSES:
                logger.warning(
                    "getPstnCalls for tenant %s: %s %s", tenant_id, status, code or message[:100]
                )
                raise GraphUsageError(status, code, message)
            if attempt == self._max_attempts:
                break
            delay = _delay(attempt, retry_after)
            logger.info(
                "getPstnCalls for tenant %s: %s, retry %d in %.1fs",
                tenant_id, status or "no answer", attempt, delay,
            )  # fmt: skip
            await self._sleep(delay)
        logger.warning(
            "getPstnCalls for tenant %s: gave up after %d attempts (%s)",
            tenant_id, self._max_attempts, status or "no answer",
        )  # fmt: skip
        raise GraphUsageError(status, code or "gave_up", f"after {self._max_attempts} attempts")


async def _body(response: aiohttp.ClientResponse) -> bytes:
    """The body, refused past MAX_PAGE_BYTES rather than held whatever its size."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_PAGE_BYTES:
            raise GraphUsageError(response.status, "too_large", "response larger than a page")
        chunks.append(chunk)
    return b"".join(chunks)


def _page_of(body: bytes) -> dict[str, Any]:
    try:
        page = parse_graph_page(body)
    except UsageFormatError as error:
        raise GraphUsageError(200, "not_a_page", error.detail) from error
    if not isinstance(page.get("value"), list):
        raise GraphUsageError(200, "not_a_page", "no value list")
    return page


def _error_of(body: bytes) -> tuple[str, str]:
    """(code, message) of a Graph error body; anything else yields its text."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        error = parse_graph_page(body).get("error")
    except UsageFormatError:
        return "", text[:200]
    if not isinstance(error, dict):
        return "", text[:200]
    return str(error.get("code") or ""), str(error.get("message") or "")[:200]


def _delay(attempt: int, retry_after: str | None) -> float:
    """Graph's Retry-After when it gives one; else full-jitter exponential back-off."""
    if retry_after:
        seconds = retry_after_seconds(retry_after)
        if seconds is not None:
            return min(seconds, MAX_RETRY_AFTER)
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
