"""Benchmark: how long the Agents Playground takes to show the bot's reply as a chat grows.

A reply's latency is measured in the page, as an admin sees it: from the press of Send to the
bot's message appearing in the chat (headless Chromium, through Playwright). Each run is a new
chat (its own bot, tables and Playground) of `--messages` typed commands cycling through those
that answer with one message each (forms, the status card, the help text); the figure of issue
14 is the latency of the fiftieth. With `--form`, the chat is one add-funds form whose amount
is reviewed `--messages` times, wrong each time (alternately zero and three decimals): a reply
is the new error shown in the chat's last card, whether the bot posts a new form (Action.Submit)
or changes the card in place (Action.Execute). Prints figures; asserts nothing (the machines are
shared).

Like `make e2e`, it must run inside a loopback-only network namespace (the Playground probes a
cloud metadata address), which `make bench` does:

    .venv/bin/python -m scripts.netns -- .venv/bin/python -m tests.benchmarks.bench_playground
    [--runs 3] [--messages 50] [--form]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from locales import Localizer
from scripts.azurite import ROOT, Azurite, free_port
from scripts.playground import Playground, die_with_parent, stop_process
from scripts.run_local import bot_environment, wait_healthy
from tests.e2e.chat import Chat

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# What an admin types in a long session; each command answers with exactly one message.
COMMANDS = ("status", "add funds", "help", "alerts", "usage", "auto-recharge", "alert history")
REPLY_TIMEOUT_MS = 60_000


def one_chat(driver, azurite: Azurite, messages: int, logs: Path, form: bool) -> list[float]:
    """One new chat; the seconds from Send to the reply shown, for each message in order."""
    from tests.e2e.conftest import CHROMIUM_ARGS

    port = free_port()
    env = bot_environment(azurite.connection_string, port)
    env["TABLE_PREFIX"] = "bench" + uuid.uuid4().hex[:10]
    env["LOG_LEVEL"] = "WARNING"
    with (logs / "bot.log").open("ab") as log:
        bot = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    playground = None
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    workdir = tempfile.mkdtemp(prefix="bench-playground-")
    try:
        wait_healthy(bot, f"http://127.0.0.1:{port}/healthz", timeout=60)
        playground = Playground(
            f"http://127.0.0.1:{port}/api/messages",
            workdir=Path(workdir),
            log_file=logs / "playground.log",
            require_isolation=os.environ.get("LOCAL_NETNS", "") not in ("0", "false", "no", "off"),
        )
        playground.start()
        context = driver.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
            locale="en-US",
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(REPLY_TIMEOUT_MS)
            page.goto(playground.url + "/")
            chat = Chat(page)
            _wait_for_messages(page, 0)  # the welcome card
            if form:
                _turn(page, chat, "add funds")
                return [_review(page, chat, index) for index in range(messages)]
            return [_turn(page, chat, COMMANDS[index % len(COMMANDS)]) for index in range(messages)]
        finally:
            context.close()
    finally:
        if playground is not None:
            playground.stop()
        stop_process(bot)
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _turn(page, chat: Chat, text: str) -> float:
    before = chat.count()
    page.locator(Chat.COMPOSE_BOX).click()
    page.keyboard.type(text)
    send = page.get_by_role("button", name="Send Message", exact=True)
    started = time.perf_counter()
    send.click()
    _wait_for_messages(page, before)
    return time.perf_counter() - started


def _review(page, chat: Chat, index: int) -> float:
    """Review a wrong amount on the chat's last card; seconds until its error shows there."""
    en = Localizer.from_directory().translator("en-US")
    amount, error = (
        ("0", en("error.amount.zero"))
        if index % 2 == 0
        else ("12.345", en.ngettext("error.amount.too_many_decimals", 2, decimals="2"))
    )
    card = chat.bot_messages.last
    card.get_by_label(en("add_funds.amount_label", currency="USD")).fill(amount)
    review = card.get_by_role("button", name=en("add_funds.review"), exact=True)
    started = time.perf_counter()
    review.click()
    page.wait_for_function(
        "([selector, text]) => { const all = document.querySelectorAll(selector);"
        " return all.length > 0 && all[all.length - 1].innerText.includes(text); }",
        arg=[Chat.BOT_MESSAGE, error],
        polling="raf",
    )
    return time.perf_counter() - started


def _wait_for_messages(page, more_than: int) -> None:
    page.wait_for_function(
        "([selector, count]) => document.querySelectorAll(selector).length > count",
        arg=[Chat.BOT_MESSAGE, more_than],
        polling="raf",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--form", action="store_true", help="review one form's amount instead")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make e2e` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    logs = Path(tempfile.mkdtemp(prefix="bench-playground-logs-"))
    runs: list[list[float]] = []
    with Azurite() as azurite, sync_playwright() as driver:
        for _ in range(args.runs):
            runs.append(one_chat(driver, azurite, args.messages, logs, args.form))
    last = [run[-1] for run in runs]
    first_ten = [statistics.median(run[:10]) for run in runs]
    last_ten = [statistics.median(run[-10:]) for run in runs]
    print(
        f"Playground reply latency, {'review' if args.form else 'message'} {args.messages} "
        f"of a chat, {args.runs} runs: "
        f"median {statistics.median(last) * 1000:.0f} ms "
        f"(each run: {', '.join(f'{s * 1000:.0f}' for s in last)} ms)"
    )
    print(
        f"median latency of messages 1-10: {statistics.median(first_ten) * 1000:.0f} ms; "
        f"of the last 10: {statistics.median(last_ten) * 1000:.0f} ms"
    )
    print(f"bot and Playground logs: {logs}")


if __name__ == "__main__":
    main()
