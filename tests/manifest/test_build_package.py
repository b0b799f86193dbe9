"""`python -m manifest.build_package`: refuses bad settings, builds exactly what Teams needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from manifest.build_package import PackageConfig, PackageError, build_package

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_ID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
LOCALISATIONS = {"pt-br.json", "es-es.json", "zh-cn.json", "ru-ru.json", "fr-fr.json"}


def run_builder(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    environ = {k: v for k, v in os.environ.items() if k not in ("MicrosoftAppId", "APP_VERSION")}
    return subprocess.run(
        [sys.executable, "-m", "manifest.build_package", "--env-file", str(empty_env_file),
         "--output", str(tmp_path / "appPackage.zip")],
        cwd=REPO_ROOT, env=environ | env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({}, "MicrosoftAppId"),
        ({"MicrosoftAppId": "  "}, "MicrosoftAppId"),
        ({"MicrosoftAppId": "my-bot"}, "MicrosoftAppId"),
        ({"MicrosoftAppId": APP_ID + "0"}, "MicrosoftAppId"),
        ({"MicrosoftAppId": APP_ID, "APP_VERSION": "1.2"}, "APP_VERSION"),
        ({"MicrosoftAppId": APP_ID, "APP_VERSION": "v1.2.3"}, "APP_VERSION"),
        ({"MicrosoftAppId": APP_ID, "BOT_DOMAIN": "https://x.example.com/"}, "BOT_DOMAIN"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(values, variable):
    with pytest.raises(PackageError, match=variable):
        PackageConfig.from_mapping(values)


def test_version_defaults_to_pyproject():
    import tomllib

    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        expected = tomllib.load(f)["project"]["version"]
    assert PackageConfig.from_mapping({"MicrosoftAppId": APP_ID}).version == expected


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"MicrosoftAppId={APP_ID}\nAPP_VERSION=2.0.0\n")
    config = PackageConfig.from_env({"APP_VERSION": "3.1.4"}, dotenv_path=env_file)
    assert (config.app_id, config.version) == (APP_ID, "3.1.4")


def test_cli_refuses_a_missing_app_id(tmp_path):
    result = run_builder(tmp_path)
    assert result.returncode != 0
    assert "MicrosoftAppId" in result.stderr
    assert not (tmp_path / "appPackage.zip").exists()


def test_cli_refuses_a_malformed_app_id(tmp_path):
    result = run_builder(tmp_path, MicrosoftAppId="00000000-0000-0000-0000-00000000000Z")
    assert result.returncode != 0
    assert "MicrosoftAppId must be a GUID" in result.stderr
    assert not (tmp_path / "appPackage.zip").exists()


def test_cli_builds_the_package(tmp_path):
    result = run_builder(tmp_path, MicrosoftAppId=APP_ID, APP_VERSION="1.4.0")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "appPackage.zip") as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert sorted(names) == sorted({"manifest.json", "color.png", "outline.png"} | LOCALISATIONS)
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID
    assert manifest["version"] == "1.4.0"


def test_package_contents_are_the_sources(tmp_path):
    config = PackageConfig(app_id=APP_ID, version="1.0.0")
    path = build_package(config, tmp_path / "p.zip")
    with zipfile.ZipFile(path) as archive:
        for name in ["color.png", "outline.png", *LOCALISATIONS]:
            assert archive.read(name) == (REPO_ROOT / "manifest" / name).read_bytes(), name
        manifest = json.loads(archive.read("manifest.json"))
    # Without BOT_DOMAIN no empty domain is left behind.
    assert "" not in manifest["validDomains"]
    assert "${{" not in json.dumps(manifest)


def test_package_is_reproducible(tmp_path):
    config = PackageConfig(app_id=APP_ID, version="1.0.0")
    first = build_package(config, tmp_path / "a.zip").read_bytes()
    second = build_package(config, tmp_path / "b.zip").read_bytes()
    assert first == second


def test_builder_refuses_command_titles_that_drift_from_commands_file(tmp_path):
    sources = tmp_path / "src"
    sources.mkdir()
    for path in (REPO_ROOT / "manifest").iterdir():
        if path.suffix in (".json", ".png"):
            (sources / path.name).write_bytes(path.read_bytes())
    strings = json.loads((sources / "fr-fr.json").read_text(encoding="utf-8"))
    strings["bots[0].commandLists[1].commands[6].title"] = "au secours"
    (sources / "fr-fr.json").write_text(json.dumps(strings, ensure_ascii=False), encoding="utf-8")
    config = PackageConfig(app_id=APP_ID, version="1.0.0")
    with pytest.raises(PackageError, match=r"fr-fr: bots\[0\]\.commandLists\[1\]\.commands\[6\]"):
        build_package(config, tmp_path / "p.zip", source_dir=sources)
    assert not (tmp_path / "p.zip").exists()


def test_builder_refuses_a_manifest_the_schema_rejects(tmp_path):
    sources = tmp_path / "src"
    sources.mkdir()
    for path in (REPO_ROOT / "manifest").iterdir():
        if path.suffix in (".json", ".png"):
            (sources / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((sources / "manifest.json").read_text(encoding="utf-8"))
    manifest["accentColor"] = "blue"
    (sources / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(PackageError, match="accentColor"):
        build_package(PackageConfig(app_id=APP_ID, version="1.0.0"), tmp_path / "p.zip", sources)
