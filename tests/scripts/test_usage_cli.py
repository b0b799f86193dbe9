"""`python -m scripts.usage`, run as an operator runs it, against Azurite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.usage_files import ROWS, SECRET, export

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.usage", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_and_reimport(tmp_path, settings):
    env = {
        "AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
        "TABLE_PREFIX": settings.table_prefix,
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        "LOG_LEVEL": "WARNING",
    }
    file = tmp_path / "PSTN.calls.2026-11-01.csv"
    file.write_bytes(export(ROWS))
    first = run(["import", str(file), "--tenant", "cli-tenant"], env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    # A new tenant has no funds: every call is beyond the balance, none is owed twice.
    assert (report["rows_read"], report["charged"], report["uncovered"]) == (6, 5, 5)
    assert "rows" in first.stderr  # the progress bar
    again = json.loads(run(["import", str(file), "--tenant", "cli-tenant"], env).stdout)
    assert (again["charged"], again["already_charged"]) == (0, 5)

    bad = tmp_path / "bad.csv"
    bad.write_text("UsageId,Charge\n1,2\n")
    refused = run(["import", str(bad), "--tenant", "cli-tenant"], env)
    assert refused.returncode == 2 and "missing_columns" in refused.stderr


def test_key_needs_the_secret(settings):
    env = {
        "AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string,
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
    }
    assert run(["key", "--tenant", "t"], env).returncode == 2
    keyed = run(["key", "--tenant", "t"], {**env, "USAGE_API_SECRET": SECRET})
    from bot.usage_api import tenant_key

    assert keyed.stdout.strip() == tenant_key(SECRET, "t")
