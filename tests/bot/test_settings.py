"""Settings: strict, named errors; unauthenticated only when asked for."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError

STORAGE = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
APP = {"MicrosoftAppId": "11111111-2222-3333-4444-555555555555", "MicrosoftAppPassword": "s3cr3t"}


def test_defaults_with_an_app_id():
    settings = Settings.from_mapping({**STORAGE, **APP})
    assert (settings.host, settings.port, settings.microsoft_app_type) == (
        "127.0.0.1",
        3978,
        "MultiTenant",
    )
    assert settings.authentication_enabled
    assert not settings.dangerously_allow_unauthenticated


def test_no_app_id_refuses_to_start_unless_asked():
    with pytest.raises(SettingsError, match="MicrosoftAppId"):
        Settings.from_mapping(STORAGE)
    settings = Settings.from_mapping({**STORAGE, "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true"})
    assert not settings.authentication_enabled


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({**STORAGE, **APP, "PORT": "99999"}, "PORT"),
        ({**STORAGE, **APP, "PORT": "http"}, "PORT"),
        (
            {**STORAGE, **APP, "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "maybe"},
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED",
        ),
        ({**STORAGE, **APP, "MicrosoftAppType": "Personal"}, "MicrosoftAppType"),
        ({**STORAGE, "MicrosoftAppId": APP["MicrosoftAppId"]}, "MicrosoftAppPassword"),
        ({**STORAGE, **APP, "MicrosoftAppType": "SingleTenant"}, "MicrosoftAppTenantId"),
        ({**APP}, "AZURE_STORAGE_CONNECTION_STRING"),
        (
            {**STORAGE, **APP, "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true"},
            "DANGEROUSLY_ALLOW_UNAUTHENTICATED",
        ),
        ({**STORAGE, **APP, "DEFAULT_CURRENCY": "dollars"}, "DEFAULT_CURRENCY"),
        ({**STORAGE, **APP, "TABLE_PREFIX": "my-tables"}, "TABLE_PREFIX"),
        ({"AZURE_STORAGE_ACCOUNT_URL": "ftp://x", **APP}, "AZURE_STORAGE_ACCOUNT_URL"),
        ({**STORAGE, **APP, "DIRECTORY": "ldap"}, "DIRECTORY"),
        ({**STORAGE, **APP, "ROLE_CACHE_SECONDS": "-1"}, "ROLE_CACHE_SECONDS"),
        (
            {
                **STORAGE,
                "MicrosoftAppId": APP["MicrosoftAppId"],
                "MicrosoftAppType": "UserAssignedMSI",
                "MicrosoftAppTenantId": "t",
            },
            "GRAPH_CLIENT_SECRET",
        ),
    ],
)
def test_bad_values_name_the_variable(values, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_mapping(values)


def test_user_assigned_msi_needs_no_password():
    settings = Settings.from_mapping(
        {
            **STORAGE,
            "MicrosoftAppId": APP["MicrosoftAppId"],
            "MicrosoftAppType": "userassignedmsi",
            "MicrosoftAppTenantId": "tenant",
            "GRAPH_CLIENT_ID": "graph-app",
            "GRAPH_CLIENT_SECRET": "graph-secret",
        }
    )
    assert settings.microsoft_app_type == "UserAssignedMSI"


def test_directory_defaults_follow_the_mode():
    local = Settings.from_mapping({**STORAGE, "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true"})
    assert local.directory == "embedded"
    production = Settings.from_mapping({**STORAGE, **APP})
    assert (production.directory, production.graph_client_id) == ("graph", APP["MicrosoftAppId"])


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "PORT=4000\nDANGEROUSLY_ALLOW_UNAUTHENTICATED=true\nAZURE_STORAGE_CONNECTION_STRING=x\n"
    )
    assert Settings.from_env({}, dotenv).port == 4000
    assert Settings.from_env({"PORT": "5000"}, dotenv).port == 5000


def test_repr_hides_secrets():
    text = repr(Settings.from_mapping({**STORAGE, **APP}))
    assert "s3cr3t" not in text
    assert "UseDevelopmentStorage" not in text
