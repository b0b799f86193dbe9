"""Benchmark: importing generated PSTN usage exports into the ledger on Azurite.

For each size (100,000 and 1,000,000 rows by default), a realistic export
(tests/usage/generate.py: calls over 90 days, in no particular order) is written, then:

- a fresh subprocess parses it alone (the yardstick: rows per second of reading the file);
- another fresh subprocess funds a tenant, imports the file through the real importer (parse
  in a worker thread, batched transactions) and imports it again (every row already charged),
  counting the Table requests of each by kind, and prints rows per second and its peak RSS;
  peak RSS should not grow with the file.

Then a tenant is given 1,000,000 calls over 90 days, and the funding recommendation is asked
for: its Table requests and time to answer. Azurite runs in memory. Figures only.

    .venv/bin/python -m tests.benchmarks.bench_usage_import [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from scripts.azurite import ROOT, Azurite
from tests.support.table_requests import TableRequests, described

TENANT = "bench-tenant"
# More than any generated file costs: every eligible row is charged in full.
FUNDS_MINOR = 10**15


async def _funded(connection_string: str, prefix: str, requests: TableRequests):
    from app import build_credits
    from bot.settings import Settings
    from credits import ledger
    from credits.model import EntryKind
    from storage.tables import TableStore

    settings = Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": connection_string,
            "TABLE_PREFIX": prefix,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        }
    )
    store = TableStore.from_settings(
        connection_string=connection_string,
        account_url="",
        prefix=settings.table_prefix,
        request_hook=requests,
    )
    await store.create_tables()
    credits = build_credits(settings, store)
    await credits.accounts.get_or_create(TENANT)
    current = await credits.repository.get_account(TENANT)
    change = ledger.credit(
        current.value,
        FUNDS_MINOR,
        kind=EntryKind.PURCHASE,
        actor="bench",
        reference="bench",
        at=datetime.now(UTC),
    )
    await credits.repository.commit(current.etag, change)
    requests.take()
    return store, credits


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _import(path: Path, connection_string: str) -> dict:
    requests = TableRequests()
    store, credits = await _funded(connection_string, "bi" + path.stem.split(".")[-1], requests)
    figures = {"baseline_rss_mib": _peak_rss_mib()}
    for name in ("first", "again"):
        begin = time.perf_counter()
        with path.open("rb") as source:
            report = await credits.importer.import_file(TENANT, source, origin="bench")
        figures[name] = {
            "seconds": time.perf_counter() - begin,
            "rows_read": report.rows_read,
            "charged": report.charged,
            "already_charged": report.already_charged,
            "requests": dict(requests.take()),
            "peak_rss_mib": _peak_rss_mib(),
        }
    await store.close()
    return figures


def _parse(path: Path) -> dict:
    from credits.usage import ParseReport
    from credits.usage_export import iter_export_rows

    report = ParseReport()
    begin = time.perf_counter()
    with path.open("rb") as source:
        for _ in iter_export_rows(source, account_currency="USD", report=report):
            pass
    return {"seconds": time.perf_counter() - begin, "rows": report.rows_read}


@dataclass(frozen=True)
class _Call:
    usage_id: str
    start: datetime
    minor: int

    def amount_minor(self) -> int:
        return self.minor


async def _recommend(calls: int, connection_string: str) -> dict:
    """A tenant with `calls` calls over 90 days, then the funding recommendation for it."""
    import random
    import uuid

    from credits.recommendation import FundingAdvisor
    from credits.usage_charging import UsageCharger

    requests = TableRequests()
    store, credits = await _funded(connection_string, "brecommend", requests)
    today = date(2026, 11, 23)
    first = datetime(2026, 8, 25, tzinfo=UTC)
    rng = random.Random(7)

    def rows():
        for _ in range(calls):
            start = first + timedelta(seconds=rng.randrange(90 * 86_400))
            yield _Call(str(uuid.UUID(int=rng.getrandbits(128), version=4)), start, 1_000)

    charger = UsageCharger(credits.repository, clock=lambda: datetime.now(UTC))
    begin = time.perf_counter()
    charged = await charger.charge(TENANT, rows(), source="bench")
    charging = time.perf_counter() - begin
    requests.take()
    advisor = FundingAdvisor(
        credits.repository, today=lambda: today, lead_days=7, minimum_minor=lambda _c: 5_000
    )
    begin = time.perf_counter()
    advice = await advisor.advise(TENANT, with_licences=False)
    seconds = time.perf_counter() - begin
    await store.close()
    return {
        "calls": charged.charged,
        "charging_seconds": charging,
        "seconds": seconds,
        "requests": dict(requests.take()),
        "days": advice.recommendation.days_with_data,
        "mean_30_minor": advice.recommendation.mean_30_minor,
    }


def child(command: str, argument: str, connection_string: str) -> None:
    if command == "parse":
        result = _parse(Path(argument))
    elif command == "import":
        result = asyncio.run(_import(Path(argument), connection_string))
    else:
        result = asyncio.run(_recommend(int(argument), connection_string))
    print(json.dumps(result))


def _run(command: str, argument: str, connection_string: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_usage_import", "--child", command, argument],
        cwd=ROOT,
        env={**os.environ, "BENCH_CONNECTION_STRING": connection_string},
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{command} {argument} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(sizes: list[int], recommend_calls: int) -> None:
    from tests.usage.generate import write_export

    print(f"python {sys.version.split()[0]}; Azurite in memory; exports over 90 days, unsorted")
    with Azurite() as azurite, tempfile.TemporaryDirectory() as folder:
        for rows in sizes:
            path = Path(folder, f"PSTN.calls.{rows}.csv")
            write_export(path, rows, seed=rows)
            parse = _run("parse", str(path), azurite.connection_string)
            result = _run("import", str(path), azurite.connection_string)
            path.unlink()
            parse_rate = parse["rows"] / parse["seconds"]
            first, again = result["first"], result["again"]
            print(f"{rows:>9,} rows; parsing alone {parse_rate:,.0f} rows/s")
            for name, figures in (("first import", first), ("re-import", again)):
                rate = figures["rows_read"] / figures["seconds"]
                print(
                    f"  {name:<12} {rate:>9,.0f} rows/s ({rate / parse_rate:.2f} of parsing), "
                    f"{figures['seconds']:.1f} s: {figures['charged']:,} charged, "
                    f"{figures['already_charged']:,} already charged; "
                    f"peak RSS {figures['peak_rss_mib']:.0f} MiB"
                )
                print(f"  {'':<12} requests: {described(figures['requests'])}")
            per_new = sum(first["requests"].values()) / first["charged"] * 10_000
            per_known = sum(again["requests"].values()) / again["already_charged"] * 10_000
            print(
                f"  Table requests per 10,000 new rows {per_new:.1f}, "
                f"per 10,000 known rows {per_known:.1f} "
                f"(RSS before importing {result['baseline_rss_mib']:.0f} MiB)"
            )
        advice = _run("recommend", str(recommend_calls), azurite.connection_string)
        print(
            f"recommendation for a tenant with {advice['calls']:,} calls over 90 days: "
            f"{advice['seconds'] * 1000:.1f} ms, {described(advice['requests'])} "
            f"({advice['days']} days of spend; the calls were set up in "
            f"{advice['charging_seconds']:.0f} s)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--recommend-calls", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, os.environ["BENCH_CONNECTION_STRING"])
    else:
        main(args.rows, args.recommend_calls)
