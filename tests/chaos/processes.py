"""The processes of a chaos run: instances of the service and command-line imports.

Each is started the way an operator starts it (`python app.py`, the usage command line), with
the environment of the local stack, and dies with the driver (`die_with_parent`) even when the
driver itself is killed. `kill` is kill -9: no clean-up, no flush, as a crashed host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from scripts.azurite import ROOT, die_with_parent, free_port

logger = logging.getLogger(__name__)

# The operator's usage import, as the README documents it; the one place that names it.
USAGE_CLI = ("-m", "scripts.usage")
START_TIMEOUT = 60.0


class Instance:
    """One instance of the service: `python app.py` on its own port, restartable."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.logs = logs
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.generation = 0
        """Incremented by every kill: a request that saw it change was cut by a kill."""
        self.up = False

    async def start(self) -> None:
        # A local file, opened once per start; the child writes to it, we close our copy.
        log = open(self.logs / f"{self.name}.log", "ab")  # noqa: ASYNC230, SIM115
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "app.py",
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent,
                start_new_session=True,
            )
        finally:
            log.close()
        await self._wait_healthy()
        self.up = True

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} did not become healthy in {START_TIMEOUT:.0f} s")

    def kill(self) -> bool:
        """kill -9; False when it was not running."""
        if self.process is None or self.process.returncode is not None:
            return False
        self.up = False
        self.generation += 1
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        return True

    async def reap(self) -> None:
        if self.process is not None:
            await self.process.wait()

    @property
    def pid(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    async def stop(self) -> None:
        """At the end of the run: a clean stop, so the instance's logs are complete."""
        if self.process is None or self.process.returncode is not None:
            return
        self.up = False
        self.process.terminate()
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            self.kill()
            await self.process.wait()


async def start_cli_import(
    env: dict[str, str], path: Path, tenant_id: str, stderr: Path
) -> asyncio.subprocess.Process:
    with open(stderr, "wb") as errors:  # noqa: ASYNC230 - a local file for the child
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *USAGE_CLI,
            "import",
            str(path),
            "--tenant",
            tenant_id,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )


def pid_of_peer(port: int, pids: list[int]) -> int | None:
    """Which of `pids` owns the local TCP port `port` (Linux /proc): who sent a request."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
    return None
