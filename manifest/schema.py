"""Offline validation against the official Teams app manifest schemas.

The schemas come from the npm package `@microsoft/app-manifest` (pinned in package.json), which
ships them under `build/json-schemas/teams/v1.N/`. Nothing is fetched over the network: the
schemas only `$ref` their own `#/definitions`, and `jsonschema` resolves those in memory.

The schemas declare draft-04 but use a few later keywords (`const`, `if`/`then`) and put
keywords beside `$ref`. Microsoft's own tooling validates them with Ajv's draft-04 mode, which
applies all of those; plain `Draft4Validator` would silently skip them (for example the
30-character limit on a localised `name.short`). The validator below behaves like Ajv.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft4Validator, Draft7Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import create

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_ROOT = REPO_ROOT / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas"
SCHEMA_FILES = {
    "manifest": "MicrosoftTeams.schema.json",
    "localization": "MicrosoftTeams.Localization.schema.json",
}
SchemaKind = Literal["manifest", "localization"]

# Draft-04 keywords plus the later ones the Teams schemas rely on; every keyword beside a
# `$ref` is applied too (create()'s default), as Ajv does.
TeamsSchemaValidator: type[Validator] = create(
    meta_schema=Draft4Validator.META_SCHEMA,
    validators={
        **Draft4Validator.VALIDATORS,
        **{
            keyword: Draft7Validator.VALIDATORS[keyword]
            for keyword in ("const", "contains", "if", "propertyNames")
        },
    },
    type_checker=Draft4Validator.TYPE_CHECKER,
    format_checker=Draft4Validator.FORMAT_CHECKER,
    id_of=Draft4Validator.ID_OF,
)


class SchemaNotFoundError(FileNotFoundError):
    """The schema for a manifest version is not installed (run `npm ci`, or `make deps`)."""


def schema_path(manifest_version: str, kind: SchemaKind) -> Path:
    """The installed schema file for `manifest_version` ("1.24") of the given kind."""
    path = SCHEMA_ROOT / "teams" / f"v{manifest_version}" / SCHEMA_FILES[kind]
    if not path.is_file():
        raise SchemaNotFoundError(
            f"no {kind} schema for manifest version {manifest_version!r} at {path}; "
            "install the npm tools with `npm ci` (or `make deps`)"
        )
    return path


def load_schema(manifest_version: str, kind: SchemaKind) -> dict[str, Any]:
    with schema_path(manifest_version, kind).open(encoding="utf-8-sig") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def _iter_errors(document: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    validator = TeamsSchemaValidator(schema, format_checker=TeamsSchemaValidator.FORMAT_CHECKER)
    return validator.iter_errors(document)


def schema_errors(document: Any, manifest_version: str, kind: SchemaKind) -> list[str]:
    """Every violation of the official schema, as `json/path: message` lines (empty = valid)."""
    errors = sorted(
        _iter_errors(document, load_schema(manifest_version, kind)),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {_shorten(error.message)}"
        for error in errors
    ]


def _shorten(message: str, limit: int = 300) -> str:
    # Some messages quote a whole array or a hundred regexes; the path says where to look.
    return message if len(message) <= limit else message[: limit - 1] + "…"
