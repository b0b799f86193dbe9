"""App-only tokens for Microsoft Graph, one tenant at a time, from azure-identity.

Each tenant that installed the bot gets its own async `ClientSecretCredential` (client
credentials against `{authority}/{tenant}/oauth2/v2.0/token`, scope Graph's `.default`); the
credential caches its token and asks again only when it nears expiry. Credentials are kept for
the most recently used tenants only. They all send through the Graph client's aiohttp session
(an azure-core transport that does not own it), so token requests and Graph calls share one
connection pool and one TLS configuration.

Failures become `TokenError`s: Entra's OAuth error code when it refused (an unknown tenant, an
app without consent or with a wrong secret), `unreachable` when no answer came. Neither the
secret nor a token ever reaches a log line or an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import ClientSecretCredential

from graph.errors import TokenError

logger = logging.getLogger(__name__)

LOGIN_BASE = "https://login.microsoftonline.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MAX_TENANTS = 1_000
# A tenant id goes into the authority's path: a GUID or a domain name, nothing else.
_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
# Entra's OAuth errors that pass with time.
_PASSING = frozenset({"temporarily_unavailable", "server_error"})


@dataclass
class _Tenant:
    credential: ClientSecretCredential
    lock: asyncio.Lock


class GraphTokens:
    """The `TokenSource` of the Graph client in production."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        session: aiohttp.ClientSession,
        *,
        authority: str = LOGIN_BASE,
        timeout: float = 10.0,
        max_tenants: int = MAX_TENANTS,
    ) -> None:
        """`session` carries the token requests and stays open on `close()`; the tests give one
        that trusts their fake's CA. `authority` must be https (azure-identity refuses
        anything else)."""
        if not authority.startswith("https://"):
            # Checked here, at start, rather than at the first tenant's first turn.
            raise ValueError("the token authority must be an https URL")
        self._client_id = client_id
        self._secret = client_secret
        self._session = session
        self._authority = authority
        self._timeout = timeout
        self._max_tenants = max(1, max_tenants)
        # Least recently used first; an evicted tenant only costs one token request later.
        self._tenants: OrderedDict[str, _Tenant] = OrderedDict()

    async def token(self, tenant_id: str) -> str:
        if not _TENANT_ID.fullmatch(tenant_id):
            raise TokenError(None, "not_a_tenant_id", "not a tenant id")
        tenant = self._tenant(tenant_id)
        # One request per tenant at a time, so a burst of first calls asks the authority once:
        # the credential has a cache but no lock.
        async with tenant.lock:
            try:
                access = await tenant.credential.get_token(GRAPH_SCOPE)
            except ClientAuthenticationError as error:
                raise _refused(tenant_id, error) from error
            except (ServiceRequestError, ServiceResponseError) as error:
                logger.warning("token authority unreachable for tenant %s: %r", tenant_id, error)
                raise TokenError(
                    None, "unreachable", type(error).__name__, transient=True
                ) from error
            except AzureError as error:
                # Anything else the pipeline raises (an answer that is not JSON, say).
                status = getattr(error, "status_code", None)
                name = type(error).__name__
                logger.warning("no token for tenant %s: %s %s", tenant_id, status, name)
                transient = status is None or status >= 500
                raise TokenError(status, "", name, transient=transient) from error
        return access.token

    def _tenant(self, tenant_id: str) -> _Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is not None:
            self._tenants.move_to_end(tenant_id)
            return tenant
        transport = AioHttpTransport(
            session=self._session,
            session_owner=False,
            connection_timeout=self._timeout,
            read_timeout=self._timeout,
        )
        credential = ClientSecretCredential(
            tenant_id,
            self._client_id,
            self._secret,
            authority=self._authority,
            transport=transport,
            # One more try when no answer came, none on an answer: azure-core would sleep on
            # Entra's Retry-After however long, and a chat turn must not.
            retry_total=1,
            retry_status=0,
        )
        tenant = _Tenant(credential, asyncio.Lock())
        self._tenants[tenant_id] = tenant
        while len(self._tenants) > self._max_tenants:
            # Dropped, not closed: a call may still be using it, and closing it would only
            # release a session it does not own.
            self._tenants.popitem(last=False)
        return tenant

    async def close(self) -> None:
        tenants, self._tenants = list(self._tenants.values()), OrderedDict()
        for tenant in tenants:
            await tenant.credential.close()


def _refused(tenant_id: str, error: ClientAuthenticationError) -> TokenError:
    """Entra's error code and description from the refusal; its body never holds a token then,
    and the secret was only ever in the request."""
    response = error.response
    status = response.status_code if response is not None else None
    code, description = "", ""
    if response is not None:
        try:
            body = json.loads(response.text())
        except (ValueError, AzureError):
            body = None
        if isinstance(body, dict):
            code = str(body.get("error") or "")
            description = str(body.get("error_description") or "")[:200]
    logger.warning("no token for tenant %s: %s %s %s", tenant_id, status, code, description)
    transient = code in _PASSING or (status is not None and (status >= 500 or status == 429))
    return TokenError(status, code, description, transient=transient)
