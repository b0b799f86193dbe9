"""Benchmark: what the runway forecast costs.

1. The pure forecast (credits/forecast.py) on 90 days of weekday spend with `--lots` lots, with
   auto-recharge off and on (on, the walk adds a lot at each recharge over its year): time per
   forecast.
2. The runway job's pass on Azurite over `--tenants` funded tenants with usage: Table requests
   and time per tenant when every tenant changed (each is evaluated) and when none did (each is
   one read of its account).

Figures only, no assertions.

    .venv/bin/python -m tests.benchmarks.bench_runway [--tenants 100] [--lots 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from credits.forecast import forecast
from credits.model import Account, AutoRecharge, Lot, SavedCard
from credits.runway import RunwayAlerts
from credits.usage_charging import UsageCharger
from scripts.azurite import Azurite
from storage.credits_repository import TableCreditsRepository
from storage.tables import TableStore
from tests.support.usage_books import Row

logger = logging.getLogger("bench_runway")
TODAY = date(2026, 11, 23)


def _pure(lots_count: int, rounds: int) -> None:
    daily = {
        TODAY - timedelta(days=n): (4_000 if (TODAY - timedelta(days=n)).weekday() < 5 else 0)
        for n in range(1, 91)
    }
    lots = [
        Lot(
            f"lot-{i}",
            50_000,
            5_000,
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC) + timedelta(days=7 * i),
        )
        for i in range(lots_count)
    ]
    card = SavedCard("card-1", "pm_1", "visa", "4242", 12, 2030)
    for label, recharge in (
        ("auto-recharge off", AutoRecharge()),
        ("auto-recharge on", AutoRecharge(True, 100_000, 50_000, "card-1")),
    ):
        account = Account(
            "t",
            "USD",
            balance_minor=5_000 * lots_count,
            cards=(card,),
            default_method_id="card-1",
            auto_recharge=recharge,
        )
        started = time.perf_counter()
        for _ in range(rounds):
            outlook = forecast(account, lots, daily, today=TODAY)
        per = (time.perf_counter() - started) / rounds
        logger.info(
            "forecast, %d lots, %s: %.3f ms each (%s, runs out %s)",
            lots_count,
            label,
            per * 1000,
            outlook.cause.value,
            outlook.runs_out,
        )


async def _job(tenants: int) -> None:
    counted: list[str] = []
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with Azurite() as azurite:
        store = TableStore.from_settings(
            connection_string=azurite.connection_string,
            account_url="",
            prefix=f"bench{uuid.uuid4().hex[:6]}",
            request_hook=lambda request: counted.append(request.http_request.method),
        )
        await store.create_tables()
        repo = TableCreditsRepository(store.table(store.names.credits))
        charger = UsageCharger(repo, clock=lambda: now)
        runway = RunwayAlerts(repo, clock=lambda: now)
        names = [f"tenant-{i:05d}" for i in range(tenants)]
        for name in names:
            await repo.create_account(Account(name, "USD", balance_minor=0))
            # Calls of $0 on each of the last 30 days: the reads are those of any tenant.
            rows = [
                Row(
                    f"{name}-{d}",
                    0,
                    datetime.combine(TODAY - timedelta(days=d), datetime.min.time(), UTC),
                )
                for d in range(1, 31)
            ]
            await charger.charge(name, rows, source="bench")
        for label in ("every tenant changed", "no tenant changed"):
            before, started = len(counted), time.perf_counter()
            for name in names:
                await runway.check(name)
            elapsed = time.perf_counter() - started
            logger.info(
                "job pass, %s: %.1f Table requests and %.1f ms per tenant (%d tenants)",
                label,
                (len(counted) - before) / tenants,
                elapsed * 1000 / tenants,
                tenants,
            )
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--lots", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # not every HTTP request and answer
    _pure(args.lots, args.rounds)
    asyncio.run(_job(args.tenants))


if __name__ == "__main__":
    main()
