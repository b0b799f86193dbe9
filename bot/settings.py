"""Service settings: read once from the environment (and `.env`), validated, typed.

The variable names are the ones Azure Bot Service, App Service and the Bot Framework tooling
use, so operators can rely on them. A bad value fails at start with a message that names the
variable.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from botframework.connector.auth import AuthenticationConstants
from dotenv import dotenv_values
from publicsuffixlist import PublicSuffixList

APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
# A random secret of 32 characters has far more different characters than this (a hex one has
# at least 8 all but once in ten million); "x" * 32 or "abcd" * 8 has fewer.
MIN_SECRET_VARIETY = 8


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the service reads from its environment."""

    microsoft_app_id: str = ""
    """`MicrosoftAppId`: the bot's Entra app id. Empty means no authentication (see below)."""

    microsoft_app_password: str = ""
    """`MicrosoftAppPassword`: the app's client secret (MultiTenant / SingleTenant)."""

    microsoft_app_type: str = "MultiTenant"
    """`MicrosoftAppType`: MultiTenant, SingleTenant or UserAssignedMSI."""

    microsoft_app_tenant_id: str = ""
    """`MicrosoftAppTenantId`: the app's home tenant (SingleTenant and UserAssignedMSI)."""

    storage_connection_string: str = ""
    """`AZURE_STORAGE_CONNECTION_STRING`: the Table endpoint with a key (Azurite locally)."""

    storage_account_url: str = ""
    """`AZURE_STORAGE_ACCOUNT_URL`: a Table endpoint reached with managed identity instead."""

    table_prefix: str = "ccbot"
    """`TABLE_PREFIX`: prefix of every table name, so several deployments can share an account."""

    host: str = "127.0.0.1"
    """`HOST`: the address the HTTP server binds."""

    port: int = 3978
    """`PORT`: the port the HTTP server binds."""

    dangerously_allow_unauthenticated: bool = False
    """`DANGEROUSLY_ALLOW_UNAUTHENTICATED`: accept activities without a Bot Framework JWT.

    Only for the local stack (Agents Playground). Required to start without an app id, and
    refused unless HOST is a loopback address.
    """

    bot_openid_metadata_url: str = AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    """`BotOpenIdMetadata`: the Bot Framework's OpenID metadata, which lists the keys that sign
    the tokens Teams sends (Bot Framework's own setting name). Change it only for another cloud.
    """

    default_currency: str = "USD"
    """`DEFAULT_CURRENCY`: the ISO 4217 currency of a new tenant's account."""

    purchase_minimum: Decimal = Decimal("50")
    """`PURCHASE_MINIMUM`: the smallest amount one order may add, in the account currency."""

    purchase_maximum: Decimal = Decimal("100000")
    """`PURCHASE_MAXIMUM`: the largest amount one order may add, in the account currency."""

    directory: str = "graph"
    """`DIRECTORY`: `graph` (Microsoft Graph, app-only) or `embedded` (demo users in Tables).

    Defaults to `embedded` in unauthenticated local mode and to `graph` otherwise.
    """

    graph_client_id: str = ""
    """`GRAPH_CLIENT_ID`: the app that reads users and assigns licences; default MicrosoftAppId."""

    graph_client_secret: str = ""
    """`GRAPH_CLIENT_SECRET`: its secret; default MicrosoftAppPassword."""

    role_cache_seconds: int = 300
    """`ROLE_CACHE_SECONDS`: how long a user's admin roles are trusted before asking again."""

    recharge_lead_days: int = 7
    """`RECHARGE_LEAD_DAYS`: days of a busy day's spend the recommended trigger covers."""

    usage_api_secret: str = ""
    """`USAGE_API_SECRET`: enables `POST /api/tenants/{tenant}/usage`; each tenant's key is
    derived from it (`python -m scripts.usage key --tenant ID` prints one). Empty: disabled."""

    export_url_secret: str = ""
    """`EXPORT_URL_SECRET`: signs the download links of `history`'s CSV export (15 minutes, one
    tenant's books each). Required with an app id, where instances must agree on it; in
    unauthenticated local mode, left empty, each process makes its own."""

    usage_download_hosts: tuple[str, ...] = ("sharepoint.com",)
    """`USAGE_DOWNLOAD_HOSTS`: hosts (and their subdomains) a file sent in chat is fetched from;
    comma-separated. Teams keeps chat files in SharePoint."""

    payment_gateway: str = "stripe"
    """`PAYMENT_GATEWAY`: `stripe` (real payments) or `sandbox` (the embedded test processor).

    Defaults to `sandbox` in unauthenticated local mode and to `stripe` otherwise; with an app
    id, `sandbox` refuses to start (anyone could fund a tenant with a test card).
    """

    stripe_secret_key: str = ""
    """`STRIPE_SECRET_KEY`: the Stripe account's secret (or restricted) key; never logged."""

    stripe_webhook_secret: str = ""
    """`STRIPE_WEBHOOK_SECRET`: the signing secret (`whsec_…`) of the webhook endpoint
    `<PUBLIC_BASE_URL>/api/payments/stripe` made in Stripe; never logged."""

    stripe_api_base: str = ""
    """`STRIPE_API_BASE`: another address for Stripe's API than api.stripe.com. For tests and
    fakes on loopback only; empty in any real deployment."""

    public_base_url: str = ""
    """`PUBLIC_BASE_URL`: the bot's address as a browser reaches it, for the pages the card
    processor sends the admin back to (and the sandbox's hosted page). Default
    `http://127.0.0.1:<PORT>`; https with an app id."""

    log_level: str = "INFO"
    """`LOG_LEVEL`: DEBUG, INFO, WARNING or ERROR."""

    @property
    def authentication_enabled(self) -> bool:
        return bool(self.microsoft_app_id)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from `environ` (default: the process environment) over `.env`.

        Values in the environment win over the `.env` file, as with every dotenv tool.
        """
        values: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        def text(name: str, default: str = "") -> str:
            return values.get(name, default).strip()

        app_type = text("MicrosoftAppType", "MultiTenant") or "MultiTenant"
        match = {t.lower(): t for t in APP_TYPES}.get(app_type.lower())
        if match is None:
            raise SettingsError(
                f"MicrosoftAppType must be one of {', '.join(APP_TYPES)}, not {app_type!r}"
            )

        settings = cls(
            microsoft_app_id=text("MicrosoftAppId"),
            microsoft_app_password=values.get("MicrosoftAppPassword", ""),
            microsoft_app_type=match,
            microsoft_app_tenant_id=text("MicrosoftAppTenantId"),
            storage_connection_string=text("AZURE_STORAGE_CONNECTION_STRING"),
            storage_account_url=text("AZURE_STORAGE_ACCOUNT_URL"),
            table_prefix=_table_prefix(text("TABLE_PREFIX", "ccbot")),
            host=text("HOST", "127.0.0.1") or "127.0.0.1",
            port=_port(text("PORT", "3978")),
            dangerously_allow_unauthenticated=_boolean(
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED", text("DANGEROUSLY_ALLOW_UNAUTHENTICATED")
            ),
            bot_openid_metadata_url=_metadata_url(
                text("BotOpenIdMetadata") or cls.bot_openid_metadata_url
            ),
            default_currency=_currency(text("DEFAULT_CURRENCY", "USD") or "USD"),
            purchase_minimum=_amount("PURCHASE_MINIMUM", text("PURCHASE_MINIMUM", "50") or "50"),
            purchase_maximum=_amount(
                "PURCHASE_MAXIMUM", text("PURCHASE_MAXIMUM", "100000") or "100000"
            ),
            log_level=_log_level(text("LOG_LEVEL", "INFO") or "INFO"),
            directory=_choice(
                "DIRECTORY",
                text("DIRECTORY")
                or ("embedded" if _is_true(text("DANGEROUSLY_ALLOW_UNAUTHENTICATED")) else "graph"),
                ("graph", "embedded"),
            ),
            graph_client_id=text("GRAPH_CLIENT_ID") or text("MicrosoftAppId"),
            graph_client_secret=values.get("GRAPH_CLIENT_SECRET")
            or values.get("MicrosoftAppPassword", ""),
            role_cache_seconds=_seconds("ROLE_CACHE_SECONDS", text("ROLE_CACHE_SECONDS", "300")),
            recharge_lead_days=_days("RECHARGE_LEAD_DAYS", text("RECHARGE_LEAD_DAYS", "7")),
            usage_api_secret=_secret("USAGE_API_SECRET", values.get("USAGE_API_SECRET", "")),
            export_url_secret=_secret("EXPORT_URL_SECRET", values.get("EXPORT_URL_SECRET", "")),
            payment_gateway=_choice(
                "PAYMENT_GATEWAY",
                text("PAYMENT_GATEWAY")
                or ("sandbox" if _is_true(text("DANGEROUSLY_ALLOW_UNAUTHENTICATED")) else "stripe"),
                ("stripe", "sandbox"),
            ),
            stripe_secret_key=values.get("STRIPE_SECRET_KEY", "").strip(),
            stripe_webhook_secret=values.get("STRIPE_WEBHOOK_SECRET", "").strip(),
            stripe_api_base=text("STRIPE_API_BASE").rstrip("/"),
            public_base_url=text("PUBLIC_BASE_URL").rstrip("/")
            or f"http://127.0.0.1:{_port(text('PORT', '3978'))}",
            usage_download_hosts=_download_hosts(text("USAGE_DOWNLOAD_HOSTS") or "sharepoint.com"),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Cross-field rules; raises `SettingsError` naming the variable to fix."""
        if not self.microsoft_app_id and not self.dangerously_allow_unauthenticated:
            raise SettingsError(
                "MicrosoftAppId is not set. Set it (with MicrosoftAppPassword) to validate Bot "
                "Framework tokens, or set DANGEROUSLY_ALLOW_UNAUTHENTICATED=true for local use"
            )
        if self.microsoft_app_id and self.dangerously_allow_unauthenticated:
            raise SettingsError(
                "DANGEROUSLY_ALLOW_UNAUTHENTICATED=true cannot be combined with MicrosoftAppId: "
                "with an app id every request must carry a valid token"
            )
        if self.dangerously_allow_unauthenticated and not _is_loopback(self.host):
            raise SettingsError(
                f"DANGEROUSLY_ALLOW_UNAUTHENTICATED=true needs HOST to be a loopback address "
                f"(127.0.0.1 or ::1), not {self.host!r}: anyone who reaches the port could act "
                f"as any tenant's admin. Set HOST=127.0.0.1, or set MicrosoftAppId and "
                f"MicrosoftAppPassword to serve Teams"
            )
        if self.microsoft_app_id and self.microsoft_app_type != "UserAssignedMSI":
            if not self.microsoft_app_password:
                raise SettingsError(
                    f"MicrosoftAppPassword is required when MicrosoftAppType is "
                    f"{self.microsoft_app_type}"
                )
        if self.microsoft_app_type in ("SingleTenant", "UserAssignedMSI") and self.microsoft_app_id:
            if not self.microsoft_app_tenant_id:
                raise SettingsError(
                    f"MicrosoftAppTenantId is required when MicrosoftAppType is "
                    f"{self.microsoft_app_type}"
                )
        if not self.storage_connection_string and not self.storage_account_url:
            raise SettingsError(
                "AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_URL for managed "
                "identity) is not set"
            )
        if self.directory == "graph" and not (self.graph_client_id and self.graph_client_secret):
            raise SettingsError(
                "DIRECTORY=graph needs GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET (or MicrosoftAppId "
                "and MicrosoftAppPassword) to read users and roles from Microsoft Graph"
            )
        self._validate_payments()
        if self.microsoft_app_id and not self.export_url_secret:
            raise SettingsError(
                "EXPORT_URL_SECRET is required when MicrosoftAppId is set: it signs the download "
                "links of the history export, and every instance must know it (a random secret "
                "of at least 32 characters, such as the output of `openssl rand -base64 32`)"
            )
        if self.purchase_minimum > self.purchase_maximum:
            raise SettingsError("PURCHASE_MINIMUM must not exceed PURCHASE_MAXIMUM")
        if self.storage_account_url and not self.storage_account_url.startswith(
            ("https://", "http://")
        ):
            raise SettingsError("AZURE_STORAGE_ACCOUNT_URL must be an http(s) URL")

    def _validate_payments(self) -> None:
        if self.payment_gateway == "sandbox" and self.microsoft_app_id:
            raise SettingsError(
                "PAYMENT_GATEWAY=sandbox cannot be combined with MicrosoftAppId: the sandbox "
                "accepts test cards, so anyone could add funds for free. Set "
                "PAYMENT_GATEWAY=stripe with STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET"
            )
        if self.payment_gateway == "stripe":
            if not self.stripe_secret_key.startswith(("sk_", "rk_")):
                raise SettingsError(
                    "STRIPE_SECRET_KEY is required with PAYMENT_GATEWAY=stripe: the Stripe "
                    "account's secret key (sk_…) or a restricted key (rk_…)"
                )
            if not self.stripe_webhook_secret.startswith("whsec_"):
                raise SettingsError(
                    "STRIPE_WEBHOOK_SECRET is required with PAYMENT_GATEWAY=stripe: the "
                    "signing secret (whsec_…) of the webhook endpoint made in Stripe"
                )
        if self.stripe_api_base and not self.stripe_api_base.startswith(("https://", "http://")):
            raise SettingsError("STRIPE_API_BASE must be an http(s) URL")
        if not self.public_base_url.startswith(("https://", "http://")):
            raise SettingsError(
                f"PUBLIC_BASE_URL must be an http(s) URL, not {self.public_base_url!r}"
            )
        if self.microsoft_app_id and not self.public_base_url.startswith("https://"):
            raise SettingsError(
                "PUBLIC_BASE_URL must be the bot's https address when MicrosoftAppId is set "
                "(card processors send admins back to it)"
            )

    def __repr__(self) -> str:
        # Never let a secret reach a log line through repr().
        secret = "***" if self.microsoft_app_password else ""
        conn = "***" if self.storage_connection_string else ""
        stripe_key = "***" if self.stripe_secret_key else ""
        webhook = "***" if self.stripe_webhook_secret else ""
        export = "***" if self.export_url_secret else ""
        return (
            f"Settings(app_id={self.microsoft_app_id!r}, app_type={self.microsoft_app_type!r}, "
            f"password={secret!r}, storage_connection_string={conn!r}, "
            f"storage_account_url={self.storage_account_url!r}, host={self.host!r}, "
            f"port={self.port}, unauthenticated={self.dangerously_allow_unauthenticated}, "
            f"payment_gateway={self.payment_gateway!r}, stripe_secret_key={stripe_key!r}, "
            f"stripe_webhook_secret={webhook!r}, export_url_secret={export!r}, "
            f"public_base_url={self.public_base_url!r})"
        )


