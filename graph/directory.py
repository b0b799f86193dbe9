"""The directory port (`credits.directory.Directory`) on Microsoft Graph v1.0, app-only.

Users with their licences and usage location, the tenant's subscribed SKUs, licence assignment
and directory role templates, through the Graph client. Graph's errors become `DirectoryError`s
the product can tell apart (`problem_of`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from credits.directory import DirectoryError, DirectoryProblem, DirectoryUser, Sku
from graph.client import GraphClient
from graph.errors import BAD_NEXT_LINK, NOT_JSON, TOO_LARGE, GraphError, TokenError

USER_FIELDS = "id,displayName,userPrincipalName,usageLocation,assignedLicenses"
# An Entra object id. A user id reaches Graph only in this shape: whatever else a card or an
# activity names ("..", a user principal name, another path) is not a user of the tenant.
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# The most /users returns in one page; fewer pages means fewer throttling units spent.
USERS_PAGE_SIZE = 999

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
# What the client says of answers that are not Graph's errors.
_CLIENT_CODES: Mapping[str, DirectoryProblem] = {
    BAD_NEXT_LINK: DirectoryProblem.REJECTED,
    NOT_JSON: DirectoryProblem.UNAVAILABLE,
    TOO_LARGE: DirectoryProblem.UNAVAILABLE,
}
# Entra's OAuth errors that mean the app may not act in the tenant (not consented, wrong secret).
_REFUSED_TOKENS = frozenset(
    {"invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope"}
)


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


def directory_error(error: GraphError) -> DirectoryError:
    """The port's error for what the client (or the token source) raised."""
    if error.transient:
        # Still throttled or down after the retries, or a change whose outcome is unknown.
        problem = DirectoryProblem.THROTTLED if error.throttled else DirectoryProblem.UNAVAILABLE
    elif isinstance(error, TokenError):
        # An unknown tenant or a malformed id: rejected; the app refused there: no privileges.
        refused = error.code in _REFUSED_TOKENS
        problem = DirectoryProblem.INSUFFICIENT_PRIVILEGES if refused else DirectoryProblem.REJECTED
    elif error.code in _CLIENT_CODES:
        problem = _CLIENT_CODES[error.code]
    else:
        problem = problem_of(error.status or 0, error.code, error.message)
    return DirectoryError(problem, str(error))


class GraphDirectory:
    """`credits.directory.Directory` on Microsoft Graph v1.0."""

    def __init__(self, client: GraphClient) -> None:
        self._client = client

    async def list_users(self, tenant_id: str) -> AsyncIterator[DirectoryUser]:
        params = {"$select": USER_FIELDS, "$top": str(USERS_PAGE_SIZE)}
        async for item in self._items(tenant_id, ("users",), params):
            yield _user_from(item)

    async def get_user(self, tenant_id: str, user_id: str) -> DirectoryUser:
        url = self._client.url("users", _object_id(user_id))
        try:
            body = await self._client.get(tenant_id, url, {"$select": USER_FIELDS})
        except GraphError as error:
            raise directory_error(error) from error
        return _user_from(body)

    async def subscribed_skus(self, tenant_id: str) -> list[Sku]:
        return [_sku_from(item) async for item in self._items(tenant_id, ("subscribedSkus",))]

    async def assign_licenses(
        self, tenant_id: str, user_id: str, *, add: list[str], remove: list[str]
    ) -> DirectoryUser:
        # Graph wants both lists present, even when one is empty.
        body = {
            "addLicenses": [{"skuId": sku_id, "disabledPlans": []} for sku_id in add],
            "removeLicenses": list(remove),
        }
        url = self._client.url("users", _object_id(user_id), "assignLicense")
        try:
            answer = await self._client.post(tenant_id, url, body)
        except GraphError as error:
            raise directory_error(error) from error
        if "assignedLicenses" in answer and "usageLocation" in answer:
            return _user_from(answer)
        # assignLicense answers with the user's default properties, which leave out licences
        # and usage location: read the user back to return it as it is now.
        return await self.get_user(tenant_id, user_id)

    async def role_template_ids(self, tenant_id: str, user_id: str) -> frozenset[str]:
        path = ("users", _object_id(user_id), "memberOf", "microsoft.graph.directoryRole")
        items = self._items(tenant_id, path, {"$select": "roleTemplateId"})
        return frozenset(
            [item["roleTemplateId"] async for item in items if item.get("roleTemplateId")]
        )

    async def _items(
        self, tenant_id: str, path: tuple[str, ...], params: dict[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The `value` items of every page of a collection."""
        try:
            async for page in self._client.pages(tenant_id, self._client.url(*path), params):
                for item in page.get("value") or []:
                    yield item
        except GraphError as error:
            raise directory_error(error) from error


def _object_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not _OBJECT_ID.fullmatch(user_id):
        raise DirectoryError(DirectoryProblem.USER_NOT_FOUND, "not an Entra object id")
    return user_id


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
