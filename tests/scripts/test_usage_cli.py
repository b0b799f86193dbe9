"""`python -m scripts.usage`, run as an operator runs it (the README's command), against Azurite.

The import is given only what it needs, the tables and their prefix: none of the bot's
settings (no app id, no unauthenticated switch), and no `.env` (the working directory is a
temporary one where the repository is on the path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from credits import ledger
from credits.model import Account, AutoRecharge, EntryKind
from storage.credits_repository import TableCreditsRepository
from tests.support.usage_files import ROWS, SECRET, export

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Only what an operator's shell holds: no Microsoft*, no DANGEROUSLY_* (conftest removed
    # them from this process too).
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "TABLE_"))}
    return subprocess.run(
        [sys.executable, "-m", "scripts.usage", *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def storage_only(settings) -> dict[str, str]:
    return {
        "AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
        "TABLE_PREFIX": settings.table_prefix,
    }


async def open_account(table_store, tenant: str, funds_minor: int = 0, **fields) -> None:
    repo = TableCreditsRepository(table_store.table(table_store.names.credits))
    created = await repo.create_account(Account(tenant, "USD", **fields))
    if funds_minor:
        change = ledger.credit(
            created.value,
            funds_minor,
            kind=EntryKind.PURCHASE,
            actor="admin",
            reference="order-1",
            at=datetime.now(UTC),
        )
        await repo.commit(created.etag, change)


async def test_import_and_reimport_print_money_as_money(tmp_path, table_store, storage_only):
    await open_account(table_store, "cli-tenant", funds_minor=5_000)  # $50.00
    file = tmp_path / "PSTN.calls.2026-11-01.csv"
    file.write_bytes(export(ROWS))

    first = run(["import", str(file), "--tenant", "cli-tenant"], storage_only, tmp_path)

    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    # Five Communications Credits calls of $1.35 to $5.35; the Calling Plan call is skipped.
    assert report == {
        "tenant": "cli-tenant",
        "rows_read": 6,
        "charged": 5,
        "already_charged": 0,
        "skipped": {"not_communications_credits": 1},
        "uncovered": 0,
        "debited": "16.75 USD",
        "balance_after": "33.25 USD",
        "recharge": "none",
    }
    assert "rows" in first.stderr  # the progress bar
    again = json.loads(
        run(["import", str(file), "--tenant", "cli-tenant"], storage_only, tmp_path).stdout
    )
    assert (again["charged"], again["already_charged"], again["debited"]) == (0, 5, "0.00 USD")
    assert again["balance_after"] == "33.25 USD"

    bad = tmp_path / "bad.csv"
    bad.write_text("UsageId,Charge\n1,2\n")
    refused = run(["import", str(bad), "--tenant", "cli-tenant"], storage_only, tmp_path)
    assert refused.returncode == 2 and "missing_columns" in refused.stderr


async def test_a_recharge_the_import_makes_due_is_left_to_the_service(
    tmp_path, table_store, storage_only
):
    """No payment keys here: the crossing is recorded, and the service's job places it."""
    auto = AutoRecharge(enabled=True, recharge_with_minor=5_000, trigger_minor=1_500, method_id="c")
    await open_account(table_store, "due-tenant", funds_minor=2_000, auto_recharge=auto)
    file = tmp_path / "calls.csv"
    file.write_bytes(export(ROWS))
    done = run(["import", str(file), "--tenant", "due-tenant"], storage_only, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["balance_after"], report["recharge"]) == ("3.25 USD", "due")
    repo = TableCreditsRepository(table_store.table(table_store.names.credits))
    account = (await repo.get_account("due-tenant")).value
    assert account.recharge.due_key and account.balance_minor == 325


async def test_an_unknown_tenant_is_refused_and_nothing_is_written(
    tmp_path, table_store, storage_only
):
    file = tmp_path / "calls.csv"
    file.write_bytes(export(ROWS))
    refused = run(["import", str(file), "--tenant", "tenant-typo"], storage_only, tmp_path)
    assert refused.returncode == 2
    assert "tenant-typo has no account" in refused.stderr
    repo = TableCreditsRepository(table_store.table(table_store.names.credits))
    assert await repo.get_account("tenant-typo") is None


def test_a_wrong_table_prefix_is_named(tmp_path, storage_only):
    file = tmp_path / "calls.csv"
    file.write_bytes(export(ROWS))
    refused = run(
        ["import", str(file), "--tenant", "t"], {**storage_only, "TABLE_PREFIX": "nosuch"}, tmp_path
    )
    assert refused.returncode == 2 and "nosuchCredits" in refused.stderr


def test_without_storage_settings_the_message_names_them(tmp_path):
    file = tmp_path / "calls.csv"
    file.write_bytes(export(ROWS))
    refused = run(["import", str(file), "--tenant", "t"], {}, tmp_path)
    assert refused.returncode == 2
    assert "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL" in refused.stderr
    bad_prefix = run(
        ["import", str(file), "--tenant", "t"],
        {"AZURE_STORAGE_CONNECTION_STRING": "x", "TABLE_PREFIX": "no-dash"},
        tmp_path,
    )
    assert bad_prefix.returncode == 2 and "TABLE_PREFIX" in bad_prefix.stderr


async def test_the_settings_come_from_dotenv_too(tmp_path, table_store, storage_only):
    await open_account(table_store, "dotenv-tenant")
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in storage_only.items()))
    file = tmp_path / "calls.csv"
    file.write_bytes(export(ROWS[:1]))
    done = run(["import", str(file), "--tenant", "dotenv-tenant"], {}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["uncovered"] == 1  # no funds: the call is not owed


def test_key_needs_the_secret(tmp_path):
    assert run(["key", "--tenant", "t"], {}, tmp_path).returncode == 2
    keyed = run(["key", "--tenant", "t"], {"USAGE_API_SECRET": SECRET}, tmp_path)
    from bot.usage_api import tenant_key

    assert keyed.stdout.strip() == tenant_key(SECRET, "t")
