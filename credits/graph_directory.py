"""The directory port on Microsoft Graph v1.0, app-only, for every tenant that installed the bot.

One `aiohttp.ClientSession` carries all Graph calls; a `TokenProvider` hands out an app-only
token per tenant (`MsalTokenProvider`: client credentials through MSAL, cached per tenant until
shortly before expiry). Throttling (429) and passing outages (502, 503, 504, a dropped
connection) are retried with `Retry-After` or exponential back-off and jitter, a bounded number
of times. Graph's error bodies become `DirectoryError`s the product can tell apart.

Graph base and authority are parameters so the tests point both at a fake on loopback.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import msal
from yarl import URL

from credits.directory import DirectoryError, DirectoryProblem, DirectoryUser, Sku
from credits.retry_after import retry_after_seconds

logger = logging.getLogger(__name__)

GRAPH_BASE = "https://graph.microsoft.com/v1.0"
LOGIN_BASE = "https://login.microsoftonline.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"

USER_FIELDS = "id,displayName,userPrincipalName,usageLocation,assignedLicenses"
# The most /users returns in one page; fewer pages means fewer throttling units spent.
USERS_PAGE_SIZE = 999

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 5
BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
# A Retry-After beyond this is a sign to give up for now rather than hold a turn open.
MAX_RETRY_AFTER = 60.0

# Graph error codes (the `error.code` of an error body). Request_BadRequest is generic, so for it
# the message decides; see `problem_of`.
_CODES: Mapping[str, DirectoryProblem] = {
    "request_resourcenotfound": DirectoryProblem.USER_NOT_FOUND,
    "resourcenotfound": DirectoryProblem.USER_NOT_FOUND,
    "authorization_requestdenied": DirectoryProblem.INSUFFICIENT_PRIVILEGES,
    "authorization_identitynotfound": DirectoryProblem.INSUFFICIENT_PRIVILEGES,
    "accessdenied": DirectoryProblem.INSUFFICIENT_PRIVILEGES,
    "forbidden": DirectoryProblem.INSUFFICIENT_PRIVILEGES,
    "invalidauthenticationtoken": DirectoryProblem.INSUFFICIENT_PRIVILEGES,
    # The licence-assignment error names (group licensing reports them per user).
    "countviolation": DirectoryProblem.NO_SEATS,
    # The licence is not sold where the user is: a usage location is set, just not a fitting one.
    "prohibitedinusagelocationviolation": DirectoryProblem.REJECTED,
    "toomanyrequests": DirectoryProblem.THROTTLED,
    "serviceunavailable": DirectoryProblem.UNAVAILABLE,
}
# Messages of Request_BadRequest that carry a meaning of their own.
_MESSAGES: tuple[tuple[re.Pattern[str], DirectoryProblem], ...] = (
    # "License assignment cannot be done for user with invalid usage location."
    # (the Entra portal: "… cannot be assigned to a user without a usage location specified.")
    (
        re.compile(r"invalid usage ?location|without a usage ?location", re.I),
        DirectoryProblem.NO_USAGE_LOCATION,
    ),
    # "Subscription with SKU … does not have any available licenses."
    (re.compile(r"(does not have any|no) available licen[cs]es", re.I), DirectoryProblem.NO_SEATS),
    # A malformed user id (the Agents Playground's mock ids are not GUIDs).
    (re.compile(r"invalid object identifier", re.I), DirectoryProblem.USER_NOT_FOUND),
)
_STATUSES: Mapping[int, DirectoryProblem] = {
    401: DirectoryProblem.INSUFFICIENT_PRIVILEGES,
    403: DirectoryProblem.INSUFFICIENT_PRIVILEGES,
    404: DirectoryProblem.USER_NOT_FOUND,
    429: DirectoryProblem.THROTTLED,
}


def problem_of(status: int, code: str, message: str) -> DirectoryProblem:
    """What a Graph error means to the product: the error code first, then the message text."""
    by_code = _CODES.get(code.lower())
    if by_code is not None:
        return by_code
    for pattern, problem in _MESSAGES:
        if pattern.search(message):
            return problem
    if status in _STATUSES:
        return _STATUSES[status]
    if status >= 500:
        return DirectoryProblem.UNAVAILABLE
    return DirectoryProblem.REJECTED


# --- tokens -------------------------------------------------------------------------------------


class TokenProvider(Protocol):
    async def token(self, tenant_id: str) -> str:
        """An app-only access token for Microsoft Graph in this tenant; raises DirectoryError."""


# A tenant id goes into the authority's path: a GUID or a domain name, nothing else.
_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
# MSAL error codes that mean the app may not act in this tenant (not consented, wrong secret).
_REFUSED = frozenset({"invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope"})
_PASSING = frozenset({"temporarily_unavailable", "server_error"})
MAX_TENANT_APPS = 1_000


class MsalTokenProvider:
    """Client-credential tokens through MSAL, one ConfidentialClientApplication per tenant.

    MSAL caches each tenant's token and asks the authority again only shortly before it expires.
    MSAL is synchronous (it uses `requests`), so every call runs in a worker thread.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        authority_base: str = LOGIN_BASE,
        validate_authority: bool = True,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """`validate_authority=False` skips MSAL's instance discovery (it asks
        login.microsoftonline.com whether the authority is known): for an authority that is not
        Microsoft's, such as the tests' fake. `ca_bundle` is a CA file to trust instead of the
        system's (the fake's self-signed certificate)."""
        self._client_id = client_id
        self._secret = client_secret
        self._authority_base = authority_base.rstrip("/")
        self._validate_authority = validate_authority
        self._ca_bundle = ca_bundle
        self._timeout = timeout
        # Least recently used last out; an evicted tenant only costs one token request later.
        self._apps: OrderedDict[str, msal.ConfidentialClientApplication] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def token(self, tenant_id: str) -> str:
        if not _TENANT_ID.match(tenant_id):
            raise DirectoryError(DirectoryProblem.REJECTED, "not a tenant id")
        # One acquisition per tenant at a time, so a burst of first calls asks the authority once.
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            app = self._apps.get(tenant_id)
            try:
                if app is None:
                    app = await asyncio.to_thread(self._new_app, tenant_id)
                    self._remember(tenant_id, app)
                else:
                    self._apps.move_to_end(tenant_id)
                result = await asyncio.to_thread(app.acquire_token_for_client, [GRAPH_SCOPE])
            except ValueError as error:
                # MSAL's OpenID discovery failed: most often a tenant that does not exist.
                logger.warning("authority discovery failed for tenant %s: %s", tenant_id, error)
                raise DirectoryError(DirectoryProblem.REJECTED, "unknown tenant") from error
            except OSError as error:  # requests' errors are OSErrors
                logger.warning("token authority unreachable for tenant %s: %r", tenant_id, error)
                raise DirectoryError(DirectoryProblem.UNAVAILABLE, "token authority") from error
        token = result.get("access_token")
        if token:
            return token
        # Only the error's code and Entra's description: the result never holds a secret then.
        error_code = str(result.get("error", ""))
        description = str(result.get("error_description", ""))[:200]
        logger.warning("no token for tenant %s: %s %s", tenant_id, error_code, description)
        if error_code in _REFUSED:
            problem = DirectoryProblem.INSUFFICIENT_PRIVILEGES
        elif error_code in _PASSING:
            problem = DirectoryProblem.UNAVAILABLE
        else:
            problem = DirectoryProblem.REJECTED
        raise DirectoryError(problem, f"token: {error_code}")

    def _new_app(self, tenant_id: str) -> msal.ConfidentialClientApplication:
        # Runs in a worker thread: the constructor fetches the tenant's OpenID configuration.
        return msal.ConfidentialClientApplication(
            self._client_id,
            client_credential=self._secret,
            authority=f"{self._authority_base}/{tenant_id}",
            validate_authority=self._validate_authority,
            instance_discovery=self._validate_authority,
            http_client=self._http_client(),
            timeout=self._timeout,
        )

    def _http_client(self) -> Any:
        """MSAL's default HTTP client, unless a CA bundle is given."""
        if self._ca_bundle is None:
            return None
        import requests  # MSAL's own HTTP library, a dependency of msal

        session = requests.Session()
        # Per request, not `session.verify`: requests lets REQUESTS_CA_BUNDLE in the environment
        # override a session's `verify` (psf/requests#3829), but not a request's.
        session.request = functools.partial(  # type: ignore[method-assign]
            session.request, verify=self._ca_bundle, timeout=self._timeout
        )
        adapter = requests.adapters.HTTPAdapter(max_retries=1)  # as MSAL's own client does
        session.mount("https://", adapter)
        return session

    def _remember(self, tenant_id: str, app: msal.ConfidentialClientApplication) -> None:
        self._apps[tenant_id] = app
        while len(self._apps) > MAX_TENANT_APPS:
            # Dropped, not closed: a worker thread may still be using it for a token request.
            evicted, _ = self._apps.popitem(last=False)
            self._locks.pop(evicted, None)

    def close(self) -> None:
        for app in self._apps.values():
            app.http_client.close()
        self._apps.clear()


