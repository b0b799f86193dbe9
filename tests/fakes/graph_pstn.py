"""A fake of Microsoft Graph's `getPstnCalls` on loopback.

It stands for

    GET /v1.0/communications/callRecords/getPstnCalls(fromDateTime={t},toDateTime={t})

as Graph documents it: DateTimeOffset literals in the path, both ends inclusive and selecting
on the call's start, a range of at most 90 days (a 400 otherwise), pages of `page_size` rows
(1,000 like Graph) linked by an absolute `@odata.nextLink` with an opaque skip token, and the
last page without one. A request needs the bearer token of the tenant whose calls it reads
(401 otherwise); a token names one tenant and sees only its calls. Throttling and outages are
scripted with `fail_next` (429 with `Retry-After`, 503). Every request is recorded.

Rows are pstnCallLogRow objects. Amounts (`charge`, `connectionCharge`) are given as `Decimal`
and written into the JSON as that exact decimal text, a number on the wire as Graph writes a
double: a client that parses them as binary floats sees 0.1 + 0.2 != 0.3.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

GRAPH_PREFIX = "/v1.0"
FUNCTION = re.compile(
    r"/v1\.0/communications/callRecords/getPstnCalls\(fromDateTime=([^,()]+),toDateTime=([^,()]+)\)"
)
MAX_RANGE = timedelta(days=90)
GRAPH_PAGE_SIZE = 1_000
_NUMBER = re.compile(r'"@@(-?[0-9.Ee+-]+)@@"')


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    authorization: str | None
    from_time: str | None
    to_time: str | None


@dataclass
class Fault:
    status: int
    retry_after: str | None
    code: str


def pstn_row(
    *,
    start: datetime,
    charge: Decimal | int | None,
    connection_charge: Decimal | int | None = Decimal("0"),
    currency: str = "USD",
    capability: str = "MCOPSTNPP",
    usage_id: str | None = None,
    user_id: str | None = None,
    duration: int = 60,
) -> dict[str, Any]:
    """A pstnCallLogRow with Graph's property names; amounts stay Decimal until serialised."""
    return {
        "id": usage_id or str(uuid.uuid4()),
        "callId": str(uuid.uuid4()),
        "userId": user_id if user_id is not None else str(uuid.uuid4()),
        "userPrincipalName": "wei.wang@contoso.com",
        "userDisplayName": "王伟",
        "startDateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (start + timedelta(seconds=duration)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration": duration,
        "charge": charge,
        "connectionCharge": connection_charge,
        "currency": currency,
        "licenseCapability": capability,
        "callType": "user_out",
        "calleeNumber": "+3491234****",
        "callerNumber": "+14255550100",
        "destinationContext": "International",
        "destinationName": "España",
        "usageCountryCode": "US",
        "tenantCountryCode": "US",
        "inventoryType": "Subscriber",
        "operator": "Microsoft",
        "callDurationSource": "microsoft",
        "conferenceId": None,
    }


def _odata_json(body: Any) -> str:
    """JSON with every Decimal written as its own decimal text, unquoted."""
    text = json.dumps(body, ensure_ascii=False, default=_mark)
    return _NUMBER.sub(r"\1", text)


def _mark(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"@@{value}@@"
    raise TypeError(f"not JSON: {type(value).__name__}")


def _parse_time(literal: str) -> datetime:
    # .NET writes seven fractional digits; Python keeps six, and the seventh only matters when it
    # is a boundary tick, which truncation keeps on the right side (see GraphPstnCalls).
    return datetime.fromisoformat(literal).astimezone(UTC)


class FakeGraphPstn:
    def __init__(self, *, page_size: int = GRAPH_PAGE_SIZE) -> None:
        self.page_size = page_size
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[Seen] = []
        self.next_link_base: str | None = None
        """Overrides the origin of next links (to test that a client refuses a foreign one)."""
        self._tokens: dict[str, str] = {}
        self._faults: deque[Fault] = deque()

    # --- state ----------------------------------------------------------------------------

    def add_calls(self, tenant_id: str, rows: list[dict[str, Any]]) -> None:
        self.calls.setdefault(tenant_id, []).extend(rows)

    def token_for(self, tenant_id: str) -> str:
        token = self._tokens.get(tenant_id)
        if token is None:
            token = f"pstn-{uuid.uuid4().hex}"
            self._tokens[tenant_id] = token
        return token

    def fail_next(
        self, status: int, *, retry_after: str | None = None, code: str = "", times: int = 1
    ) -> None:
        for _ in range(times):
            self._faults.append(Fault(status, retry_after, code or _code_for(status)))

    # --- server ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(GRAPH_PREFIX + "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        match = FUNCTION.fullmatch(request.path)
        authorization = request.headers.get("Authorization")
        self.requests.append(
            Seen(
                path=request.path,
                query=dict(request.query),
                authorization=authorization,
                from_time=match.group(1) if match else None,
                to_time=match.group(2) if match else None,
            )
        )
        tenant_id = self._tenant_of(authorization)
        if tenant_id is None:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        if self._faults:
            fault = self._faults.popleft()
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _error(fault.status, fault.code, "scripted fault", headers)
        if match is None:
            return _error(400, "BadRequest", "Resource not found for the segment.")
        try:
            start, end = _parse_time(match.group(1)), _parse_time(match.group(2))
        except ValueError:
            return _error(400, "BadRequest", "Invalid DateTimeOffset literal.")
        if end < start or end - start > MAX_RANGE:
            return _error(400, "BadRequest", "The date range exceeds 90 days.")
        selected = [
            row
            for row in self.calls.get(tenant_id, [])
            if start <= _parse_time(row["startDateTime"]) <= end
        ]
        offset = _offset_of(request.query.get("$skiptoken"))
        if offset is None:
            return _error(400, "BadRequest", "Invalid skip token.")
        page = selected[offset : offset + self.page_size]
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata"
            "#Collection(microsoft.graph.callRecords.pstnCallLogRow)",
            "@odata.count": len(page),
            "value": page,
        }
        if offset + self.page_size < len(selected):
            base = self.next_link_base or f"{request.scheme}://{request.host}"
            token = base64.urlsafe_b64encode(f"offset={offset + self.page_size}".encode()).decode()
            body["@odata.nextLink"] = f"{base}{request.path}?$skiptoken={token}"
        return web.Response(text=_odata_json(body), content_type="application/json")

    def _tenant_of(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ")
        return next((t for t, known in self._tokens.items() if known == token), None)


def _offset_of(skip_token: str | None) -> int | None:
    if skip_token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(skip_token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    name, _, value = text.partition("=")
    return int(value) if name == "offset" and value.isdigit() else None


def _code_for(status: int) -> str:
    return {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "UnknownError")


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"code": code, "message": message}}
    return web.json_response(body, status=status, headers=headers)


class FakeTokens:
    """The `TokenProvider` of the tests: the fake's own token for each tenant."""

    def __init__(self, graph: FakeGraphPstn) -> None:
        self._graph = graph
        self.asked: list[str] = []

    async def token(self, tenant_id: str) -> str:
        self.asked.append(tenant_id)
        return self._graph.token_for(tenant_id)
