"""One HTTP client for Microsoft Graph v1.0, app-only, for every tenant that installed the bot.

Every call carries the tenant's bearer token (asked of a `TokenSource` on every attempt: it
caches, and a long wait may outlast a token) and goes through one retry loop (`retries.py`).
The client never follows a redirect, and sends the token only to Graph's origin, whatever an
`@odata.nextLink` says. Bodies are read up to a bound. JSON is parsed with `parse_float=Decimal`
and NaN and Infinity are refused, so no amount ever passes through a binary float. Anything
else than a success becomes a `GraphError`.

A request that is not a GET and may have reached Graph (the connection dropped or timed out
after it was sent) is not repeated: repeating an assignLicense that was applied would fail.

The base URL is a parameter so the tests point the client at a fake on loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from graph.errors import BAD_NEXT_LINK, GAVE_UP, NOT_JSON, TOO_LARGE, GraphError
from graph.retries import FOR_A_TURN, RETRIED_STATUSES, Retries

logger = logging.getLogger(__name__)

GRAPH_BASE = "https://graph.microsoft.com/v1.0"
# A page of 1,000 call records is a few hundred KB, of 999 users less: far more is not a page.
MAX_BODY_BYTES = 32 << 20
# A dropped connection, a body cut short, a timeout: retried like a 503.
_PASSING_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
# Failures before the request left: safe to repeat whatever the method.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class _Failure:
    """An attempt that brought no success: Graph's error answer, or none (`status` None)."""

    status: int | None
    code: str
    message: str
    retry_after: str | None = None


class TokenSource(Protocol):
    async def token(self, tenant_id: str) -> str:
        """An app-only access token for Microsoft Graph in this tenant; raises TokenError."""


class GraphClient:
    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        tokens: TokenSource,
        *,
        base: str = GRAPH_BASE,
        retries: Retries = FOR_A_TURN,
        timeout: aiohttp.ClientTimeout | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`session` is shared when given (and left open by `close()`); None makes one here.
        `sleep` is injectable so tests see the waits without spending them."""
        self._owns_session = session is None
        self._session = session or aiohttp.ClientSession()
        self._tokens = tokens
        self._base = base.rstrip("/")
        self._origin = URL(self._base).origin()
        self._retries = retries
        self._timeout = timeout or aiohttp.ClientTimeout(total=30)
        self._max_body_bytes = max_body_bytes
        self._sleep = sleep

    @property
    def base(self) -> str:
        return self._base

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    def url(self, *segments: str) -> URL:
        """Graph's base joined with `segments`, each quoted: an id cannot change the path."""
        path = "/".join(_segment(segment) for segment in segments)
        return URL(f"{self._base}/{path}", encoded=True)

    async def get(
        self, tenant_id: str, url: URL, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        return await self._request(tenant_id, "GET", url, params=params)

    async def post(self, tenant_id: str, url: URL, body: dict[str, Any]) -> dict[str, Any]:
        return await self._request(tenant_id, "POST", url, json=body)

    async def pages(
        self, tenant_id: str, url: URL, params: dict[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of a collection, following `@odata.nextLink` to the last page."""
        next_url: URL | None = url
        while next_url is not None:
            page = await self._request(tenant_id, "GET", next_url, params=params)
            yield page
            # The next link already carries the query (and its opaque skip token).
            next_url, params = self._next_url(page), None

    def _next_url(self, page: dict[str, Any]) -> URL | None:
        link = page.get("@odata.nextLink")
        if link is None:
            return None
        if not isinstance(link, str) or not link:
            raise GraphError(200, BAD_NEXT_LINK, "the next link is not a URL")
        url = URL(link, encoded=True)
        if not url.absolute or url.origin() != self._origin:
            # The bearer token goes only to Graph, whatever a response says.
            raise GraphError(200, BAD_NEXT_LINK, "the next link leaves Graph")
        return url

    async def _request(
        self,
        tenant_id: str,
        method: str,
        url: URL,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The one retry loop: an answer, or a GraphError once retrying is over."""
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(tenant_id, method, url, params, json)
            if not isinstance(outcome, _Failure):
                return outcome
            where = f"graph {method} {url.path} for tenant {tenant_id}"
            if outcome.status is not None and outcome.status not in RETRIED_STATUSES:
                logger.warning("%s: %s %s", where, outcome.status, outcome.code)
                raise GraphError(outcome.status, outcome.code, outcome.message)
            answer = outcome.status or "no answer"
            delay = self._retries.delay(attempt, outcome.retry_after)
            if delay is None:
                break
            logger.info("%s: %s, retry %d in %.1fs", where, answer, attempt, delay)
            await self._sleep(delay)
        logger.warning("%s: gave up after %d attempts (%s)", where, attempt, answer)
        detail = f"after {attempt} attempts: {outcome.code} {outcome.message}"
        raise GraphError(outcome.status, GAVE_UP, detail, transient=True)

    async def _attempt(
        self,
        tenant_id: str,
        method: str,
        url: URL,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
    ) -> dict[str, Any] | _Failure:
        # Asked on every attempt: the source caches, and a long wait may outlast a token.
        token = await self._tokens.token(tenant_id)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=json,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await self._body(response)
                if 200 <= response.status < 300:
                    return _json_object(response.status, body)
                code, message = _error_of(body)
                return _Failure(response.status, code, message, response.headers.get("Retry-After"))
        except _PASSING_ERRORS as error:
            if method != "GET" and not isinstance(error, _NOT_SENT):
                # It may have reached Graph: whether it was applied is unknown.
                logger.warning("graph %s %s for tenant %s: %r", method, url.path, tenant_id, error)
                raise GraphError(None, "", repr(error), transient=True) from error
            return _Failure(None, "", repr(error))

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, refused past the bound rather than held whatever its size."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_body_bytes:
                raise GraphError(response.status, TOO_LARGE, f"more than {size - len(chunk)} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _segment(text: str) -> str:
    quoted = quote(text, safe="")
    # "." and ".." would climb the path where it is normalised: keep them one literal segment.
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _loads(body: bytes) -> Any:
    """JSON with every number that has a fraction as a Decimal; NaN and Infinity refused."""
    return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)


def _json_object(status: int, body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}  # 204 No Content, or an empty 202
    try:
        value = _loads(body)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise GraphError(status, NOT_JSON, str(error)[:200]) from error
    if not isinstance(value, dict):
        raise GraphError(status, NOT_JSON, "not a JSON object")
    return value


def _error_of(body: bytes) -> tuple[str, str]:
    """(code, message) of a Graph error body; anything else yields its text."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        value = _loads(body)
    except ValueError:
        return "", text[:200]
    error = value.get("error") if isinstance(value, dict) else None
    if not isinstance(error, dict):
        return "", text[:200]
    return str(error.get("code") or ""), str(error.get("message") or "")[:300]
