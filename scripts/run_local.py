"""`make run`: Azurite + the bot + the Microsoft 365 Agents Playground; Ctrl-C stops all three.

    python -m scripts.run_local

1. Azurite's Table service on 127.0.0.1:10002, data kept under `.data/azurite`;
2. the bot (`python app.py`) on 127.0.0.1:3978 in unauthenticated local mode, on that Azurite;
3. the Agents Playground on http://127.0.0.1:56150, pointed at the bot, once `/healthz` is 200.

The Playground probes a cloud metadata address when it starts. When this runs as root on Linux
and may create network namespaces, the three run inside a loopback-only namespace, and the
ports 56150 (and, when free, 3978 and 10002) are forwarded from the host's loopback into it, so
a browser on this machine opens http://127.0.0.1:56150 as usual. Elsewhere (a developer's
laptop) all three run directly on the host's loopback. `LOCAL_NETNS=1` insists on the
namespace, `LOCAL_NETNS=0` turns it off.

A `m365agentsplayground.yml` in the repository root, if present, sets the Playground's users,
tenant and team; without one it uses its defaults (see scripts/playground.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from scripts.azurite import Azurite
from scripts.netns import Forwarder, can_isolate, open_namespace_of
from scripts.playground import (
    DEFAULT_TENANT_ID,
    DEFAULT_USER_AAD_OBJECT_ID,
    DEFAULT_USER_NAME,
    Playground,
    PlaygroundError,
    die_with_parent,
    stop_process,
)

logger = logging.getLogger("run_local")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
AZURITE_PORT = 10002
BOT_PORT = 3978
PLAYGROUND_PORT = 56150
HEALTH_TIMEOUT = 90.0
# Set for the copy of this script that runs inside the namespace.
_INSIDE = "_RUN_LOCAL_INSIDE_NETNS"


class Stop(Exception):
    """Ctrl-C or SIGTERM: unwind and stop everything started so far."""


def _on_signal(signum: int, _frame: object) -> None:
    # First signal: unwind. Later ones (a second Ctrl-C) must not interrupt the clean-up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_healthy(bot: subprocess.Popen, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bot.poll() is not None:
            raise RuntimeError(f"the bot exited with status {bot.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def bot_environment(connection_string: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "AZURE_STORAGE_CONNECTION_STRING": connection_string,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            # The Playground sends no tokens: an app id from a developer's .env would make the
            # bot refuse to start (the environment wins over .env).
            "MicrosoftAppId": "",
            "MicrosoftAppPassword": "",
            # Offline: the embedded sandbox takes the payments, its hosted page on the bot's
            # own loopback address (where the browser opens it).
            "PAYMENT_GATEWAY": "sandbox",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop(_INSIDE, None)
    return env


def run_stack(isolated: bool) -> int:
    """Start the three processes here, wait for a signal or a crash, stop them."""
    if not isolated:
        busy = [port for port in (AZURITE_PORT, BOT_PORT) if not _port_free(port)]
        if busy:
            logger.error(
                "port %s on 127.0.0.1 is in use; stop whatever listens there (another `make run`?)",
                " and ".join(map(str, busy)),
            )
            return 1

    azurite = Azurite(port=AZURITE_PORT, location=DATA / "azurite")
    bot: subprocess.Popen | None = None
    playground: Playground | None = None
    try:
        azurite.start()
        logger.info("Azurite tables on 127.0.0.1:%d (data in %s)", AZURITE_PORT, azurite.location)

        bot = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=bot_environment(azurite.connection_string, BOT_PORT),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_healthy(bot, f"http://127.0.0.1:{BOT_PORT}/healthz", HEALTH_TIMEOUT)
        logger.info("bot healthy on http://127.0.0.1:%d/api/messages", BOT_PORT)

        playground = Playground(
            f"http://127.0.0.1:{BOT_PORT}/api/messages",
            port=PLAYGROUND_PORT,
            workdir=ROOT,
            log_file=DATA / "playground" / "m365agentsplayground.log",
            require_isolation=isolated,
            echo_output=False,
        ).start()

        _say(_banner(playground.url, isolated))

        return _watch(bot, playground)
    except Stop as stop:
        logger.info("%s: stopping", stop)
        return 0
    except (RuntimeError, PlaygroundError, OSError, TimeoutError) as error:
        logger.error("%s", error)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if playground is not None:
            playground.stop()
        if bot is not None:
            stop_process(bot)
        azurite.stop()
        logger.info("stopped the Playground, the bot and Azurite")


ISOLATED_NOTE = "  (running in a loopback-only network namespace; ports forwarded)\n"


def _banner(playground_url: str, isolated: bool) -> str:
    """Where each part of the stack is, and who the Playground's user is."""
    config = ROOT / "m365agentsplayground.yml"
    who = (
        f"users from {config.name}"
        if config.exists()
        else f"you are {DEFAULT_USER_NAME} (aadObjectId {DEFAULT_USER_AAD_OBJECT_ID}) "
        f"in tenant {DEFAULT_TENANT_ID}"
    )
    return (
        "\n"
        f"  Agents Playground  {playground_url}   <- open this, say 'help'\n"
        f"  bot                http://127.0.0.1:{BOT_PORT}/api/messages  (/healthz)\n"
        f"  Azurite tables     http://127.0.0.1:{AZURITE_PORT}/devstoreaccount1\n"
        f"  Playground: {who}\n"
        + (ISOLATED_NOTE if isolated else "")
        + "  Ctrl-C stops all three.\n"
    )


