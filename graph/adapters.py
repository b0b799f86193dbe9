"""The Graph adapters of one app registration, wired for the application factory.

One aiohttp session and one token source serve both adapters. Each adapter has its own client
because they wait differently: the directory answers a chat turn (a shorter timeout, and a long
`Retry-After` is not waited), the PSTN calls reader runs in a background job.
"""

from __future__ import annotations

import asyncio

import aiohttp

from graph.client import GRAPH_BASE, GraphClient, Sleep
from graph.directory import GraphDirectory
from graph.pstn_calls import GraphPstnCalls
from graph.retries import FOR_A_TURN, IN_THE_BACKGROUND
from graph.tokens import LOGIN_BASE, GraphTokens

TURN_TIMEOUT = aiohttp.ClientTimeout(total=30)
# A page of 1,000 call records takes Graph longer than a user or two.
BACKGROUND_TIMEOUT = aiohttp.ClientTimeout(total=60)


class GraphAdapters:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        base: str = GRAPH_BASE,
        authority: str = LOGIN_BASE,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`session` is shared when given (and left open by `close()`); None makes one here."""
        self._owns_session = session is None
        self._session = session or aiohttp.ClientSession()
        self.tokens = GraphTokens(client_id, client_secret, self._session, authority=authority)
        turn = GraphClient(
            self._session,
            self.tokens,
            base=base,
            retries=FOR_A_TURN,
            timeout=TURN_TIMEOUT,
            sleep=sleep,
        )
        background = GraphClient(
            self._session,
            self.tokens,
            base=base,
            retries=IN_THE_BACKGROUND,
            timeout=BACKGROUND_TIMEOUT,
            sleep=sleep,
        )
        self.directory = GraphDirectory(turn)
        self.pstn_calls = GraphPstnCalls(background)

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def close(self) -> None:
        await self.tokens.close()
        if self._owns_session:
            await self._session.close()
