"""One chaos run from start to verdict: the stack up, the chaos, the settling, the audit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from azure.data.tables.aio import TableServiceClient

from scripts.azurite import Azurite, free_port
from tests.chaos.audit import Check, Evidence, Tables, audit, settle
from tests.chaos.connector import ChaosConnector, Faults
from tests.chaos.driver import Driver, Stats
from tests.chaos.processes import Instance

logger = logging.getLogger(__name__)

# Columns of the per-minute table: (heading, the stats each adds up).
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("orders", ("order",)),
    ("imp cli", ("import cli",)),
    ("imp http", ("import http",)),
    ("imp chat", ("import chat",)),
    ("imp 429", ("import throttled",)),
    ("kill inst", ("kill instance",)),
    ("kill sender", ("kill sender",)),
    ("kill mid-imp", ("kill import",)),
    ("kill mid-order", ("kill order",)),
    ("kill cli", ("kill cli",)),
    ("cut req", ("request cut",)),
    ("cut alert", ("alert cut",)),
    ("alerts 201", ("alert accepted",)),
    ("429", ("alert 429",)),
    ("5xx", ("alert 500", "alert 503")),
    ("403", ("alert 403",)),
)


@dataclass(frozen=True)
class Options:
    seed: int
    seconds: float
    tenants: int
    settle: float
    keep: bool


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run(options: Options) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    (workdir / "logs").mkdir()
    (workdir / "files").mkdir()
    out(
        f"chaos: seed {options.seed}, {options.seconds:.0f} s, {options.tenants} tenants, "
        f"2 instances, work in {workdir}"
    )
    try:
        checks, stats, minutes = await _run(options, workdir)
    except BaseException:
        out(f"chaos: the run itself failed; logs kept in {workdir}")
        raise
    _print_minutes(stats, minutes)
    out("checks:")
    for check in checks:
        out(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.summary}")
        for problem in check.problems[:8]:
            out(f"          {problem}")
        if len(check.problems) > 8:
            out(f"          … and {len(check.problems) - 8} more")
    failed = [c for c in checks if not c.ok]
    verdict = "FAIL" if failed else "PASS"
    out(f"chaos: {verdict} (seed {options.seed}, {options.seconds:.0f} s)")
    if failed or options.keep:
        out(f"chaos: logs and files kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


async def _run(options: Options, workdir: Path) -> tuple[list[Check], Stats, float]:
    prefix = "chaos" + secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    with Azurite() as azurite:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("Microsoft", "AZURE_", "DANGEROUSLY_", "USAGE_", "TABLE_"))
        }
        env |= {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "TABLE_PREFIX": prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "USAGE_API_SECRET": secret,
            "USAGE_DOWNLOAD_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        connector = ChaosConnector(options.seed)
        runner = web.AppRunner(connector.app(), access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        connector.url = f"http://127.0.0.1:{port}"
        instances = [Instance(f"instance-{n}", env, workdir / "logs") for n in "ab"]
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        tables = Tables(service, prefix)
        try:
            await asyncio.gather(*(instance.start() for instance in instances))
            driver = Driver(
                seed=options.seed,
                tenants=options.tenants,
                instances=instances,
                connector=connector,
                cli_env={**env, "LOG_LEVEL": "WARNING"},
                usage_secret=secret,
                workdir=workdir,
                sending_now=tables.sending,
            )
            logger.info("the chaos begins")
            await driver.run(options.seconds)
            chaos_minutes = (time.monotonic() - driver.stats.started) / 60
            connector.faults = Faults.none()
            logger.info("settling: waiting for order recovery, recharges and the alert sweep")
            waited, left = await settle(tables, options.settle)
            logger.info("settled after %.0f s", waited)
            for instance in instances:
                await instance.stop()
            _alert_stats(driver.stats, connector)
            evidence = Evidence(
                tenants=[t.tenant_id for t in driver.tenants],
                accepted=connector.accepted(),
                killed_mid_send=driver.killed_mid_send | connector.cut(),
                imports=driver.imports,
                pressed=driver.pressed,
                removed=driver.removed,
                logs=sorted((workdir / "logs").glob("*.log")),
            )
            checks = await audit(tables, evidence, left)
            checks[0].summary += f" after {waited:.0f} s"
            return checks, driver.stats, chaos_minutes
        finally:
            for instance in instances:
                if instance.kill():
                    await instance.reap()
            with contextlib.suppress(Exception):
                await service.close()
            await runner.cleanup()


def _alert_stats(stats: Stats, connector: ChaosConnector) -> None:
    for post in connector.alerts:
        stats.events.append((post.arrived - stats.started, f"alert {post.outcome}"))


def _print_minutes(stats: Stats, minutes: float) -> None:
    table = stats.per_minute()
    headings = ["minute"] + [heading for heading, _ in COLUMNS]
    out("what the chaos did, per minute:")
    out("  " + "  ".join(f"{h:>{max(len(h), 4)}}" for h in headings))

    def row(label: str, counts: Counter[str]) -> str:
        cells = [label] + [str(sum(counts[k] for k in keys)) for _, keys in COLUMNS]
        return "  " + "  ".join(
            f"{c:>{max(len(h), 4)}}" for c, h in zip(cells, headings, strict=True)
        )

    for minute in sorted(table):
        out(row(str(minute + 1), table[minute]))
    totals = stats.totals()
    out(row("total", totals))
    operations = sum(totals[k] for k in ("order", "import cli", "import http", "import chat"))
    kills = sum(n for k, n in totals.items() if k.startswith("kill "))
    cut = totals["request cut"] + totals["alert cut"]
    per = max(minutes, 1e-9)
    out(
        f"per minute of chaos ({minutes:.1f} min): {operations / per:.1f} operations, "
        f"{kills / per:.1f} kills, {cut / per:.1f} requests cut "
        f"(totals {operations}, {kills}, {cut}; the table's last minute includes the settling)"
    )
    out(
        f"card presses: {totals['press invoke']} as Universal Actions invokes, "
        f"{totals['press submit']} as Action.Submit messages"
    )
