"""End-to-end fixtures: Azurite, the bot (`python app.py`), the Agents Playground, Chromium.

`make e2e` runs pytest inside a loopback-only network namespace (scripts/netns.py): the
Playground probes a cloud metadata address at start, and everything here talks to 127.0.0.1
only. Outside such a namespace the Playground refuses to start unless LOCAL_NETNS=0.

Each test gets its own bot (fresh tables), its own Playground and a fresh Chromium profile;
Azurite (in memory) is shared by the session. On failure a screenshot and the page's HTML land
in tests/e2e/artifacts/, next to the bot's and the Playground's logs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.azurite import Azurite, free_port
from scripts.playground import Playground, die_with_parent, stop_process
from scripts.run_local import bot_environment, wait_healthy
from tests.e2e.chat import REPLY_TIMEOUT, Chat

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Loopback only, even outside the namespace: other hosts go to a dead proxy, names other
    # than localhost do not resolve. (The Playground's page asks for fonts on a CDN.)
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>;127.0.0.1;localhost",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
# Enables the bot's usage API (`POST /api/tenants/{tenant}/usage`); a test derives the tenant's
# key from it with bot.usage_api.tenant_key.
USAGE_API_SECRET = "e2e-usage-api-secret-" + "0" * 24


def _isolation_required() -> bool:
    return os.environ.get("LOCAL_NETNS", "").strip().lower() not in ("0", "false", "no", "off")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(request.node, f"report_{when}", None) is not None
        and getattr(request.node, f"report_{when}").failed
        for when in ("setup", "call")
    )


def _artifact_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^\w.-]+", "_", request.node.name)


@pytest.fixture
def bot(azurite: Azurite, request: pytest.FixtureRequest) -> Iterator[str]:
    """`python app.py` in unauthenticated local mode on a free port; yields its base URL."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    env = bot_environment(azurite.connection_string, port)
    env["TABLE_PREFIX"] = "e2e" + uuid.uuid4().hex[:10]
    env["USAGE_API_SECRET"] = USAGE_API_SECRET
    log_path = ARTIFACTS / f"{_artifact_name(request)}.bot.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            wait_healthy(process, f"http://127.0.0.1:{port}/healthz", timeout=60)
        except RuntimeError as error:
            stop_process(process)
            pytest.fail(f"{error}; the bot's log:\n{log_path.read_text(errors='replace')}")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(process)


@pytest.fixture
def playground(bot: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Playground]:
    """The Agents Playground pointed at the bot, default users (no yml in its folder)."""
    instance = Playground(
        f"{bot}/api/messages",
        port=free_port(),
        workdir=tmp_path,
        log_file=ARTIFACTS / f"{_artifact_name(request)}.playground.log",
        require_isolation=_isolation_required(),
    )
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make e2e` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def page(playwright_driver, playground: Playground, request: pytest.FixtureRequest):
    """A Chromium page on the Playground (fresh profile); artifacts saved when the test fails."""
    profile = tempfile.mkdtemp(prefix="e2e-chromium-")
    context = playwright_driver.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
        locale="en-US",
    )
    try:
        tab = context.pages[0] if context.pages else context.new_page()
        tab.set_default_timeout(REPLY_TIMEOUT * 1000)
        tab.goto(playground.url + "/")
        yield tab
        if _failed(request):
            name = _artifact_name(request)
            tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            (ARTIFACTS / f"{name}.html").write_text(tab.content())
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def chat(page) -> Chat:
    return Chat(page)