def _boolean(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _days(name: str, raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 90:
        raise SettingsError(f"{name} must be a number of days from 1 to 90, not {raw!r}")
    return int(raw)


def _secret(name: str, raw: str) -> str:
    if raw and len(raw) < 32:
        raise SettingsError(f"{name} must be at least 32 characters (a random secret)")
    if raw and len(set(raw)) < MIN_SECRET_VARIETY:
        raise SettingsError(
            f"{name} must be a random secret, not {len(set(raw))} characters repeated "
            f"(for example the output of `openssl rand -base64 32`)"
        )
    return raw


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _metadata_url(raw: str) -> str:
    parts = urlsplit(raw)
    # Plain http only to this machine (a test's fake): the keys decide who may talk to the bot.
    if parts.scheme != "https" and not (
        parts.scheme == "http" and _is_loopback(parts.hostname or "")
    ):
        raise SettingsError(f"BotOpenIdMetadata must be an https URL, not {raw!r}")
    return raw


def _download_hosts(raw: str) -> tuple[str, ...]:
    hosts = tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())
    for host in hosts:
        if "/" in host or ":" in host or not host.replace("-", "").replace(".", "").isalnum():
            raise SettingsError(
                f"USAGE_DOWNLOAD_HOSTS must list host names such as sharepoint.com, not {host!r}"
            )
        if _public_suffixes().is_public(host):
            # "com" would let the bot fetch a file from any .com site an attacker names.
            raise SettingsError(
                f"USAGE_DOWNLOAD_HOSTS must name an organisation's domain (such as "
                f"sharepoint.com), not the public suffix {host!r}"
            )
    return hosts


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # The Public Suffix List as packaged; read once, on the first check (about 70 ms).
    return PublicSuffixList()


def _is_true(raw: str) -> bool:
    return raw.lower() in _TRUE


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw.lower() not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw.lower()


def _seconds(name: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) > 86_400:
        raise SettingsError(f"{name} must be a number of seconds from 0 to 86400, not {raw!r}")
    return int(raw)


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"PORT must be a number from 1 to 65535, not {raw!r}")
    return int(raw)


def _currency(raw: str) -> str:
    code = raw.upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise SettingsError(f"DEFAULT_CURRENCY must be an ISO 4217 code such as USD, not {raw!r}")
    return code


def _table_prefix(raw: str) -> str:
    # Table names: alphanumeric, start with a letter; the longest suffix we add is 20 characters.
    if not raw or not raw.isascii() or not raw.isalnum() or not raw[0].isalpha() or len(raw) > 40:
        raise SettingsError(
            f"TABLE_PREFIX must be 1-40 letters and digits, starting with a letter, not {raw!r}"
        )
    return raw


def _amount(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation as error:
        raise SettingsError(f"{name} must be a positive amount such as 50, not {raw!r}") from error
    if not value.is_finite() or value <= 0:
        raise SettingsError(f"{name} must be a positive amount such as 50, not {raw!r}")
    return value


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {raw!r}")
    return level
