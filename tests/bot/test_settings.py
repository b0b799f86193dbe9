"""Settings: strict, named errors; unauthenticated only when asked for."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError

STORAGE = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
# With an app id the bot takes real payments: Stripe's keys and the bot's public address.
PAYMENTS = {
    "STRIPE_SECRET_KEY": "sk_test_51Secret",
    "STRIPE_WEBHOOK_SECRET": "whsec_Signing",
    "PUBLIC_BASE_URL": "https://ccbot.azurewebsites.net/",
}
# With an app id several instances may serve the export links: they share its secret.
EXPORTS = {"EXPORT_URL_SECRET": "export-links-7f3a9c2e5b1d8f4a6c0e2b9d"}
APP = {
    "MicrosoftAppId": "11111111-2222-3333-4444-555555555555",
    "MicrosoftAppPassword": "s3cr3t",
    **PAYMENTS,
    **EXPORTS,
}


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
            **PAYMENTS,
            **EXPORTS,
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
    assert "sk_test_51Secret" not in text and "whsec_Signing" not in text
    assert "payment_gateway='stripe'" in text


# --- issue 13: settings that would open the service --------------------------------------------

LOCAL = {**STORAGE, "DANGEROUSLY_ALLOW_UNAUTHENTICATED": "true"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.4", "192.168.1.2", "bot.example.com"])
def test_unauthenticated_mode_listens_only_on_loopback(host):
    with pytest.raises(SettingsError) as refused:
        Settings.from_mapping({**LOCAL, "HOST": host})
    message = str(refused.value)
    assert "DANGEROUSLY_ALLOW_UNAUTHENTICATED" in message and "HOST" in message
    assert "MicrosoftAppId" in message  # the other way to run it


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_unauthenticated_mode_on_a_loopback_address_starts(host):
    assert Settings.from_mapping({**LOCAL, "HOST": host}).host == host


def test_with_an_app_id_any_interface_is_fine():
    assert Settings.from_mapping({**STORAGE, **APP, "HOST": "0.0.0.0"}).host == "0.0.0.0"


@pytest.mark.parametrize("secret", ["x" * 40, "abcd" * 10, "0123456" * 6])
def test_a_usage_secret_of_low_variety_is_refused(secret):
    with pytest.raises(SettingsError, match="USAGE_API_SECRET.*random secret"):
        Settings.from_mapping({**LOCAL, "USAGE_API_SECRET": secret})


def test_a_random_usage_secret_is_accepted():
    import secrets

    for _ in range(50):
        secret = secrets.token_hex(16)  # 32 characters of 16 possible
        assert Settings.from_mapping({**LOCAL, "USAGE_API_SECRET": secret}).usage_api_secret


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"EXPORT_URL_SECRET": ""}, "EXPORT_URL_SECRET is required"),
        ({"EXPORT_URL_SECRET": "short-but-varied-9x"}, "EXPORT_URL_SECRET.*32 characters"),
        ({"EXPORT_URL_SECRET": "ab" * 20}, "EXPORT_URL_SECRET.*random secret"),
    ],
)
def test_an_export_secret_is_required_with_an_app_id_and_must_be_random(changes, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_mapping({**STORAGE, **APP, **changes})


def test_the_export_secret_is_optional_locally_and_never_shown():
    assert Settings.from_mapping(LOCAL).export_url_secret == ""
    settings = Settings.from_mapping({**STORAGE, **APP})
    assert settings.export_url_secret == EXPORTS["EXPORT_URL_SECRET"]
    assert EXPORTS["EXPORT_URL_SECRET"] not in repr(settings)


@pytest.mark.parametrize(
    "hosts", ["com", "sharepoint.com,com", "co.uk", "azurewebsites.net", "github.io", "COM."]
)
def test_a_download_host_that_is_a_public_suffix_is_refused(hosts):
    with pytest.raises(SettingsError, match="USAGE_DOWNLOAD_HOSTS.*public suffix"):
        Settings.from_mapping({**LOCAL, "USAGE_DOWNLOAD_HOSTS": hosts})


@pytest.mark.parametrize("hosts", ["https://sharepoint.com", "sharepoint.com/x", "a b.com"])
def test_a_download_host_must_be_a_host_name(hosts):
    with pytest.raises(SettingsError, match="USAGE_DOWNLOAD_HOSTS"):
        Settings.from_mapping({**LOCAL, "USAGE_DOWNLOAD_HOSTS": hosts})


def test_download_hosts_of_organisations_are_kept():
    settings = Settings.from_mapping(
        {**LOCAL, "USAGE_DOWNLOAD_HOSTS": "SharePoint.com, contoso.sharepoint.com ,127.0.0.1"}
    )
    assert settings.usage_download_hosts == (
        "sharepoint.com",
        "contoso.sharepoint.com",
        "127.0.0.1",
    )


def test_the_signing_keys_come_from_the_bot_framework_unless_told():
    settings = Settings.from_mapping({**STORAGE, **APP})
    assert settings.bot_openid_metadata_url == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
    local = Settings.from_mapping(
        {**STORAGE, **APP, "BotOpenIdMetadata": "http://127.0.0.1:9/openid"}
    )
    assert local.bot_openid_metadata_url == "http://127.0.0.1:9/openid"
    with pytest.raises(SettingsError, match="BotOpenIdMetadata"):
        Settings.from_mapping({**STORAGE, **APP, "BotOpenIdMetadata": "http://keys.example"})


# --- payments ---------------------------------------------------------------------------------


def test_payments_default_to_the_sandbox_locally_and_to_stripe_with_an_app_id():
    local = Settings.from_mapping(LOCAL)
    assert (local.payment_gateway, local.public_base_url) == ("sandbox", "http://127.0.0.1:3978")
    assert Settings.from_mapping({**LOCAL, "PORT": "4000"}).public_base_url == (
        "http://127.0.0.1:4000"
    )
    production = Settings.from_mapping({**STORAGE, **APP})
    assert production.payment_gateway == "stripe"
    assert (production.stripe_secret_key, production.stripe_webhook_secret) == (
        "sk_test_51Secret",
        "whsec_Signing",
    )
    assert production.public_base_url == "https://ccbot.azurewebsites.net"
    assert production.stripe_api_base == ""  # api.stripe.com


def test_production_never_runs_the_sandbox():
    with pytest.raises(SettingsError, match="PAYMENT_GATEWAY=sandbox") as refused:
        Settings.from_mapping({**STORAGE, **APP, "PAYMENT_GATEWAY": "sandbox"})
    assert "MicrosoftAppId" in str(refused.value)
    # Locally, Stripe is a choice too (its test mode, or a fake on loopback).
    local_stripe = Settings.from_mapping(
        {**LOCAL, **PAYMENTS, "PAYMENT_GATEWAY": "Stripe", "STRIPE_API_BASE": "http://127.0.0.1:9/"}
    )
    assert (local_stripe.payment_gateway, local_stripe.stripe_api_base) == (
        "stripe",
        "http://127.0.0.1:9",
    )


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"PAYMENT_GATEWAY": "paypal"}, "PAYMENT_GATEWAY"),
        ({"STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "pk_test_publishable"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_WEBHOOK_SECRET": "secret"}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_API_BASE": "api.stripe.com"}, "STRIPE_API_BASE"),
        ({"PUBLIC_BASE_URL": "http://ccbot.example"}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "ccbot.example"}, "PUBLIC_BASE_URL"),
    ],
)
def test_bad_payment_settings_name_the_variable(changes, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_mapping({**STORAGE, **APP, **changes})
