"""infra/main.json (ARM) is well formed, and says what infra/main.bicep says.

No Bicep compiler can be installed here, so main.json is written by hand. These checks stand in
for `bicep build` and for the deployment-template schema: the Bicep is parsed (pycep-parser, a
grammar for the Bicep language), the ARM template's expressions are checked for balance and for
references to declared parameters and variables, and the two are compared: parameters with
their types, defaults and constraints, resources with their API versions, app settings, outputs
and the security settings the service depends on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
ARM_FUNCTIONS = {
    "concat", "empty", "equals", "format", "guid", "if", "not", "reference", "replace",
    "resourceGroup", "resourceId", "subscription", "subscriptionResourceId", "take", "toLower",
    "uniqueString", "parameters", "variables",
}  # fmt: skip
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
APP_SETTINGS = {
    "MicrosoftAppId", "MicrosoftAppPassword", "MicrosoftAppType", "MicrosoftAppTenantId",
    "AZURE_STORAGE_ACCOUNT_URL", "HOST", "PORT", "WEBSITES_PORT", "PAYMENT_GATEWAY",
    "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "PUBLIC_BASE_URL", "EXPORT_URL_SECRET",
}  # fmt: skip
# Secrets, each given as a value or as a Key Vault secret URI: (parameter, app setting).
SECRETS = [
    ("microsoftAppPassword", "MicrosoftAppPassword"),
    ("stripeSecretKey", "STRIPE_SECRET_KEY"),
    ("stripeWebhookSecret", "STRIPE_WEBHOOK_SECRET"),
    ("exportUrlSecret", "EXPORT_URL_SECRET"),
]


@pytest.fixture(scope="module")
def arm() -> dict[str, Any]:
    with (INFRA / "main.json").open(encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def bicep() -> dict[str, Any]:
    return BicepParser(cache=False).parse(file_path=INFRA / "main.bicep")


# --- ARM expressions -------------------------------------------------------------------------


def expression_problems(expression: str, parameters: set[str], variables: set[str]) -> list[str]:
    """What is wrong with one `[...]` template expression."""
    body = expression[1:-1]
    problems = []
    depth, in_string, i = 0, False, 0
    while i < len(body):
        char = body[i]
        if in_string:
            if char == "'" and body[i + 1 : i + 2] == "'":
                i += 1  # '' is an escaped quote
            elif char == "'":
                in_string = False
        elif char == "'":
            in_string = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                problems.append(f"unbalanced ')' in {expression}")
                break
        i += 1
    if in_string:
        problems.append(f"unterminated string in {expression}")
    if depth > 0:
        problems.append(f"unbalanced '(' in {expression}")
    unquoted = re.sub(r"'(?:[^']|'')*'", "''", body)
    for name in re.findall(r"([A-Za-z]+)\(", unquoted):
        if name not in ARM_FUNCTIONS:
            problems.append(f"unknown function {name}() in {expression}")
    for name in re.findall(r"parameters\('([^']*)'\)", body):
        if name not in parameters:
            problems.append(f"undeclared parameter {name!r} in {expression}")
    for name in re.findall(r"variables\('([^']*)'\)", body):
        if name not in variables:
            problems.append(f"undeclared variable {name!r} in {expression}")
    return problems


def expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [e for value in node.values() for e in expressions(value)]
    if isinstance(node, list):
        return [e for item in node for e in expressions(item)]
    if isinstance(node, str) and node.startswith("[") and not node.startswith("[["):
        return [node]
    return []


def template_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for key in ("$schema", "contentVersion", "parameters", "variables", "resources", "outputs"):
        if key not in template:
            problems.append(f"missing top-level {key}")
    if "deploymentTemplate.json" not in template.get("$schema", ""):
        problems.append("$schema is not the deployment template schema")
    parameters, variables = set(template["parameters"]), set(template["variables"])
    for expression in expressions(template):
        if not expression.endswith("]"):
            problems.append(f"expression without closing bracket: {expression}")
            continue
        problems += expression_problems(expression, parameters, variables)
    used = " ".join(
        expressions([template["variables"], template["resources"], template["outputs"]])
    )
    for name in parameters:
        if f"parameters('{name}')" not in used:
            problems.append(f"parameter {name} is never used")
    for resource in template["resources"]:
        for key in ("type", "apiVersion", "name"):
            if key not in resource:
                problems.append(f"resource without {key}: {resource}")
        for dependency in resource.get("dependsOn", []):
            match = re.fullmatch(r"\[resourceId\('([^']+)', variables\('([^']+)'\)\)\]", dependency)
            if not match or not any(
                r["type"] == match[1] and r["name"] == f"[variables('{match[2]}')]"
                for r in template["resources"]
            ):
                problems.append(f"dependsOn {dependency} names no resource of the template")
    return problems


def test_arm_template_is_well_formed(arm):
    assert template_problems(arm) == []


def test_the_expression_check_catches_mistakes(arm):
    broken = json.loads(json.dumps(arm))
    broken["variables"]["webAppName"] = (
        "[format('{0}-{1}', parameters('namePrefx'), variables('suffix')]"
    )
    broken["outputs"]["x"] = {"type": "string", "value": "[referenc(variables('nope'))]"}
    del broken["contentVersion"]
    problems = "\n".join(template_problems(broken))
    assert "namePrefx" in problems
    assert "unbalanced '('" in problems
    assert "referenc()" in problems
    assert "'nope'" in problems
    assert "contentVersion" in problems


# --- Bicep and ARM agree ---------------------------------------------------------------------


def bicep_parameter_as_arm(parameter: dict[str, Any]) -> dict[str, Any]:
    decorators = {d["type"]: d.get("argument") for d in parameter["decorators"]}
    arm_type = {"string": "string", "int": "int", "bool": "bool", "object": "object"}
    expected: dict[str, Any] = {"type": arm_type[parameter["type"]]}
    if "secure" in decorators:
        expected["type"] = "secure" + expected["type"]
    for bicep_name, arm_name in (
        ("allowed", "allowedValues"),
        ("min_length", "minLength"),
        ("max_length", "maxLength"),
        ("min_value", "minValue"),
        ("max_value", "maxValue"),
    ):
        if bicep_name in decorators:
            expected[arm_name] = decorators[bicep_name]
    description = decorators.get("description")
    expected["description"] = description.replace("\\'", "'") if description else None
    default = parameter.get("default")
    # Literal defaults must match; expression defaults are compared by the tests below.
    if default is not None and not isinstance(default, dict):
        expected["defaultValue"] = default
    return expected


def arm_parameter(parameter: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    actual = {k: v for k, v in parameter.items() if k in keys - {"description"}}
    actual["description"] = parameter.get("metadata", {}).get("description")
    return actual


def test_parameters_agree(bicep, arm):
    assert list(bicep["parameters"]) == list(arm["parameters"])
    for name, parameter in bicep["parameters"].items():
        expected = bicep_parameter_as_arm(parameter)
        assert arm_parameter(arm["parameters"][name], set(expected)) == expected, name
    assert arm["parameters"]["location"]["defaultValue"] == "[resourceGroup().location]"
    assert arm["parameters"]["microsoftAppTenantId"]["defaultValue"] == "[subscription().tenantId]"


def test_the_brief_parameters_exist(arm):
    for name in (
        "namePrefix", "location", "appServiceSku", "containerImage", "microsoftAppId",
        "microsoftAppType", "microsoftAppTenantId", "microsoftAppPassword", "botSku",
    ):  # fmt: skip
        assert name in arm["parameters"], name
    assert arm["parameters"]["microsoftAppPassword"]["type"] == "securestring"
    assert arm["parameters"]["botSku"]["allowedValues"] == ["F0", "S1"]


def test_resources_agree(bicep, arm):
    declared = Counter(
        (r["type"], r["api_version"], "condition" in r["config"])
        for r in bicep["resources"].values()
        if not r["existing"]
    )
    compiled = Counter((r["type"], r["apiVersion"], "condition" in r) for r in arm["resources"])
    assert declared == compiled


def test_outputs_agree(bicep, arm):
    assert {k: v["type"] for k, v in bicep["outputs"].items()} == {
        k: v["type"] for k, v in arm["outputs"].items()
    }


def arm_resource(arm: dict[str, Any], type_: str) -> dict[str, Any]:
    (resource,) = [r for r in arm["resources"] if r["type"] == type_]
    return resource


def bicep_resource(bicep: dict[str, Any], type_: str) -> dict[str, Any]:
    (resource,) = [r for r in bicep["resources"].values() if r["type"] == type_]
    config = resource["config"]
    return config.get("config", config) if "condition" in config else config


@pytest.mark.parametrize("source", ["bicep", "arm"])
def test_security_settings(source, bicep, arm):
    def get(type_: str) -> dict[str, Any]:
        return bicep_resource(bicep, type_) if source == "bicep" else arm_resource(arm, type_)

    storage = get("Microsoft.Storage/storageAccounts")
    assert storage["kind"] == "StorageV2"
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"
    assert storage["properties"]["allowBlobPublicAccess"] is False
    assert storage["properties"]["allowSharedKeyAccess"] is False
    assert storage["properties"]["supportsHttpsTrafficOnly"] is True

    plan = get("Microsoft.Web/serverfarms")
    assert plan["kind"] == "linux" and plan["properties"]["reserved"] is True

    site = get("Microsoft.Web/sites")
    assert site["identity"] == {"type": "SystemAssigned"}
    assert site["properties"]["httpsOnly"] is True
    config = site["properties"]["siteConfig"]
    assert config["minTlsVersion"] == "1.2"
    assert config["healthCheckPath"] == "/healthz"
    assert config["alwaysOn"] is True
    assert config["ftpsState"] == "Disabled"
    settings = {s["name"] for s in config["appSettings"]}
    assert APP_SETTINGS <= settings
    fixed = {s["name"]: s["value"] for s in config["appSettings"] if s["name"] == "HOST"}
    assert fixed == {"HOST": "0.0.0.0"}

    bot = get("Microsoft.BotService/botServices")
    assert bot["kind"] == "azurebot"
    assert bot["location"] == "global"
    assert "/api/messages" in bot["properties"]["endpoint"]
    assert "defaultHostName" in bot["properties"]["endpoint"]
    channel = get("Microsoft.BotService/botServices/channels")
    assert channel["properties"]["channelName"] == "MsTeamsChannel"


def test_app_settings_agree(bicep, arm):
    bicep_settings = bicep_resource(bicep, "Microsoft.Web/sites")["properties"]["siteConfig"]
    arm_settings = arm_resource(arm, "Microsoft.Web/sites")["properties"]["siteConfig"]
    assert [s["name"] for s in bicep_settings["appSettings"]] == [
        s["name"] for s in arm_settings["appSettings"]
    ]
    arm_values = {s["name"]: s["value"] for s in arm_settings["appSettings"]}
    assert arm_values["AZURE_STORAGE_ACCOUNT_URL"].endswith(".primaryEndpoints.table]")
    assert arm_values["PORT"] == arm_values["WEBSITES_PORT"] == "[variables('port')]"
    assert arm["variables"]["port"] == "3978"


def test_storage_role_assignment(arm):
    (assignment,) = [
        r
        for r in arm["resources"]
        if r["type"] == "Microsoft.Authorization/roleAssignments"
        and "Microsoft.Storage/storageAccounts" in r["scope"]
    ]
    role = assignment["properties"]["roleDefinitionId"]
    assert role == "[variables('storageTableDataContributor')]"
    assert TABLE_DATA_CONTRIBUTOR in arm["variables"]["storageTableDataContributor"]
    assert "Microsoft.Web/sites" in assignment["properties"]["principalId"]
    assert assignment["properties"]["principalType"] == "ServicePrincipal"
    assert TABLE_DATA_CONTRIBUTOR in (INFRA / "main.bicep").read_text()


@pytest.mark.parametrize(("parameter", "setting"), SECRETS)
def test_secrets_are_secure_or_key_vault_references(bicep, arm, parameter, setting):
    assert arm["parameters"][parameter]["type"] == "securestring"
    assert arm["parameters"][f"{parameter}SecretUri"]["type"] == "string"
    site = arm_resource(arm, "Microsoft.Web/sites")["properties"]["siteConfig"]
    value = {s["name"]: s["value"] for s in site["appSettings"]}[setting]
    [variable] = re.findall(r"variables\('([^']*)'\)", value)
    expected = (
        f"[if(empty(parameters('{parameter}SecretUri')), parameters('{parameter}'), "
        f"format('@Microsoft.KeyVault(SecretUri={{0}})', parameters('{parameter}SecretUri')))]"
    )
    assert arm["variables"][variable] == expected
    text = (INFRA / "main.bicep").read_text()
    assert (
        f"empty({parameter}SecretUri) ? {parameter} : "
        f"'@Microsoft.KeyVault(SecretUri=${{{parameter}SecretUri}})'"
    ) in text


def test_production_takes_real_payments_and_says_where_stripe_sends_webhooks(bicep, arm):
    site = arm_resource(arm, "Microsoft.Web/sites")["properties"]["siteConfig"]
    values = {s["name"]: s["value"] for s in site["appSettings"]}
    assert values["PAYMENT_GATEWAY"] == "stripe"  # the sandbox never runs in Azure
    assert "azurewebsites.net" in arm["variables"]["publicBaseUrlSetting"]
    assert arm["outputs"]["stripeWebhookUrl"]["value"] == (
        "[format('{0}/api/payments/stripe', variables('publicBaseUrlSetting'))]"
    )
    assert "stripeWebhookUrl" in bicep["outputs"]


def test_bicep_endpoint_is_the_web_app(bicep):
    endpoint = bicep_resource(bicep, "Microsoft.BotService/botServices")["properties"]["endpoint"]
    assert endpoint == "https://${webApp.properties.defaultHostName}/api/messages"
