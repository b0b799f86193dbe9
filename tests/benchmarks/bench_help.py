"""Benchmark: cold start of `python app.py` and the latency of a `help` turn.

Prints figures; asserts nothing (the machines are shared and noisy). Everything talks to
loopback: Azurite, the bot as a real subprocess, and a fake Bot Connector catching replies.

    .venv/bin/python -m tests.benchmarks.bench_help [--turns 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from scripts.azurite import ROOT, Azurite, free_port
from tests.fakes.connector import FakeConnector
from tests.support import activities


async def _wait_healthy(url: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
    raise TimeoutError(url)


async def main(turns: int) -> None:
    with Azurite() as azurite:
        connector = FakeConnector()
        runner = web.AppRunner(connector.app())
        await runner.setup()
        connector_port = free_port()
        await web.TCPSite(runner, "127.0.0.1", connector_port).start()
        connector_url = f"http://127.0.0.1:{connector_port}"

        port = free_port()
        env = {
            **os.environ,
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "PORT": str(port),
            "TABLE_PREFIX": "bench",
            "LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        bot = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(ROOT, "app.py")), env=env, cwd=ROOT
        )
        try:
            await _wait_healthy(f"http://127.0.0.1:{port}/healthz")
            cold_start = time.perf_counter() - started

            latencies = []
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/api/messages"
                for i in range(turns + 10):
                    activity = activities.message(connector_url, "help", conversation_id="a:bench")
                    begin = time.perf_counter()
                    async with session.post(url, json=activity) as response:
                        await response.read()
                        assert response.status == 201, response.status
                    if i >= 10:  # the first turns warm caches and connections
                        latencies.append(time.perf_counter() - begin)
        finally:
            bot.terminate()
            await asyncio.wait_for(bot.wait(), 10)
            await runner.cleanup()

    latencies.sort()
    print(f"cold start of python app.py until /healthz is 200: {cold_start * 1000:.0f} ms")
    print(
        f"help turn, {turns} turns: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )
    print(f"replies caught by the fake connector: {len(connector.posted)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    asyncio.run(main(parser.parse_args().turns))
