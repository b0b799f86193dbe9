"""Start and stop the Microsoft 365 Agents Playground (npm `@microsoft/m365agentsplayground`).

The Playground is a Teams-like web client with a mock Bot Connector. Two of its habits matter:

* at start it opens a browser with `xdg-open` and exits when that fails, so it gets
  `TEAMSAPPTESTER_BROWSER=none` and, in case that is ignored, a no-op `xdg-open` first on PATH;
* it probes a cloud metadata address, so on a shared machine it must run in a loopback-only
  network namespace (see scripts/netns.py); `require_isolation=True` refuses to start elsewhere.

It reads `m365agentsplayground.yml` (users, tenant, team) from its working directory when the
file exists; without one it uses its built-in defaults (tenant
00000000-0000-0000-0000-0000000000001, current user "Alex Wilber" with aadObjectId
00000000-0000-0000-0000-0000000000020, bot "Test Bot").
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

from scripts.azurite import die_with_parent, free_port
from scripts.netns import is_loopback_only

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
AGENTS_PLAYGROUND = ROOT / "node_modules" / ".bin" / "agentsplayground"

# The built-in configuration of @microsoft/m365agentsplayground 0.2.28 (dist/index.js).
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-0000000000001"
DEFAULT_USER_ID = "user-id-0"
DEFAULT_USER_NAME = "Alex Wilber"
DEFAULT_USER_AAD_OBJECT_ID = "00000000-0000-0000-0000-0000000000020"
DEFAULT_BOT_ID = "00000000-0000-0000-0000-00000000000011"
DEFAULT_BOT_NAME = "Test Bot"

_LISTENING = re.compile(r"Listening on (\d+)")


class PlaygroundError(RuntimeError):
    pass


class Playground:
    """One Agents Playground process, pointed at a bot's `/api/messages`."""

    def __init__(
        self,
        endpoint: str,
        *,
        port: int | None = None,
        workdir: Path | None = None,
        log_file: Path | None = None,
        require_isolation: bool = True,
        echo_output: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.port = port or free_port()
        self.workdir = workdir or ROOT
        self.log_file = log_file
        self.require_isolation = require_isolation
        self.echo_output = echo_output
        self.output: deque[str] = deque(maxlen=200)  # its latest console lines
        self._process: subprocess.Popen[str] | None = None
        self._shim_dir: str | None = None
        self._reader: threading.Thread | None = None
        self._listening = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _environment(self) -> dict[str, str]:
        self._shim_dir = tempfile.mkdtemp(prefix="playground-shim-")
        shim = Path(self._shim_dir) / "xdg-open"
        shim.write_text("#!/bin/sh\n# no browser here: the URL is printed instead\nexit 0\n")
        shim.chmod(0o755)
        env = dict(os.environ)
        env["PATH"] = self._shim_dir + os.pathsep + env.get("PATH", "")
        env["TEAMSAPPTESTER_BROWSER"] = "none"
        # Its log and event recordings default to ./devTools; keep them out of the source tree.
        log_file = self.log_file or Path(self._shim_dir) / "m365agentsplayground.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env["M365_AGENTS_PLAYGROUND_LOGFILE"] = str(log_file)
        env["M365_AGENTS_PLAYGROUND_RECORDING_FILE"] = str(log_file.with_suffix(".events.log"))
        return env

    def start(self, timeout: float = 60.0) -> Playground:
        if self.require_isolation and not is_loopback_only():
            raise PlaygroundError(
                "refusing to start the Agents Playground outside a loopback-only network "
                "namespace (it probes a cloud metadata address); run it through "
                "`python -m scripts.netns -- ...` (make does), or set LOCAL_NETNS=0 to allow it"
            )
        if not AGENTS_PLAYGROUND.exists():
            raise FileNotFoundError(f"{AGENTS_PLAYGROUND} is missing: run `npm ci` (make does)")
        args = [
            str(AGENTS_PLAYGROUND),
            "--app-endpoint",
            self.endpoint,
            "--channel-id",
            "msteams",
            "--port",
            str(self.port),
            "--disable-telemetry",
        ]
        self._process = subprocess.Popen(
            args,
            cwd=self.workdir,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise
        logger.info("Agents Playground on %s", self.url)
        return self

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip()
            self.output.append(line)
            if self.echo_output and line:
                logger.info("playground: %s", line)
            match = _LISTENING.search(line)
            if match:
                # It takes another port when the one asked for is busy.
                self.port = int(match.group(1))
                self._listening.set()

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise PlaygroundError(
                    "the Agents Playground exited at start:\n" + "\n".join(list(self.output)[-20:])
                )
            if self._listening.is_set():
                try:
                    with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                        if response.status == 200:
                            return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.1)
        raise PlaygroundError(f"the Agents Playground did not answer on {self.url} in {timeout} s")

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if self._shim_dir is not None:
            shutil.rmtree(self._shim_dir, ignore_errors=True)
            self._shim_dir = None

    def __enter__(self) -> Playground:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _exited(pid: int, timeout: float) -> bool:
    """Wait for `pid` to exit WITHOUT reaping it, so its process group id stays reserved."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a child started with `start_new_session=True`, and everything in its group.

    SIGTERM to the group, SIGKILL after `timeout`; the leader is reaped only at the end, so
    the group id cannot have been reused by an unrelated process when it is signalled.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        if not _exited(process.pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _exited(process.pid, timeout)
        # Whatever is left in the group (a grandchild) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
