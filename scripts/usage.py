"""The operator's usage tools: `python -m scripts.usage import FILE --tenant ID` and `key`.

`import` charges a PSTN usage export (the CSV, or the admin centre's zip) to a tenant's account,
with a progress bar, and prints what it did as JSON, money as decimal amounts with their
currency. It needs only the tables: `AZURE_STORAGE_CONNECTION_STRING` (Azurite, or an account
with keys) or `AZURE_STORAGE_ACCOUNT_URL` (reached as the signed-in identity: `az login`, or a
managed identity), and `TABLE_PREFIX`; nothing of the bot (no app id or password, no
unauthenticated switch) and no payment keys. Alerts the usage causes are written with it and
sent by the running service within a sweep (30 s); a recharge it makes due is placed by the
service's auto-recharge job (every minute). It imports only into an existing account: a tenant
id the service has never seen is a typo, refused before anything is written.

`key` prints a tenant's key for the usage API, from `USAGE_API_SECRET`.

Settings come from the environment, and from `.env` in the working directory (the environment
wins), like the service's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dotenv import dotenv_values
from tqdm import tqdm

from credits.model import Account
from credits.money import Money
from credits.repository import CreditsRepository
from credits.usage_import import ImportReport

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient

logger = logging.getLogger("ccbot.usage")

STORAGE_VARIABLES = "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ToolSettingsError(ValueError):
    """A setting the command needs is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class ImportSettings:
    """What an import needs: where the tables are, and their prefix."""

    connection_string: str
    account_url: str
    table_prefix: str
    log_level: str

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> ImportSettings:
        connection_string = values.get("AZURE_STORAGE_CONNECTION_STRING", "").strip()
        account_url = values.get("AZURE_STORAGE_ACCOUNT_URL", "").strip()
        if not connection_string and not account_url:
            raise ToolSettingsError(f"{STORAGE_VARIABLES} is not set: where are the tables?")
        if account_url and not account_url.startswith(("https://", "http://")):
            raise ToolSettingsError("AZURE_STORAGE_ACCOUNT_URL must be an http(s) URL")
        prefix = values.get("TABLE_PREFIX", "").strip() or "ccbot"
        if not (
            prefix.isascii() and prefix.isalnum() and prefix[0].isalpha() and len(prefix) <= 40
        ):
            raise ToolSettingsError(
                f"TABLE_PREFIX must be 1-40 letters and digits, starting with a letter, "
                f"not {prefix!r}"
            )
        log_level = values.get("LOG_LEVEL", "").strip().upper() or "WARNING"
        if log_level not in LOG_LEVELS:
            raise ToolSettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        return cls(connection_string, account_url, prefix, log_level)


def environment(environ: Mapping[str, str] | None = None, dotenv: Path = Path(".env")) -> dict:
    """The process environment over `.env`, as the service reads them."""
    values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None}
    values.update(os.environ if environ is None else environ)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.usage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    importing = commands.add_parser("import", help="charge a PSTN usage export to a tenant")
    importing.add_argument("file", type=Path, help="PSTN.calls.*.csv or Calls.Export.*.zip")
    importing.add_argument("--tenant", required=True, help="the tenant id")
    keying = commands.add_parser("key", help="print a tenant's key for the usage API")
    keying.add_argument("--tenant", required=True, help="the tenant id")
    args = parser.parse_args(argv)
    values = environment()

    if args.command == "key":
        from bot.usage_api import tenant_key

        secret = values.get("USAGE_API_SECRET", "")
        if len(secret) < 32:
            parser.error("USAGE_API_SECRET is not set (at least 32 characters): the API is off")
        sys.stdout.write(tenant_key(secret, args.tenant) + "\n")
        return 0

    try:
        settings = ImportSettings.from_mapping(values)
    except ToolSettingsError as error:
        parser.error(str(error))
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    if not args.file.is_file():
        parser.error(f"{args.file} is not a file")
    return asyncio.run(_import(settings, args.file, args.tenant))


async def _import(settings: ImportSettings, path: Path, tenant_id: str) -> int:
    # Imported here: argument errors and --help answer without loading the storage stack.
    from azure.core.exceptions import AzureError

    from credits.runway import RunwayAlerts
    from credits.usage import UsageFormatError
    from credits.usage_charging import UsageCharger
    from credits.usage_import import UsageImporter
    from storage.credits_repository import TableCreditsRepository
    from storage.tables import TableStore

    store = TableStore.from_settings(
        connection_string=settings.connection_string,
        account_url=settings.account_url,
        prefix=settings.table_prefix,
    )
    credits = None
    try:
        table = store.table(store.names.credits)
        if not await _exists(table):
            # The service creates its tables; this command never does, so a wrong prefix or
            # account is named here rather than filled with a tenant's usage.
            logger.error(
                "there is no table %s: check TABLE_PREFIX and the storage account",
                store.names.credits,
            )
            return 2
        repository = TableCreditsRepository(table)
        accounts = ExistingAccounts(repository)
        account = await repository.get_account(tenant_id)
        if account is None:
            logger.error(
                "tenant %s has no account: check the tenant id (an account is made when the "
                "tenant's admins first use the bot)",
                tenant_id,
            )
            return 2
        importer = UsageImporter(
            accounts,
            UsageCharger(repository, clock=_now),
            recharger=None,
            # The runway alert the usage raises is written with it, like the balance alerts.
            runway=RunwayAlerts(repository, clock=_now, errors=(AzureError,)),
        )
        with (
            path.open("rb") as source,
            tqdm(desc=path.name, unit=" rows", unit_scale=True, file=sys.stderr) as bar,
        ):

            def progress(rows_read: int) -> None:
                bar.update(rows_read - bar.n)

            try:
                report = await importer.import_file(
                    tenant_id, source, origin="cli", progress=progress
                )
            except UsageFormatError as error:
                logger.error("not imported: %s", error)
                return 2
        sys.stdout.write(json.dumps(printable(tenant_id, report), indent=2) + "\n")
        return 0
    finally:
        if credits is not None:
            await credits.close()
        await store.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def _exists(table: TableClient) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        async for _ in table.query_entities(
            "PartitionKey eq @none", parameters={"none": ""}, results_per_page=1
        ):
            break
    except ResourceNotFoundError:
        return False
    return True


class ExistingAccounts:
    """The tenant's account as it is: the command line never creates one."""

    def __init__(self, repository: CreditsRepository) -> None:
        self._repository = repository

    async def get_or_create(self, tenant_id: str) -> Account:
        current = await self._repository.get_account(tenant_id)
        if current is None:
            raise LookupError(f"tenant {tenant_id} has no account")
        return current.value


def printable(tenant_id: str, report: ImportReport) -> dict:
    """The import report for people: money as "16.75 USD", never minor units."""

    def money(minor: int) -> str:
        return f"{Money(minor, report.currency).to_decimal():f} {report.currency}"

    return {
        "tenant": tenant_id,
        "rows_read": report.rows_read,
        "charged": report.charged,
        "already_charged": report.already_charged,
        "skipped": report.skipped,
        "uncovered": report.uncovered,
        "debited": money(report.debited_minor),
        "balance_after": money(report.balance_after_minor),
        "recharge": report.recharge,
    }


if __name__ == "__main__":
    raise SystemExit(main())
