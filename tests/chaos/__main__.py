"""`python -m tests.chaos [--seconds N] [--seed S]`: see tests/chaos/__init__.py."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys

from tests.chaos.run import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("CHAOS_SECONDS") or 120),
        help="how long the chaos lasts, before settling and the audit (CHAOS_SECONDS, 120)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ["CHAOS_SEED"]) if os.environ.get("CHAOS_SEED") else None,
        help="the seed of every choice (CHAOS_SEED; a random one is chosen and printed)",
    )
    parser.add_argument("--tenants", type=int, default=4, help="tenants at once (4)")
    parser.add_argument(
        "--settle",
        type=float,
        default=420.0,
        help="the most seconds to wait for the background jobs after the chaos (420)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the logs and files even when every check passes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    options = Options(seed, args.seconds, args.tenants, args.settle, args.keep)
    return asyncio.run(run(options))


if __name__ == "__main__":
    raise SystemExit(main())
