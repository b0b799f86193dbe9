"""A fake Microsoft Graph on loopback.

It stands for Microsoft Graph v1.0 (users, subscribedSkus, assignLicense, memberOf) and the
Entra v2.0 token endpoint of each tenant, and speaks the part of their REST contracts the bot
uses:

    POST /{tenant}/oauth2/v2.0/token                  client credentials → bearer token
    GET  /v1.0/users?$select=…&$top=…                 paged, absolute @odata.nextLink
    GET  /v1.0/users/{id}?$select=…
    GET  /v1.0/subscribedSkus
    POST /v1.0/users/{id}/assignLicense
    GET  /v1.0/users/{id}/memberOf/microsoft.graph.directoryRole   paged

Each tenant has its own users, SKUs (with seats) and role memberships; a token names the tenant
it was issued for, so a token of one tenant never sees another. Requests without a known bearer
token get 401. Licence errors arise from the state, with Graph's own codes and messages: a user
without a usage location, a SKU with no free seat, an unknown user. Throttling and outages are
scripted (`fail_next`, `hang_next`, `answer_next` for any raw answer, `fail_token_next` for the
token endpoint). Every request is recorded.

Serve it over TLS (`LoopbackTls`) when azure-identity is the client: it accepts only https
authorities.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import itertools
import ssl
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

GRAPH_PREFIX = "/v1.0"
DEFAULT_PAGE_SIZE = 100  # Graph's default page size for users and memberOf
MAX_USERS_PAGE = 999
DEFAULT_USER_FIELDS = ("id", "displayName", "userPrincipalName")  # a subset of Graph's defaults


@dataclass
class FakeUser:
    id: str
    display_name: str
    user_principal_name: str
    usage_location: str | None = None
    sku_ids: list[str] = field(default_factory=list)
    role_template_ids: list[str] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "userPrincipalName": self.user_principal_name,
            "usageLocation": self.usage_location,
            "assignedLicenses": [{"skuId": s, "disabledPlans": []} for s in self.sku_ids],
        }


@dataclass
class FakeSku:
    sku_id: str
    part_number: str
    enabled: int
    consumed: int = 0
    service_plans: list[str] = field(default_factory=list)

    def resource(self, tenant_id: str) -> dict[str, Any]:
        return {
            "id": f"{tenant_id}_{self.sku_id}",
            "skuId": self.sku_id,
            "skuPartNumber": self.part_number,
            "appliesTo": "User",
            "capabilityStatus": "Enabled",
            "consumedUnits": self.consumed,
            "prepaidUnits": {"enabled": self.enabled, "suspended": 0, "warning": 0, "lockedOut": 0},
            "servicePlans": [
                {
                    "servicePlanId": str(uuid.uuid5(uuid.NAMESPACE_URL, plan)),
                    "servicePlanName": plan,
                    "provisioningStatus": "Success",
                    "appliesTo": "User",
                }
                for plan in self.service_plans
            ],
        }


@dataclass
class FakeTenant:
    users: dict[str, FakeUser] = field(default_factory=dict)
    skus: dict[str, FakeSku] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    """Operations the app has no permission for here: users, subscribedSkus, assignLicense,
    memberOf."""


# Set by the middleware once the bearer token is known.
TENANT = web.RequestKey("tenant", FakeTenant)
TENANT_ID = web.RequestKey("tenant_id", str)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    url: str
    authorization: str | None
    tenant_id: str | None
    body: Any = None


@dataclass
class Fault:
    status: int
    retry_after: str | None
    code: str
    message: str


@dataclass
class RawAnswer:
    status: int
    body: bytes
    headers: dict[str, str]


class FakeGraph:
    def __init__(self, clients: dict[str, str] | None = None) -> None:
        """`clients`: client id → secret of the app registrations the token endpoint knows."""
        self.clients = dict(clients or {})
        self.tenants: dict[str, FakeTenant] = {}
        self.requests: list[Seen] = []
        self.token_requests: Counter[str] = Counter()
        self.page_size = DEFAULT_PAGE_SIZE
        self.token_lifetime = 3599
        """Seconds a token is valid for (its `expires_in`)."""
        self.next_link_base: str | None = None
        """Overrides the origin of next links (to test that a client refuses a foreign one)."""
        self.url = ""
        """Set by the test once the server runs; next links are built from the request instead."""
        self._tokens: dict[str, str] = {}
        self._faults: deque[Fault | RawAnswer] = deque()
        self._token_faults: deque[Fault] = deque()
        self._hangs: deque[float] = deque()
        self._serial = itertools.count(1)

    # --- state ----------------------------------------------------------------------------

    def tenant(self, tenant_id: str) -> FakeTenant:
        return self.tenants.setdefault(tenant_id, FakeTenant())

    def add_user(
        self,
        tenant_id: str,
        user_id: str,
        display_name: str,
        *,
        upn: str | None = None,
        usage_location: str | None = "US",
        sku_ids: list[str] | tuple[str, ...] = (),
        roles: list[str] | tuple[str, ...] = (),
    ) -> FakeUser:
        user = FakeUser(
            user_id,
            display_name,
            upn or f"{user_id}@example.com",
            usage_location,
            list(sku_ids),
            list(roles),
        )
        self.tenant(tenant_id).users[user_id] = user
        return user

    def add_users(self, tenant_id: str, count: int, prefix: str = "user") -> list[FakeUser]:
        return [
            self.add_user(tenant_id, f"{prefix}-{n:05d}", f"User {n:05d}") for n in range(count)
        ]

    def add_sku(
        self,
        tenant_id: str,
        sku_id: str,
        part_number: str,
        *,
        enabled: int,
        consumed: int = 0,
        plans: list[str] | tuple[str, ...] = (),
    ) -> FakeSku:
        sku = FakeSku(sku_id, part_number, enabled, consumed, list(plans) or [part_number])
        self.tenant(tenant_id).skus[sku_id] = sku
        return sku

    def deny(self, tenant_id: str, *operations: str) -> None:
        self.tenant(tenant_id).denied.update(operations)

    def fail_next(
        self,
        count: int,
        status: int = 429,
        *,
        retry_after: str | None = None,
        code: str | None = None,
        message: str = "",
    ) -> None:
        """The next `count` Graph requests (not token requests) answer `status`."""
        codes = {429: "TooManyRequests", 503: "ServiceUnavailable"}
        default_code = codes.get(status, "UnknownError")
        for _ in range(count):
            self._faults.append(
                Fault(status, retry_after, code or default_code, message or f"scripted {status}")
            )

    def answer_next(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """The next Graph request gets this answer as it is (a redirect, a body that is not
        JSON, or not a number, or too large)."""
        self._faults.append(RawAnswer(status, body, dict(headers or {})))

    def fail_token_next(
        self,
        count: int,
        status: int,
        error: str,
        description: str = "AADSTS50000: scripted.",
        *,
        retry_after: str | None = None,
    ) -> None:
        """The next `count` token requests get Entra's error answer."""
        for _ in range(count):
            self._token_faults.append(Fault(status, retry_after, error, description))

    def hang_next(self, count: int, seconds: float) -> None:
        """The next `count` Graph requests answer only after `seconds` (to time clients out)."""
        self._hangs.extend([seconds] * count)

    def issue_token(self, tenant_id: str) -> str:
        """A valid token without the token endpoint (for tests that bring their own provider)."""
        token = f"fake-{uuid.uuid4().hex}-{next(self._serial)}"
        self._tokens[token] = tenant_id
        return token

    # What tests read most.
    def graph_requests(self, path_prefix: str = "") -> list[Seen]:
        return [seen for seen in self.requests if seen.path.startswith(GRAPH_PREFIX + path_prefix)]

    # --- the app --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get(GRAPH_PREFIX + "/users", self._list_users)
        app.router.add_get(GRAPH_PREFIX + "/users/{id}", self._get_user)
        app.router.add_post(GRAPH_PREFIX + "/users/{id}/assignLicense", self._assign)
        app.router.add_get(
            GRAPH_PREFIX + "/users/{id}/memberOf/microsoft.graph.directoryRole", self._roles
        )
        app.router.add_get(GRAPH_PREFIX + "/subscribedSkus", self._skus)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        tenant_id = self._tenant_of(authorization)
        body: Any = None
        if request.can_read_body and request.content_type == "application/json":
            body = await request.json()
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                str(request.url),
                authorization,
                tenant_id,
                body,
            )
        )
        if not request.path.startswith(GRAPH_PREFIX + "/"):
            return await handler(request)
        if tenant_id is None:
            message = "Access token is empty."
            if authorization:
                message = "Access token validation failure."
            return _error(401, "InvalidAuthenticationToken", message)
        if self._hangs:
            await asyncio.sleep(self._hangs.popleft())
        if self._faults:
            fault = self._faults.popleft()
            if isinstance(fault, RawAnswer):
                return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return _error(fault.status, fault.code, fault.message, headers=headers)
        request[TENANT] = self.tenant(tenant_id)
        request[TENANT_ID] = tenant_id
        return await handler(request)

    def _tenant_of(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self._tokens.get(authorization.removeprefix("Bearer "))

    # --- Entra ----------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant"]
        self.token_requests[tenant_id] += 1
        form = await request.post()
        if self._token_faults:
            fault = self._token_faults.popleft()
            response = _token_error(fault.status, fault.code, fault.message)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = fault.retry_after
            return response
        if tenant_id not in self.tenants:
            return _token_error(
                400, "invalid_request", f"AADSTS90002: Tenant '{tenant_id}' not found."
            )
        if form.get("grant_type") != "client_credentials":
            return _token_error(400, "unsupported_grant_type", "AADSTS70003: grant type.")
        client_id = str(form.get("client_id", ""))
        if client_id not in self.clients:
            return _token_error(
                400, "unauthorized_client", f"AADSTS700016: Application '{client_id}' not found."
            )
        if form.get("client_secret") != self.clients[client_id]:
            return _token_error(401, "invalid_client", "AADSTS7000215: Invalid client secret.")
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return _token_error(400, "invalid_scope", "AADSTS1002012: scope.")
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": self.issue_token(tenant_id),
            }
        )

    # --- Graph ----------------------------------------------------------------------------

    async def _list_users(self, request: web.Request) -> web.Response:
        tenant: FakeTenant = request[TENANT]
        if "users" in tenant.denied:
            return _denied()
        try:
            top = int(request.query.get("$top", self.page_size))
        except ValueError:
            return _error(400, "Request_BadRequest", "Invalid value for '$top'.")
        if not 1 <= top <= MAX_USERS_PAGE:
            return _error(400, "Request_BadRequest", f"Invalid page size specified: '{top}'.")
        users = [user.resource() for user in tenant.users.values()]
        fields = _fields(request)
        return self._page(request, [_pick(u, fields) for u in users], top)

    async def _get_user(self, request: web.Request) -> web.Response:
        tenant: FakeTenant = request[TENANT]
        if "users" in tenant.denied:
            return _denied()
        user = tenant.users.get(request.match_info["id"])
        if user is None:
            return _not_found(request.match_info["id"])
        return web.json_response(_pick(user.resource(), _fields(request)))

    async def _skus(self, request: web.Request) -> web.Response:
        tenant: FakeTenant = request[TENANT]
        if "subscribedSkus" in tenant.denied:
            return _denied()
        skus = [sku.resource(request[TENANT_ID]) for sku in tenant.skus.values()]
        return web.json_response({"value": skus})

    async def _roles(self, request: web.Request) -> web.Response:
        tenant: FakeTenant = request[TENANT]
        if "memberOf" in tenant.denied:
            return _denied()
        user = tenant.users.get(request.match_info["id"])
        if user is None:
            return _not_found(request.match_info["id"])
        roles = [
            {
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": str(uuid.uuid5(uuid.NAMESPACE_OID, template)),
                "roleTemplateId": template,
                "displayName": template,
            }
            for template in user.role_template_ids
        ]
        top = int(request.query.get("$top", self.page_size))
        return self._page(request, [_pick(r, _fields(request)) for r in roles], top)

    async def _assign(self, request: web.Request) -> web.Response:
        tenant: FakeTenant = request[TENANT]
        if "assignLicense" in tenant.denied:
            return _denied()
        user = tenant.users.get(request.match_info["id"])
        if user is None:
            return _not_found(request.match_info["id"])
        body = await request.json()
        missing = [name for name in ("addLicenses", "removeLicenses") if name not in body]
        if missing:
            return _error(
                400,
                "Request_BadRequest",
                "One or more parameters of the operation 'assignLicense' are missing from the "
                f"request payload. The missing parameters are: {', '.join(missing)}.",
            )
        add = [str(item["skuId"]).lower() for item in body["addLicenses"]]
        remove = [str(sku_id).lower() for sku_id in body["removeLicenses"]]
        for sku_id in add + remove:
            if sku_id not in tenant.skus:
                return _error(
                    400,
                    "Request_BadRequest",
                    f"License {sku_id} does not correspond to a valid company License.",
                )
        if add and not user.usage_location:
            return _error(
                400,
                "Request_BadRequest",
                "License assignment cannot be done for user with invalid usage location.",
            )
        for sku_id in remove:
            if sku_id not in user.sku_ids:
                return _error(
                    400, "Request_BadRequest", "User does not have a corresponding license."
                )
        new = [sku_id for sku_id in dict.fromkeys(add) if sku_id not in user.sku_ids]
        for sku_id in new:
            sku = tenant.skus[sku_id]
            if sku.consumed >= sku.enabled:
                return _error(
                    400,
                    "Request_BadRequest",
                    f"Subscription with SKU {sku_id} does not have any available licenses.",
                )
        # All checks passed: the change is applied as a whole, as Graph does.
        for sku_id in new:
            tenant.skus[sku_id].consumed += 1
            user.sku_ids.append(sku_id)
        for sku_id in remove:
            tenant.skus[sku_id].consumed -= 1
            user.sku_ids.remove(sku_id)
        # Graph answers with the user's default properties, not its licences.
        return web.json_response(_pick(user.resource(), DEFAULT_USER_FIELDS))

    def _page(self, request: web.Request, items: list[dict[str, Any]], top: int) -> web.Response:
        offset = _offset_of(request.query.get("$skiptoken"))
        page: dict[str, Any] = {"value": items[offset : offset + top]}
        if offset + top < len(items):
            origin = self.next_link_base or str(request.url.origin())
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$top"] = str(top)
            query["$skiptoken"] = f"X%27{offset + top:08x}%27"  # opaque, as Graph's are
            link = "&".join(f"{k}={v}" for k, v in query.items())
            page["@odata.nextLink"] = f"{origin}{request.path}?{link}"
        return web.json_response(page)


