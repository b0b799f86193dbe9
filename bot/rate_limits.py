"""Teams' documented send limits, enforced before every proactive message.

Per bot and conversation: 7 in 1 s, 8 in 2 s, 60 in 30 s, 1,800 in an hour; per app and tenant:
30 a second (the live page says 50, an older one 30: we plan for 30). Moving windows (from the
`limits` library) rather than token buckets, because the limits are stated as "at most N in any
window of T", which a bucket refilling at N/T can exceed at a window's edge.

The windows live in this process's memory. Several instances each keep their own count, so
two instances alerting the same tenant at the same moment could together exceed a window;
Teams then answers 429, which is retried after its Retry-After. A shared store (the `limits`
library speaks Redis) would close that gap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

PER_CONVERSATION = ("7/1 second", "8/2 seconds", "60/30 seconds", "1800/hour")
PER_TENANT = ("30/1 second",)
# Wait a little past a window's end: clocks and queues lie between us and Teams.
JITTER_MARGIN = 0.05


class TeamsRateLimits:
    def __init__(
        self,
        per_conversation: Sequence[str] = PER_CONVERSATION,
        per_tenant: Sequence[str] = PER_TENANT,
    ) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._conversation = [parse(limit) for limit in per_conversation]
        self._tenant = [parse(limit) for limit in per_tenant]
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, tenant_id: str, conversation_id: str) -> float:
        """Wait until one more message fits every window; the seconds waited.

        The tenant's window counts the message now. The conversation's windows count it when
        `sent` is called after the answer: Teams counts arrivals, and a request can sit in a
        client queue before it leaves, so counting from the answer (which comes after the
        arrival) keeps a conversation's messages spaced as Teams sees them.
        """
        tenant = [(item, ("t", tenant_id)) for item in self._tenant]
        conversation = [(item, ("c", tenant_id, conversation_id)) for item in self._conversation]
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        started = time.monotonic()
        while True:
            async with lock:
                # Test every window first and count only when all have room, under the
                # tenant's lock, so a message never uses up one window while waiting on another.
                blocked = [
                    (item, key)
                    for item, key in [*tenant, *conversation]
                    if not await self._limiter.test(item, *key)
                ]
                if not blocked:
                    for item, key in tenant:
                        await self._limiter.hit(item, *key)
                    return time.monotonic() - started
                resets = [
                    (await self._limiter.get_window_stats(item, *key)).reset_time
                    for item, key in blocked
                ]
            await asyncio.sleep(max(0.01, max(resets) - time.time() + JITTER_MARGIN))

    async def sent(self, tenant_id: str, conversation_id: str) -> None:
        """Count a message in its conversation's windows, once its request was answered.

        A conversation's messages go one after another (the dispatcher waits for each answer),
        so between `acquire` and `sent` no other message of the conversation can slip in.
        """
        for item in self._conversation:
            await self._limiter.hit(item, "c", tenant_id, conversation_id)
