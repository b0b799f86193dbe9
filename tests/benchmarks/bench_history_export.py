"""Benchmark: the CSV export of a long ledger, streamed from Azurite through the real app.

A tenant is given a ledger of 1,000,000 entries (by default) over a year, written straight into
the credits table (100 per transaction: the export reads entries, it does not care how they
were made): calls every 30 seconds or so, and a purchase every 1,000 entries. Then, each in a
fresh subprocess (so that its peak RSS is its own), the real app (`create_app`) is served on
loopback and a signed link is downloaded with a streaming client, for periods of about 1%,
10% and 100% of the ledger; the client parses each row with the csv module and sums the
amounts, which must equal the period's balance change. Printed: rows per second, seconds, the
peak RSS of the process (server and client together) against its RSS before the download,
and the Table requests. Flat peak RSS across the three sizes is the claim.

Azurite answers every query by filtering its whole table with a JavaScript predicate (LokiJS
`where`; no index on keys), so with a million entries each 1,000-entry read costs it a few
tenths of a second and the rows per second are Azurite's (Azure Table storage reads a key range
by its index); the Python side alone turns entities into CSV at about 50,000 rows per second.

Then the `history` card's reads: finding a month in that ledger and reading one page of it,
counted in Table requests. Azurite runs in memory. Figures only.

    .venv/bin/python -m tests.benchmarks.bench_history_export [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from scripts.azurite import ROOT, Azurite
from tests.support.table_requests import TableRequests, described

TENANT = "bench-history"
PREFIX = "bhist"
SECRET = "bench-history-export-secret-4e8a1c7f2b9d"
START = datetime(2025, 12, 1, tzinfo=UTC)
# Seconds between entries: 1,000,000 entries span about a year.
SPACING = 31
PURCHASE_EVERY = 1_000
# Transactions in flight while the ledger is written.
WRITERS = 4


def _settings(connection_string: str):
    from bot.settings import Settings

    return Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": connection_string,
            "TABLE_PREFIX": PREFIX,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "EXPORT_URL_SECRET": SECRET,
        }
    )


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _entry(seq: int, balance: int):
    from credits.model import EntryKind, LedgerEntry

    at = START + timedelta(seconds=seq * SPACING)
    if seq % PURCHASE_EVERY == 1:
        kind, amount, reference = EntryKind.PURCHASE, 500_000, f"order-{seq // PURCHASE_EVERY}"
        return LedgerEntry(seq, kind, amount, balance + amount, "lot-1", "alex", reference, at)
    amount = -(seq % 97 + 3)
    return LedgerEntry(
        seq, EntryKind.USAGE, amount, balance + amount, "lot-1", "graph", "calls", at, 3, at, at
    )


async def _seed(connection_string: str, rows: int) -> dict:
    from azure.data.tables import UpdateMode

    from credits.model import Account
    from storage.credits_repository import _account_entity, _entry_entity
    from storage.tables import TableStore

    settings = _settings(connection_string)
    store = TableStore.from_settings(
        connection_string=connection_string, account_url="", prefix=settings.table_prefix
    )
    await store.create_tables()
    table = store.table(store.names.credits)
    balance = 0
    batches = []
    for low in range(1, rows + 1, 100):
        batch = []
        for seq in range(low, min(low + 100, rows + 1)):
            entry = _entry(seq, balance)
            balance = entry.balance_after_minor
            batch.append(("create", _entry_entity(TENANT, entry)))
        batches.append(batch)
    begin = time.perf_counter()
    queue: asyncio.Queue = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def writer() -> None:
        while not queue.empty():
            await table.submit_transaction(queue.get_nowait())

    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    account = Account(TENANT, "USD", balance_minor=balance, ledger_seq=rows)
    await table.upsert_entity(_account_entity(account), mode=UpdateMode.REPLACE)
    await store.close()
    return {"seconds": time.perf_counter() - begin, "balance_minor": balance}


async def _export(connection_string: str, days: int) -> dict:
    from aiohttp import ClientSession, ClientTimeout
    from aiohttp.test_utils import TestServer

    from app import create_app
    from credits.export_links import ExportLinks
    from credits.history import Period

    requests = TableRequests()
    app = create_app(_settings(connection_string), request_hook=requests)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    period = Period(START.date(), START.date() + timedelta(days=days - 1))
    links = ExportLinks(SECRET, str(server.make_url("")))
    url = links.address(links.link(TENANT, period, "en-US", datetime.now(UTC)))
    baseline = _peak_rss_mib()
    requests.take()
    rows, total, size = 0, Decimal(0), 0
    begin = time.perf_counter()
    # No time limit: on Azurite a long period takes minutes (see the module docstring).
    no_limit = ClientTimeout(total=None)
    async with ClientSession(timeout=no_limit) as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        pending = ""
        first = True
        async for block in response.content.iter_chunked(1 << 16):
            size += len(block)
            text = pending + block.decode("utf-8")  # a row never splits a character here
            cut = text.rfind("\r\n") + 2
            pending = text[cut:]
            reader = csv.reader(io.StringIO(text[:cut], newline=""))
            if first:
                next(reader)  # the header
                first = False
            for row in reader:
                rows += 1
                total += Decimal(row[3])
    seconds = time.perf_counter() - begin
    counts = requests.take()
    await server.close()
    return {
        "days": days,
        "rows": rows,
        "sum": str(total),
        "bytes": size,
        "seconds": seconds,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": _peak_rss_mib(),
        "requests": dict(counts),
        "expected_rows": _expected_rows(period),
    }


def _expected_rows(period) -> int:
    last = (period.end - START).total_seconds()
    return int((last - 1) // SPACING)


async def _page(connection_string: str, rows: int) -> dict:
    """The reads of the `history` card: a month found in the ledger, and its first page."""
    from credits.history import History, OrderLookup, Period
    from dialogs.history import PAGE_SIZE
    from storage.credits_repository import TableCreditsRepository
    from storage.tables import TableStore

    requests = TableRequests()
    store = TableStore.from_settings(
        connection_string=connection_string,
        account_url="",
        prefix=_settings(connection_string).table_prefix,
        request_hook=requests,
    )
    repo = TableCreditsRepository(store.table(store.names.credits))
    history = History(repo)
    account = (await repo.get_account(TENANT)).value
    middle = (START + timedelta(seconds=rows * SPACING // 2)).date()
    month = Period.month_of(middle)
    requests.take()
    begin = time.perf_counter()
    span = await history.locate(account, month)
    located = requests.take()
    entries = await history.page(TENANT, span, 3, PAGE_SIZE)
    await OrderLookup(repo, TENANT).of(entries)
    paged = requests.take()
    seconds = time.perf_counter() - begin
    await store.close()
    return {
        "month": str(month.first)[:7],
        "entries": span.count,
        "locate": dict(located),
        "page": dict(paged),
        "seconds": seconds,
    }


def child(command: str, argument: str, connection_string: str) -> None:
    if command == "seed":
        result = asyncio.run(_seed(connection_string, int(argument)))
    elif command == "export":
        result = asyncio.run(_export(connection_string, int(argument)))
    else:
        result = asyncio.run(_page(connection_string, int(argument)))
    print(json.dumps(result))


def _run(command: str, argument: str, connection_string: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.bench_history_export",
            "--child",
            command,
            argument,
        ],
        cwd=ROOT,
        env={**os.environ, "BENCH_CONNECTION_STRING": connection_string},
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"{command} {argument} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(rows: int) -> None:
    print(f"python {sys.version.split()[0]}; Azurite in memory; one ledger entry every {SPACING} s")
    span_days = (timedelta(seconds=rows * SPACING) // timedelta(days=1)) + 1
    with Azurite() as azurite:
        seeded = _run("seed", str(rows), azurite.connection_string)
        print(f"{rows:,} ledger entries written in {seeded['seconds']:.0f} s ({span_days} days)")
        for days in sorted({max(1, span_days // 100), max(1, span_days // 10), span_days}):
            result = _run("export", str(days), azurite.connection_string)
            expected = min(result["expected_rows"], rows)
            tied = "ties" if result["rows"] == expected else f"expected {expected:,} rows"
            if days == span_days:
                balance = Decimal(seeded["balance_minor"]) / 100
                tied += ", sum = balance" if Decimal(result["sum"]) == balance else ", SUM OFF"
            rate = result["rows"] / result["seconds"]
            print(
                f"  export of {days:>3} days: {result['rows']:>9,} rows ({tied}), "
                f"{result['bytes'] / 2**20:,.0f} MiB of CSV in {result['seconds']:.1f} s, "
                f"{rate:,.0f} rows/s; peak RSS {result['peak_rss_mib']:.0f} MiB "
                f"(before the download {result['baseline_rss_mib']:.0f} MiB); "
                f"requests: {described(result['requests'])}"
            )
        page = _run("page", str(rows), azurite.connection_string)
        print(
            f"history card, month {page['month']} ({page['entries']:,} entries) of {rows:,}: "
            f"finding it {described(page['locate'])}; one page "
            f"{described(page['page'])}; {page['seconds'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, os.environ["BENCH_CONNECTION_STRING"])
    else:
        main(args.rows)