# --- Graph --------------------------------------------------------------------------------------

Sleep = Callable[[float], Awaitable[Any]]


class GraphDirectory:
    """`credits.directory.Directory` on Microsoft Graph v1.0."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None,
        tokens: TokenProvider,
        *,
        graph_base: str = GRAPH_BASE,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Sleep = asyncio.sleep,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        """`session` is shared when given (and left open by `close()`); None makes one here."""
        self._owns_session = session is None
        self._session = session or aiohttp.ClientSession()
        self._tokens = tokens
        self._base = graph_base.rstrip("/")
        self._origin = URL(self._base).origin()
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._timeout = timeout or aiohttp.ClientTimeout(total=30)

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    # --- the port ---------------------------------------------------------------------------

    async def list_users(self, tenant_id: str) -> AsyncIterator[DirectoryUser]:
        params = {"$select": USER_FIELDS, "$top": str(USERS_PAGE_SIZE)}
        async for item in self._pages(tenant_id, self._url("users"), params):
            yield _user_from(item)

    async def get_user(self, tenant_id: str, user_id: str) -> DirectoryUser:
        body = await self._call(
            tenant_id, "GET", self._url("users", user_id), params={"$select": USER_FIELDS}
        )
        return _user_from(body)

    async def subscribed_skus(self, tenant_id: str) -> list[Sku]:
        pages = self._pages(tenant_id, self._url("subscribedSkus"))
        return [_sku_from(item) async for item in pages]

    async def assign_licenses(
        self, tenant_id: str, user_id: str, *, add: list[str], remove: list[str]
    ) -> DirectoryUser:
        # Graph wants both lists present, even when one is empty.
        body = {
            "addLicenses": [{"skuId": sku_id, "disabledPlans": []} for sku_id in add],
            "removeLicenses": list(remove),
        }
        answer = await self._call(
            tenant_id, "POST", self._url("users", user_id, "assignLicense"), json=body
        )
        if "assignedLicenses" in answer and "usageLocation" in answer:
            return _user_from(answer)
        # assignLicense answers with the user's default properties, which leave out licences
        # and usage location: read the user back to return it as it is now.
        return await self.get_user(tenant_id, user_id)

    async def role_template_ids(self, tenant_id: str, user_id: str) -> frozenset[str]:
        url = self._url("users", user_id, "memberOf", "microsoft.graph.directoryRole")
        pages = self._pages(tenant_id, url, {"$select": "roleTemplateId"})
        return frozenset(
            [item["roleTemplateId"] async for item in pages if item.get("roleTemplateId")]
        )

    # --- HTTP -------------------------------------------------------------------------------

    def _url(self, *segments: str) -> URL:
        # Ids are quoted: a user id from a card must not be able to change the path.
        path = "/".join(quote(segment, safe="") for segment in segments)
        return URL(f"{self._base}/{path}", encoded=True)

    async def _pages(
        self, tenant_id: str, url: URL, params: dict[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        next_url: URL | None = url
        while next_url is not None:
            body = await self._call(tenant_id, "GET", next_url, params=params)
            for item in body.get("value") or []:
                yield item
            link = body.get("@odata.nextLink")
            # The next link already carries the query (and its opaque skip token).
            next_url, params = (URL(link, encoded=True), None) if link else (None, None)
            if next_url is not None and next_url.origin() != self._origin:
                # The bearer token goes only to Graph, whatever a response says.
                raise DirectoryError(DirectoryProblem.REJECTED, "next link left Graph")

    async def _call(
        self,
        tenant_id: str,
        method: str,
        url: URL,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        status: int | None = None
        for attempt in range(1, self._max_attempts + 1):
            # Asked on every attempt: cached, so cheap, and a long wait may outlast a token.
            token = await self._tokens.token(tenant_id)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            retry_after: str | None = None
            try:
                async with self._session.request(
                    method, url, params=params, json=json, headers=headers, timeout=self._timeout
                ) as response:
                    status = response.status
                    if status < 300:
                        return await _json_of(response)
                    retry_after = response.headers.get("Retry-After")
                    code, message = await _error_of(response)
            except (aiohttp.ClientConnectionError, TimeoutError) as error:
                # Retried like a 503, except a POST that may have reached Graph: repeating an
                # assignLicense that was applied would fail (a removed licence is not held).
                if method != "GET" and not isinstance(error, aiohttp.ClientConnectorError):
                    logger.warning(
                        "graph %s %s for tenant %s: %r", method, url.path, tenant_id, error
                    )
                    raise DirectoryError(DirectoryProblem.UNAVAILABLE, "no answer") from error
                status = None
                code, message = "", repr(error)
            if status is not None and status not in RETRIED_STATUSES:
                problem = problem_of(status, code, message)
                logger.warning(
                    "graph %s %s for tenant %s: %s %s (%s)",
                    method,
                    url.path,
                    tenant_id,
                    status,
                    code,
                    problem.value,
                )
                raise DirectoryError(problem, f"{status} {code}: {message}"[:300])
            delay = _delay(attempt, retry_after)
            if attempt == self._max_attempts or delay is None:
                break
            logger.info(
                "graph %s %s for tenant %s: %s, retry %d in %.1fs",
                method,
                url.path,
                tenant_id,
                status or "no answer",
                attempt,
                delay,
            )
            await self._sleep(delay)
        problem = DirectoryProblem.THROTTLED if status == 429 else DirectoryProblem.UNAVAILABLE
        logger.warning(
            "graph %s %s for tenant %s: gave up after %d attempts (%s)",
            method,
            url.path,
            tenant_id,
            attempt,
            status or "no answer",
        )
        raise DirectoryError(problem, f"gave up after {attempt} attempts")


def _delay(attempt: int, retry_after: str | None) -> float | None:
    """Graph's Retry-After when it gives one, else full-jitter exponential back-off; None when
    Graph asks for a longer wait than a conversation turn should hold."""
    if retry_after:
        seconds = retry_after_seconds(retry_after)
        if seconds is not None:
            return seconds if seconds <= MAX_RETRY_AFTER else None
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))


async def _json_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    text = await response.text()
    if not text.strip():
        return {}
    try:
        body = await response.json(content_type=None)
    except ValueError as error:
        raise DirectoryError(DirectoryProblem.UNAVAILABLE, "Graph answered without JSON") from error
    return body if isinstance(body, dict) else {}


async def _error_of(response: aiohttp.ClientResponse) -> tuple[str, str]:
    """(code, message) of a Graph error body; a body that is not one yields its text."""
    text = await response.text()
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return "", text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", text[:200]
    return str(error.get("code") or ""), str(error.get("message") or "")


def _user_from(item: dict[str, Any]) -> DirectoryUser:
    return DirectoryUser(
        id=item["id"],
        display_name=item.get("displayName") or "",
        user_principal_name=item.get("userPrincipalName") or "",
        usage_location=item.get("usageLocation") or "",
        sku_ids=frozenset(
            licence["skuId"]
            for licence in item.get("assignedLicenses") or []
            if licence.get("skuId")
        ),
    )


def _sku_from(item: dict[str, Any]) -> Sku:
    return Sku(
        sku_id=item["skuId"],
        part_number=item.get("skuPartNumber") or "",
        enabled_units=int((item.get("prepaidUnits") or {}).get("enabled") or 0),
        consumed_units=int(item.get("consumedUnits") or 0),
        service_plans=frozenset(
            plan["servicePlanName"]
            for plan in item.get("servicePlans") or []
            if plan.get("servicePlanName")
        ),
    )