def _watch(bot: subprocess.Popen, playground: Playground) -> int:
    """Until a signal (raised as Stop), or until the bot or the Playground dies: then 1."""
    while True:
        if bot.poll() is not None:
            logger.error("the bot exited with status %s", bot.returncode)
            return 1
        if not playground.alive():
            logger.error(
                "the Agents Playground exited:\n%s", "\n".join(list(playground.output)[-20:])
            )
            return 1
        time.sleep(0.5)


def run_isolated() -> int:
    """Run `run_stack` in a new loopback-only namespace; forward its ports to this one."""
    inner = subprocess.Popen(
        [sys.executable, "-m", "scripts.netns", "--", sys.executable, "-m", "scripts.run_local"],
        cwd=ROOT,
        env={**os.environ, _INSIDE: "1"},
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    netns_fd: int | None = None
    forwarder: Forwarder | None = None
    try:
        netns_fd = open_namespace_of(inner.pid)
        forwarder = Forwarder(netns_fd, [PLAYGROUND_PORT, BOT_PORT, AZURITE_PORT]).start(
            required=(PLAYGROUND_PORT,)
        )
        logger.info(
            "forwarding 127.0.0.1:%s into the stack's network namespace",
            ", :".join(map(str, forwarder.bound)),
        )
        return inner.wait()
    except Stop as stop:
        # Ctrl-C in a terminal reaches the inner runner too; a SIGTERM sent to us only does not.
        logger.debug("%s: passing it on", stop)
        if inner.poll() is None:
            inner.send_signal(signal.SIGTERM)
        return inner.wait()
    except (OSError, TimeoutError) as error:
        logger.error("%s", error)
        if inner.poll() is None:
            inner.send_signal(signal.SIGTERM)
        inner.wait()
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if inner.poll() is None:
            inner.send_signal(signal.SIGTERM)
            inner.wait()
        if forwarder is not None:
            forwarder.stop()
        if netns_fd is not None:
            os.close(netns_fd)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    os.chdir(ROOT)

    if os.environ.get(_INSIDE) == "1":
        return run_stack(isolated=True)
    choice = os.environ.get("LOCAL_NETNS", "").strip().lower()
    if choice in ("0", "false", "no", "off"):
        return run_stack(isolated=False)
    if can_isolate():
        return run_isolated()
    if choice in ("1", "true", "yes", "on"):
        logger.error(
            "LOCAL_NETNS=1 but this process cannot create a network namespace (needs root on "
            "Linux); unset LOCAL_NETNS to run on the host's loopback"
        )
        return 1
    logger.info("no network namespace here (not root, or not allowed): using the host loopback")
    return run_stack(isolated=False)


if __name__ == "__main__":
    sys.exit(main())
