"""The usage command line: `python -m scripts.usage import FILE --tenant ID` and `key`.

Reads the same settings as the service (environment and `.env`) and talks to the same tables,
so an operator can load a tenant's PSTN usage export from a shell, with a progress bar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

logger = logging.getLogger("ccbot.usage")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.usage", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    importing = commands.add_parser("import", help="charge a PSTN usage export to a tenant")
    importing.add_argument("file", type=Path, help="PSTN.calls.*.csv or Calls.Export.*.zip")
    importing.add_argument("--tenant", required=True, help="the tenant id")
    keying = commands.add_parser("key", help="print a tenant's key for the usage API")
    keying.add_argument("--tenant", required=True, help="the tenant id")
    args = parser.parse_args(argv)

    # Imported here: argument errors and --help answer without loading the whole service.
    from bot.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.error(str(error))
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)

    if args.command == "key":
        from bot.usage_api import tenant_key

        if not settings.usage_api_secret:
            parser.error("USAGE_API_SECRET is not set: the usage API is disabled")
        sys.stdout.write(tenant_key(settings.usage_api_secret, args.tenant) + "\n")
        return 0
    if not args.file.is_file():
        parser.error(f"{args.file} is not a file")
    return asyncio.run(_import(settings, args.file, args.tenant))


async def _import(settings, path: Path, tenant_id: str) -> int:
    from app import build_credits
    from credits.usage import UsageFormatError
    from storage.tables import TableStore

    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url=settings.storage_account_url,
        prefix=settings.table_prefix,
    )
    credits = None
    try:
        await store.create_tables()
        credits = build_credits(settings, store)
        with (
            path.open("rb") as source,
            tqdm(desc=path.name, unit=" rows", unit_scale=True, file=sys.stderr) as bar,
        ):

            def progress(rows_read: int) -> None:
                bar.update(rows_read - bar.n)

            try:
                report = await credits.importer.import_file(
                    tenant_id, source, origin="cli", progress=progress
                )
            except UsageFormatError as error:
                logger.error("not imported: %s", error)
                return 2
        sys.stdout.write(json.dumps(asdict(report), indent=2) + "\n")
        return 0
    finally:
        if credits is not None:
            await credits.close()
        await store.close()


if __name__ == "__main__":
    raise SystemExit(main())
