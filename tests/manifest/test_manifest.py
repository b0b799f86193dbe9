"""The manifest sources: official schema of their declared version, and the command words."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from manifest.build_package import PackageConfig, render
from manifest.schema import schema_errors

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "manifest"
TEST_APP_ID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
COMMAND_KEYS = ["status", "add_funds", "auto_recharge", "licences", "usage", "alerts", "help"]
LANGUAGES = {
    "pt-br": "pt-BR",
    "es-es": "es-ES",
    "zh-cn": "zh-CN",
    "ru-ru": "ru-RU",
    "fr-fr": "fr-FR",
}
EXPECTED_TITLES = {
    "en": ["status", "add funds", "auto-recharge", "licences", "usage", "alerts", "help"],
    "pt-BR": [
        "saldo",
        "adicionar fundos",
        "recarga automática",
        "licenças",
        "uso",
        "alertas",
        "ajuda",
    ],
    "es-ES": [
        "saldo",
        "añadir fondos",
        "recarga automática",
        "licencias",
        "uso",
        "alertas",
        "ayuda",
    ],
    "zh-CN": ["余额", "充值", "自动充值", "许可证", "用量", "提醒", "帮助"],
    "ru-RU": [
        "баланс",
        "пополнить",
        "автопополнение",
        "лицензии",
        "использование",
        "оповещения",
        "справка",
    ],
    "fr-FR": [
        "solde",
        "ajouter des fonds",
        "recharge automatique",
        "licences",
        "utilisation",
        "alertes",
        "aide",
    ],
}


def load(name: str) -> Any:
    with (MANIFEST_DIR / name).open(encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    config = PackageConfig(app_id=TEST_APP_ID, version="1.2.3", bot_domain="ccbot.example.net")
    return render(load("manifest.json"), config)


@pytest.fixture(scope="module")
def commands() -> dict[str, dict[str, str]]:
    return load("commands.json")


def test_manifest_is_valid_against_the_schema_of_its_version(manifest):
    assert float(manifest["manifestVersion"]) >= 1.24  # 12 commands per list
    assert manifest["$schema"].endswith(
        f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json"
    )
    assert schema_errors(manifest, manifest["manifestVersion"], "manifest") == []


def test_the_schema_check_rejects_what_teams_would_reject(manifest):
    # The validator must not pass everything: these are all refused by Teams.
    broken = copy.deepcopy(manifest)
    broken["bots"][0]["botId"] = "not-a-guid"
    broken["name"]["short"] = "x" * 31  # a keyword beside $ref in some schemas: must still apply
    broken["bots"][0]["commandLists"][0]["commands"] *= 2  # 14 commands, at most 12
    broken["manifestVersion"] = "1.5"  # const
    errors = "\n".join(schema_errors(broken, manifest["manifestVersion"], "manifest"))
    assert "bots/0/botId" in errors
    assert "name/short" in errors
    assert "bots/0/commandLists/0/commands" in errors
    assert "manifestVersion" in errors


def test_placeholders_are_substituted(manifest):
    text = json.dumps(manifest)
    assert "${{" not in text
    assert manifest["id"] == manifest["bots"][0]["botId"] == TEST_APP_ID
    assert manifest["version"] == "1.2.3"
    assert "ccbot.example.net" in manifest["validDomains"]


def test_bot_shape(manifest):
    (bot,) = manifest["bots"]
    assert set(bot["scopes"]) == {"personal", "team"}
    assert bot["supportsFiles"] is True
    assert [c["scopes"] for c in bot["commandLists"]] == [["personal"], ["team"]]
    assert manifest["name"]["short"] == "Communications Credits"
    assert len(manifest["description"]["short"]) <= 80
    assert len(manifest["description"]["full"]) <= 4000
    for command_list in bot["commandLists"]:
        assert all(c["description"].strip() for c in command_list["commands"])


def test_localisation_files_are_declared_for_the_five_languages(manifest):
    info = manifest["localizationInfo"]
    assert info["defaultLanguageTag"] == "en-us"
    declared = {lang["languageTag"]: lang["file"] for lang in info["additionalLanguages"]}
    assert declared == {tag: f"{tag}.json" for tag in LANGUAGES}


@pytest.mark.parametrize("tag", LANGUAGES)
def test_localisation_file_is_valid_against_the_localization_schema(manifest, tag):
    strings = load(f"{tag}.json")
    assert schema_errors(strings, manifest["manifestVersion"], "localization") == []
    # It translates the name, both descriptions and every command title and description.
    assert strings["name.short"] != manifest["name"]["short"]
    assert strings["description.full"] != manifest["description"]["full"]
    for list_index, command_list in enumerate(manifest["bots"][0]["commandLists"]):
        for command_index in range(len(command_list["commands"])):
            key = f"bots[0].commandLists[{list_index}].commands[{command_index}]"
            assert strings[f"{key}.title"].strip(), key
            assert strings[f"{key}.description"].strip(), key


def test_the_localization_schema_check_rejects_bad_files(manifest):
    strings = load("pt-br.json") | {
        "name.short": "x" * 31,
        "bots[0].commandLists[0].commands[12].title": "thirteenth",
    }
    del strings["description.full"]
    errors = "\n".join(schema_errors(strings, manifest["manifestVersion"], "localization"))
    assert "name.short" in errors
    assert "commands[12]" in errors
    assert "description.full" in errors


def test_commands_file_holds_the_words_the_bot_understands(commands):
    assert {lang: list(words.values()) for lang, words in commands.items()} == EXPECTED_TITLES
    assert all(list(words) == COMMAND_KEYS for words in commands.values())


def test_manifest_command_titles_equal_commands_file(manifest, commands):
    for command_list in manifest["bots"][0]["commandLists"]:
        titles = [c["title"] for c in command_list["commands"]]
        assert titles == [commands["en"][key] for key in COMMAND_KEYS]


@pytest.mark.parametrize("tag", LANGUAGES)
def test_localised_command_titles_equal_commands_file(manifest, commands, tag):
    strings = load(f"{tag}.json")
    expected = [commands[LANGUAGES[tag]][key] for key in COMMAND_KEYS]
    for list_index in range(len(manifest["bots"][0]["commandLists"])):
        titles = [
            strings[f"bots[0].commandLists[{list_index}].commands[{i}].title"]
            for i in range(len(COMMAND_KEYS))
        ]
        assert titles == expected
