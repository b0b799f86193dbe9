"""The keys that sign the tokens Teams sends, read off the turn's path.

The Bot Framework lists them in its OpenID metadata (`jwks_uri`), each with the channels it is
endorsed for. botbuilder reads them with a blocking `requests.get` without a timeout, on the
event loop, and again for every token while reading fails: an outage of that endpoint stalled
every chat of every tenant. Here they are read with aiohttp, with a timeout, in the background
(at start, then once a day, as Microsoft advises), and kept: a turn waits for a read only when
no key has ever been read, or when a token names a key the list does not have (Microsoft has
published a new one), and then at most once per `unknown_key_every` and never for longer than
the timeout. After a failed read the next waits longer (`retry_first`, doubling up to
`retry_most`); meanwhile the keys last read keep serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from jwt import PyJWK
from jwt.exceptions import PyJWKError
from yarl import URL

logger = logging.getLogger(__name__)

# The metadata and the key list are a few kilobytes; far more is not them.
MAX_DOCUMENT_BYTES = 256 * 1024


class UnknownKey(PermissionError):
    """A token names a key the Bot Framework does not list: the request is not authenticated
    (botbuilder's adapter answers a PermissionError with 401)."""


class KeysUnavailable(Exception):
    """No signing key could be read yet: a token cannot be checked now (answer 503)."""


@dataclass(frozen=True)
class SigningKey:
    key: Any
    """The public key, as PyJWT verifies with it."""
    endorsements: frozenset[str]
    """The channels (`msteams`, …) whose tokens this key may sign."""


class _ReadFailed(Exception):
    """One read of the metadata or the key list failed (the reason is logged)."""


class SigningKeys:
    def __init__(
        self,
        metadata_url: str,
        *,
        timeout: float = 10.0,
        refresh_every: float = 24 * 3600.0,
        unknown_key_every: float = 300.0,
        retry_first: float = 1.0,
        retry_most: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata_url = metadata_url
        self._timeout = timeout
        self._refresh_every = refresh_every
        self._unknown_key_every = unknown_key_every
        self._retry_first = retry_first
        self._retry_most = retry_most
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._keys: Mapping[str, SigningKey] = {}
        self._failures = 0
        self._next_attempt = float("-inf")
        self._last_unknown_read = float("-inf")
        self._reading: asyncio.Task[None] | None = None

    async def get(self, key_id: str) -> SigningKey:
        """The key a token names; raises UnknownKey or KeysUnavailable."""
        key = self._keys.get(key_id)
        if key is not None:
            return key
        now = self._clock()
        if now < self._next_attempt or (
            self._keys and now - self._last_unknown_read < self._unknown_key_every
        ):
            # Backing off after a failed read, or the list was read again a moment ago.
            raise UnknownKey(key_id) if self._keys else KeysUnavailable()
        if self._keys:
            self._last_unknown_read = now
        await self.refresh()
        key = self._keys.get(key_id)
        if key is not None:
            return key
        raise UnknownKey(key_id) if self._keys else KeysUnavailable()

    async def refresh(self) -> None:
        """Read the keys again; one read at a time, whoever asks. Never raises: a failure is
        logged and counted for the back-off."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read())
        # Shielded: a request that gives up waiting does not cancel the read for the others.
        await asyncio.shield(self._reading)

    async def run(self) -> None:
        """Keep the keys fresh: read now, then daily; sooner again after a failure."""
        while True:
            await self.refresh()
            if self._failures:
                delay = max(0.0, self._next_attempt - self._clock())
            else:
                delay = self._refresh_every
            await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._reading is not None and not self._reading.done():
            self._reading.cancel()
        if self._session is not None:
            await self._session.close()

    @property
    def known(self) -> frozenset[str]:
        """The ids of the keys read so far."""
        return frozenset(self._keys)

    # --- reading ----------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                metadata = await self._document(self._metadata_url)
                keys = _keys_of(await self._document(_jwks_uri(metadata, self._metadata_url)))
        except (_ReadFailed, TimeoutError, aiohttp.ClientError) as error:
            self._failures += 1
            wait = min(self._retry_first * 2 ** (self._failures - 1), self._retry_most)
            self._next_attempt = self._clock() + wait
            logger.warning(
                "could not read the Bot Framework's signing keys (%s); %d kept, next try in %.0f s",
                _reason(error),
                len(self._keys),
                wait,
            )
            return
        self._keys = keys
        self._failures = 0
        self._next_attempt = float("-inf")
        logger.info("read %d Bot Framework signing keys", len(keys))

    async def _document(self, url: str) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        async with self._session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise _ReadFailed(f"{url} answered {response.status}")
            body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        if len(body) > MAX_DOCUMENT_BYTES:
            raise _ReadFailed(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise _ReadFailed(f"{url} did not send JSON") from error
        if not isinstance(document, dict):
            raise _ReadFailed(f"{url} did not send a JSON object")
        return document


def _jwks_uri(metadata: dict[str, Any], metadata_url: str) -> str:
    uri = metadata.get("jwks_uri")
    if not isinstance(uri, str):
        raise _ReadFailed("the metadata has no jwks_uri")
    # The key list comes from where the metadata came from, never over plain http elsewhere.
    metadata_origin, keys = URL(metadata_url).origin(), URL(uri)
    if not keys.absolute or (keys.scheme != "https" and keys.origin() != metadata_origin):
        raise _ReadFailed("the metadata's jwks_uri is not an https URL")
    return uri


def _keys_of(document: dict[str, Any]) -> dict[str, SigningKey]:
    keys: dict[str, SigningKey] = {}
    for item in document.get("keys") or []:
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str):
            continue
        endorsements = item.get("endorsements") or []
        try:
            key = PyJWK(item).key
        except (PyJWKError, ValueError, TypeError) as error:
            logger.warning("skipped signing key %s: %s", item["kid"], error)
            continue
        keys[item["kid"]] = SigningKey(
            key, frozenset(e for e in endorsements if isinstance(e, str))
        )
    if not keys:
        raise _ReadFailed("the key list holds no usable key")
    return keys


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) or type(error).__name__
