"""Build the Teams app package: `python -m manifest.build_package` (or `make package`).

Settings come from the environment over `.env`, as for the service:

- `MicrosoftAppId` (required): the bot's Entra app id, a GUID. It is the bot id and, as for most
  single-bot apps, the Teams app id too.
- `APP_VERSION` (optional): the package version, x.y.z; default: the version in pyproject.toml.
  Teams only replaces an installed app when the version goes up.
- `BOT_DOMAIN` (optional): the host name the bot is served from (for example
  `ccbot-web.azurewebsites.net`), added to the manifest's valid domains.

The builder substitutes them into `manifest.json`, checks that every command title matches
`commands.json`, validates the manifest and each localisation file against the official schema
of the manifest's version (offline, from node_modules), and writes a reproducible zip with
manifest.json, the two icons and the localisation files at its root.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import tomllib
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from manifest.schema import SchemaNotFoundError, schema_errors

logger = logging.getLogger(__name__)

MANIFEST_DIR = Path(__file__).resolve().parent
REPO_ROOT = MANIFEST_DIR.parent
DEFAULT_OUTPUT = REPO_ROOT / "build" / "appPackage.zip"
COMMANDS_FILE = MANIFEST_DIR / "commands.json"
DEFAULT_COMMANDS_LANGUAGE = "en"

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
PLACEHOLDER = re.compile(r"\$\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")
# A fixed timestamp makes the zip byte-for-byte reproducible from the same sources.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


class PackageError(ValueError):
    """The package cannot be built; the message says what to fix (naming the variable)."""


@dataclass(frozen=True, kw_only=True)
class PackageConfig:
    """What the builder substitutes into the manifest."""

    app_id: str
    """`MicrosoftAppId`: the bot's Entra app id (GUID)."""

    version: str
    """`APP_VERSION`: the app package version (x.y.z)."""

    bot_domain: str = ""
    """`BOT_DOMAIN`: the bot's host name, added to validDomains when set."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
    ) -> PackageConfig:
        """Read the settings from `environ` (default: the process environment) over `.env`."""
        values: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> PackageConfig:
        app_id = values.get("MicrosoftAppId", "").strip()
        if not app_id:
            raise PackageError(
                "MicrosoftAppId is not set: set it to the bot's Entra app id (a GUID), "
                "e.g. `MicrosoftAppId=<guid> make package`"
            )
        if not GUID.fullmatch(app_id):
            raise PackageError(f"MicrosoftAppId must be a GUID, not {app_id!r}")

        version = values.get("APP_VERSION", "").strip() or project_version()
        if not SEMVER.fullmatch(version):
            raise PackageError(f"APP_VERSION must be a version like 1.2.3, not {version!r}")

        bot_domain = values.get("BOT_DOMAIN", "").strip()
        if bot_domain and not HOSTNAME.fullmatch(bot_domain):
            raise PackageError(
                f"BOT_DOMAIN must be a host name such as ccbot-web.azurewebsites.net "
                f"(no scheme, port or path), not {bot_domain!r}"
            )
        return cls(app_id=app_id.lower(), version=version, bot_domain=bot_domain)


def project_version(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    with pyproject.open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8-sig") as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise PackageError(f"{path.name} is missing from {path.parent}") from exc
    except json.JSONDecodeError as exc:
        raise PackageError(f"{path.name} is not valid JSON: {exc}") from exc


def render(manifest_template: Any, config: PackageConfig) -> dict[str, Any]:
    """The manifest with `${{NAME}}` placeholders replaced; unknown placeholders are an error."""
    values = {
        "MICROSOFT_APP_ID": config.app_id,
        "APP_VERSION": config.version,
        "BOT_DOMAIN": config.bot_domain,
    }

    def substitute(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(item) for item in node]
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda m: lookup(m.group(1)), node)
        return node

    def lookup(name: str) -> str:
        if name not in values:
            raise PackageError(f"manifest.json uses an unknown placeholder ${{{{{name}}}}}")
        return values[name]

    manifest: dict[str, Any] = substitute(manifest_template)
    # BOT_DOMAIN is optional: without it its entry would be an empty domain.
    if "validDomains" in manifest:
        manifest["validDomains"] = [d for d in manifest["validDomains"] if d]
    return manifest


def commands_language(language_tag: str, commands: Mapping[str, Any]) -> str:
    """The commands.json key for a manifest language tag ("pt-br" -> "pt-BR")."""
    for key in commands:
        if key.lower() == language_tag.lower():
            return key
    raise PackageError(
        f"commands.json has no entry for the manifest language {language_tag!r}; "
        f"it has {', '.join(commands)}"
    )


def command_title_errors(
    manifest: Mapping[str, Any],
    localisations: Mapping[str, Mapping[str, Any]],
    commands: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """Every command title that differs from commands.json (the bot parses exactly those)."""
    errors: list[str] = []
    expected_en = list(commands[DEFAULT_COMMANDS_LANGUAGE].values())
    for bot_index, bot in enumerate(manifest.get("bots", [])):
        for list_index, command_list in enumerate(bot.get("commandLists", [])):
            titles = [c.get("title") for c in command_list.get("commands", [])]
            if titles != expected_en:
                errors.append(
                    f"manifest.json bots[{bot_index}].commandLists[{list_index}] titles {titles} "
                    f"!= commands.json {DEFAULT_COMMANDS_LANGUAGE} {expected_en}"
                )
            for tag, strings in localisations.items():
                expected = list(commands[commands_language(tag, commands)].values())
                for command_index in range(len(titles)):
                    key = (
                        f"bots[{bot_index}].commandLists[{list_index}]"
                        f".commands[{command_index}].title"
                    )
                    want = expected[command_index] if command_index < len(expected) else None
                    if strings.get(key) != want:
                        errors.append(f"{tag}: {key} is {strings.get(key)!r}, not {want!r}")
    return errors


def package_files(manifest_template: Mapping[str, Any]) -> list[str]:
    """The source files the manifest refers to: icons, then localisation files."""
    icons = manifest_template.get("icons", {})
    languages = manifest_template.get("localizationInfo", {}).get("additionalLanguages", [])
    return [icons["color"], icons["outline"], *(lang["file"] for lang in languages)]


def build_package(
    config: PackageConfig, output: Path = DEFAULT_OUTPUT, source_dir: Path = MANIFEST_DIR
) -> Path:
    """Validate the sources and write the app package zip to `output`."""
    template = read_json(source_dir / "manifest.json")
    manifest = render(template, config)
    commands = read_json(source_dir / "commands.json")
    localisations = {
        lang["languageTag"]: read_json(source_dir / lang["file"])
        for lang in manifest.get("localizationInfo", {}).get("additionalLanguages", [])
    }

    errors = command_title_errors(manifest, localisations, commands)
    version = manifest.get("manifestVersion", "")
    try:
        errors += [f"manifest.json {e}" for e in schema_errors(manifest, version, "manifest")]
        for tag, strings in localisations.items():
            errors += [f"{tag} {e}" for e in schema_errors(strings, version, "localization")]
    except SchemaNotFoundError as exc:
        raise PackageError(str(exc)) from exc
    if errors:
        raise PackageError("the manifest is not valid:\n  " + "\n  ".join(errors))

    files = package_files(template)
    for name in files:
        if not (source_dir / name).is_file():
            raise PackageError(f"{name} (referenced by manifest.json) is missing from {source_dir}")

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
        _add(archive, "manifest.json", manifest_bytes)
        for name in files:
            _add(archive, name, (source_dir / name).read_bytes())
    partial.replace(output)
    return output


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manifest.build_package", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--env-file", default=".env", help="dotenv file to read (default .env)")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="zip to write (build/appPackage.zip)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = PackageConfig.from_env(dotenv_path=args.env_file)
        path = build_package(config, args.output)
    except PackageError as exc:
        raise SystemExit(f"build_package: {exc}") from None
    logger.info("Wrote %s (app id %s, version %s)", path, config.app_id, config.version)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
