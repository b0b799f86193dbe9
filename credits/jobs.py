"""Background jobs: order recovery, auto-recharge retries, funds expiry, run under leases.

Every instance runs the loop; a job's pass runs only on the instance holding its lease, so any
number of instances can serve the same tables without running a job twice at once. Each pass is
safe to repeat anyway (idempotency keys, ETags), so a lease lost mid-pass costs time, not money.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

logger = logging.getLogger(__name__)

RELEASE_AT_SHUTDOWN = timedelta(seconds=2)
"""How long a shutdown waits to release a job's lease before leaving it to run out."""


class Leases(Protocol):
    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool: ...

    async def release(self, name: str, owner: str) -> None: ...


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run_for_tenant: Callable[[str], Awaitable[object]]
    at_start: bool = False
    """Pass once when the service starts too (work a deployment brings), not only after `every`."""


class JobRunner:
    def __init__(
        self,
        jobs: Sequence[Job],
        leases: Leases,
        tenants: Callable[[], Awaitable[list[str]]],
        *,
        owner: str,
        errors: tuple[type[Exception], ...],
    ) -> None:
        self._jobs = jobs
        self._leases = leases
        self._tenants = tenants
        self._owner = owner
        self._errors = errors

    async def run_once(self, job: Job) -> int:
        """One pass of a job over every tenant, if this instance gets its lease; tenants done."""
        if not await self._leases.acquire(job.name, self._owner, job.every * 2):
            return 0
        done = 0
        shutting_down = False
        try:
            for tenant_id in await self._tenants():
                try:
                    await job.run_for_tenant(tenant_id)
                    done += 1
                except self._errors:
                    # One tenant's failure must not starve the others; the next pass retries.
                    logger.exception("job %s failed for tenant %s", job.name, tenant_id)
        except asyncio.CancelledError:
            shutting_down = True
            raise
        finally:
            if shutting_down:
                await self._release_briefly(job)
            else:
                await self._leases.release(job.name, self._owner)
        return done

    async def _release_briefly(self, job: Job) -> None:
        """Shutting down: release the lease if storage answers at once; else it runs out by
        itself. Waiting out the storage client's retries (storage being what failed) would
        hold up the shutdown."""
        with contextlib.suppress(TimeoutError, *self._errors):
            async with asyncio.timeout(RELEASE_AT_SHUTDOWN.total_seconds()):
                await self._leases.release(job.name, self._owner)

    async def forever(self, job: Job) -> None:
        first = job.at_start
        while True:
            if not first:
                await asyncio.sleep(job.every.total_seconds())
            first = False
            try:
                await self.run_once(job)
            except self._errors:
                logger.exception("job %s pass failed; the next pass tries again", job.name)