def _offset_of(skiptoken: str | None) -> int:
    if not skiptoken:
        return 0
    return int(skiptoken.removeprefix("X'").removesuffix("'"), 16)


def _fields(request: web.Request) -> tuple[str, ...] | None:
    select = request.query.get("$select")
    return tuple(select.split(",")) if select else None


def _pick(resource: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    if fields is None:
        return resource
    return {k: v for k, v in resource.items() if k in fields or k.startswith("@odata")}


def _error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        },
        status=status,
        headers=headers,
    )


def _denied() -> web.Response:
    return _error(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _not_found(user_id: str) -> web.Response:
    return _error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{user_id}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def _token_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response(
        {
            "error": error,
            "error_description": description,
            "error_codes": [int(description.split(":")[0].removeprefix("AADSTS") or 0)],
            "correlation_id": str(uuid.uuid4()),
        },
        status=status,
    )


# --- TLS on loopback --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopbackTls:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it, written to a directory."""

    ca_path: str
    cert_path: str
    key_path: str

    @classmethod
    def create(cls, directory: Path) -> LoopbackTls:
        # Imported here: only the tests that serve TLS need it (azure-identity depends on it).
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake graph test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        paths = cls(
            ca_path=str(directory / "ca.pem"),
            cert_path=str(directory / "server.pem"),
            key_path=str(directory / "server.key"),
        )
        Path(paths.ca_path).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        Path(paths.cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        Path(paths.key_path).write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return paths

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_path)
