"""Benchmark: parsing PSTN usage exports of 100,000 and 1,000,000 rows.

For each size, a realistic export (tests/usage/generate.py) is written to a temporary directory,
also zipped as the admin centre's `Calls.Export.{id}.zip`, and each file is parsed in a fresh
subprocess, so that peak RSS (`ru_maxrss`) belongs to that one parse. A second subprocess per
CSV runs the same parse under tracemalloc for the peak of Python allocations (slower, so its
time is not reported). The files are deleted at the end. Figures only, no assertions, except
that the parsed total must equal the generator's.

    .venv/bin/python -m tests.benchmarks.bench_usage_parse [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from decimal import Decimal
from pathlib import Path

from credits.usage import ParseReport
from credits.usage_export import iter_export_rows
from tests.usage.generate import write_export


def _child(path: str, currency: str, trace: bool) -> None:
    """Parse one file and print the figures as JSON (runs in its own process)."""
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = ParseReport()
    if trace:
        tracemalloc.start()
    begin = time.perf_counter()
    with open(path, "rb") as file:
        for _ in iter_export_rows(file, account_currency=currency, report=report):
            pass
    seconds = time.perf_counter() - begin
    peak_traced = tracemalloc.get_traced_memory()[1] if trace else 0
    print(
        json.dumps(
            {
                "rows": report.rows_read,
                "eligible": report.eligible,
                "total": str(report.total_eligible),
                "seconds": seconds,
                "baseline_rss_kib": baseline,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "peak_traced": peak_traced,
            }
        )
    )


def _run(path: Path, currency: str, *, trace: bool) -> dict:
    command = [sys.executable, "-m", "tests.benchmarks.bench_usage_parse", "--child", str(path),
               "--currency", currency] + (["--trace"] if trace else [])  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main(sizes: list[int], currency: str) -> None:
    print(f"python {sys.version.split()[0]}; account currency {currency}")
    header = (
        f"{'input':>26} {'rows':>9} {'MB':>7} {'rows/s':>9} {'RSS MiB':>8} "
        f"{'(+parse)':>9} {'traced MiB':>11}"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="bench-usage-") as directory:
        for rows in sizes:
            csv_path = Path(directory) / f"PSTN.calls.{rows}.csv"
            begin = time.perf_counter()
            expected = write_export(csv_path, rows, seed=rows, account_currency=currency)
            generated = time.perf_counter() - begin
            zip_path = Path(directory) / f"Calls.Export.{rows}.zip"
            with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(csv_path, "PSTN.calls.2024-05-01.csv")
            print(f"  (generated {rows:,} rows in {generated:.0f}s)")
            for path, trace_too in ((csv_path, True), (zip_path, False)):
                figures = _run(path, currency, trace=False)
                if Decimal(figures["total"]) != expected.total_eligible:
                    raise SystemExit(f"{path.name}: total {figures['total']} != generated")
                traced = _run(path, currency, trace=True)["peak_traced"] if trace_too else None
                size_mb = path.stat().st_size / 1e6
                rate = figures["rows"] / figures["seconds"]
                rss = figures["peak_rss_kib"] / 1024
                added = (figures["peak_rss_kib"] - figures["baseline_rss_kib"]) / 1024
                traced_text = f"{traced / 2**20:11.1f}" if traced is not None else f"{'-':>11}"
                print(
                    f"{path.name:>26} {figures['rows']:>9,} {size_mb:7.1f} {rate:9,.0f} "
                    f"{rss:8.1f} {added:+9.1f} {traced_text}"
                )
    print("RSS: peak resident set of the parsing process (ru_maxrss); (+parse): above its RSS")
    print("before parsing. traced: tracemalloc's peak of Python allocations during the parse.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        _child(arguments.child, arguments.currency, arguments.trace)
    else:
        main(arguments.rows, arguments.currency)
