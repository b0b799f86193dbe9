"""Background jobs under leases on Azurite: one instance at a time, every tenant visited."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import AzureError

from credits.jobs import Job, JobRunner
from storage.leases import TableLeases


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_a_lease_has_one_holder_until_it_expires(table_store):
    clock = Clock()
    leases = TableLeases(table_store.table(table_store.names.leases), clock)
    results = await asyncio.gather(
        *(leases.acquire("expiry", f"instance-{i}", timedelta(minutes=5)) for i in range(8))
    )
    assert results.count(True) == 1
    winner = f"instance-{results.index(True)}"
    assert await leases.acquire("expiry", winner, timedelta(minutes=5))  # renewal
    assert not await leases.acquire("expiry", "late", timedelta(minutes=5))
    clock.now += timedelta(minutes=6)
    assert await leases.acquire("expiry", "late", timedelta(minutes=5))
    await leases.release("expiry", winner)  # not its lease any more: nothing happens
    assert not await leases.acquire("expiry", winner, timedelta(minutes=5))
    await leases.release("expiry", "late")
    assert await leases.acquire("expiry", winner, timedelta(minutes=5))


async def test_two_instances_never_run_a_pass_at_once(table_store):
    running = 0
    most = 0
    visited: list[str] = []

    async def work(tenant: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        visited.append(tenant)
        running -= 1

    async def tenants() -> list[str]:
        return ["t1", "t2", "t3"]

    job = Job("usage-sync", timedelta(seconds=30), work)
    runners = [
        JobRunner(
            [job],
            TableLeases(table_store.table(table_store.names.leases)),
            tenants,
            owner=f"instance-{i}",
            errors=(AzureError,),
        )
        for i in range(2)
    ]
    done = await asyncio.gather(runners[0].run_once(job), runners[1].run_once(job))
    assert sorted(done) == [0, 3]
    assert most == 1 and sorted(visited) == ["t1", "t2", "t3"]
    # Released after the pass: the next pass may run anywhere.
    assert await runners[1].run_once(job) == 3


async def test_one_tenant_failing_does_not_stop_the_others(table_store):
    async def work(tenant: str) -> None:
        if tenant == "bad":
            raise AzureError("storage hiccup")

    async def tenants() -> list[str]:
        return ["a", "bad", "c"]

    job = Job("expiry", timedelta(seconds=30), work)
    runner = JobRunner(
        [job],
        TableLeases(table_store.table(table_store.names.leases)),
        tenants,
        owner="me",
        errors=(AzureError,),
    )
    assert await runner.run_once(job) == 2


class DeadStorageLeases:
    """Stands for Table storage gone at shutdown: acquiring worked, releasing never answers
    (the storage client retrying a refused connection)."""

    def __init__(self) -> None:
        self.releases = 0

    async def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        return True

    async def release(self, name: str, owner: str) -> None:
        self.releases += 1
        await asyncio.Event().wait()


async def _cancelled_pass(leases) -> None:
    started = asyncio.Event()

    async def work(_tenant: str) -> None:
        started.set()
        await asyncio.sleep(3600)

    async def tenants() -> list[str]:
        return ["t1"]

    job = Job("runway", timedelta(hours=1), work)
    runner = JobRunner([job], leases, tenants, owner="stopping", errors=(AzureError,))
    task = asyncio.create_task(runner.run_once(job))
    await started.wait()
    task.cancel()
    # The pass ends once cancelled (its lease released or left); 10 s only guards a hang.
    done, _ = await asyncio.wait({task}, timeout=10)
    task.cancel()  # again, should it still be waiting
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert done == {task}, "the cancelled pass was still waiting on its lease"


async def test_a_pass_cancelled_at_shutdown_does_not_wait_on_dead_storage():
    """tests/bot/test_http.py's healthz test hung so: the shutdown cancelled a pass, whose
    release of its lease waited out the storage client's retries."""
    leases = DeadStorageLeases()
    await _cancelled_pass(leases)
    assert leases.releases == 1  # tried, then left to run out


async def test_a_pass_cancelled_at_shutdown_releases_its_lease(table_store):
    leases = TableLeases(table_store.table(table_store.names.leases), Clock())
    await _cancelled_pass(leases)
    assert await leases.acquire("runway", "other", timedelta(hours=2))


async def test_a_finished_pass_releases_its_lease(table_store):
    leases = TableLeases(table_store.table(table_store.names.leases), Clock())

    async def tenants() -> list[str]:
        return ["t1"]

    async def work(_tenant: str) -> None:
        return None

    job = Job("runway", timedelta(hours=1), work)
    runner = JobRunner([job], leases, tenants, owner="one", errors=(AzureError,))
    assert await runner.run_once(job) == 1
    assert await leases.acquire("runway", "other", timedelta(hours=2))
