"""Benchmark: importing generated PSTN usage exports into the ledger on Azurite.

For each size, a fresh subprocess funds a tenant and imports the file through the real
importer (parse in a worker thread, batched transactions), then prints rows per second and
its peak RSS, so the two sizes can be compared: peak RSS must not grow with the file.

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
from pathlib import Path

from scripts.azurite import ROOT, Azurite


async def _import_once(path: Path, connection_string: str) -> dict:
    from app import build_credits
    from bot.settings import Settings
    from credits.model import MethodKind, PaymentMethod
    from credits.money import Money
    from storage.tables import TableStore

    settings = Settings.from_mapping(
        {
            "AZURE_STORAGE_CONNECTION_STRING": connection_string,
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
            "TABLE_PREFIX": "bench" + path.stem.replace(".", "")[-6:],
        }
    )
    store = TableStore.from_settings(
        connection_string=connection_string, account_url="", prefix=settings.table_prefix
    )
    await store.create_tables()
    credits = build_credits(settings, store)
    tenant = "bench-tenant"
    account = await credits.accounts.get_or_create(tenant)
    # Enough funds that every eligible row is charged in full.
    for n in range(30):
        await credits.orders.place(
            tenant, f"fund-{n}", Money(10_000_000, "USD"),
            PaymentMethod(MethodKind.AGREEMENT, agreement_number=account.agreements[0]),
            actor="bench",
        )  # fmt: skip
    begin = time.perf_counter()
    with path.open("rb") as source:
        report = await credits.importer.import_file(tenant, source, origin="bench")
    elapsed = time.perf_counter() - begin
    await store.close()
    return {
        "rows_read": report.rows_read,
        "charged": report.charged,
        "seconds": elapsed,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(path: str, connection_string: str) -> None:
    result = asyncio.run(_import_once(Path(path), connection_string))
    print(json.dumps(result))


def main(sizes: list[int]) -> None:
    from tests.usage.generate import write_export

    with Azurite() as azurite, tempfile.TemporaryDirectory() as folder:
        for rows in sizes:
            path = Path(folder, f"PSTN.calls.{rows}.csv")
            write_export(path, rows, seed=rows)
            out = subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.bench_usage_import", "--child", str(path)],
                cwd=ROOT,
                env={**os.environ, "BENCH_CONNECTION_STRING": azurite.connection_string},
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            path.unlink()
            print(
                f"{rows:>9,} rows: {result['rows_read'] / result['seconds']:,.0f} rows/s read, "
                f"{result['charged'] / result['seconds']:,.0f} rows/s charged "
                f"({result['charged']:,} charged in {result['seconds']:.1f} s), "
                f"peak RSS {result['peak_rss_mib']:.1f} MiB"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, os.environ["BENCH_CONNECTION_STRING"])
    else:
        main(args.rows)
