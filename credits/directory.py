"""The directory port: users, licences and admin roles of a tenant (Microsoft Graph in production).

Adapters: `graph/directory.py` (Microsoft Graph, app-only) and the embedded directory in
Azure Tables (`storage/embedded_directory.py`) that the local stack and the tests use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

# Role template ids (the same in every tenant).
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
BILLING_ADMINISTRATOR = "b0f54661-2d74-4c50-afa3-1ec803f12efe"
TEAMS_ADMINISTRATOR = "69091246-20e8-4a56-aa4d-066075b2a7a8"
ADMIN_ROLES = frozenset({GLOBAL_ADMINISTRATOR, BILLING_ADMINISTRATOR, TEAMS_ADMINISTRATOR})


class DirectoryProblem(StrEnum):
    NO_USAGE_LOCATION = "no_usage_location"
    NO_SEATS = "no_seats"
    USER_NOT_FOUND = "user_not_found"
    INSUFFICIENT_PRIVILEGES = "insufficient_privileges"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    """The directory refused the request for another reason (the error's detail says which);
    retrying the same request will not help."""


class DirectoryError(Exception):
    def __init__(self, problem: DirectoryProblem, detail: str = "") -> None:
        super().__init__(detail or problem.value)
        self.problem = problem


@dataclass(frozen=True)
class Sku:
    """A licence the tenant subscribes to, with the service plans it carries."""

    sku_id: str
    part_number: str
    enabled_units: int
    consumed_units: int
    service_plans: frozenset[str] = field(default_factory=frozenset)
    """Service plan names (e.g. MCOEV, MCOMEETADV, MCOPSTN1)."""

    @property
    def free_units(self) -> int:
        return max(0, self.enabled_units - self.consumed_units)


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    display_name: str
    user_principal_name: str
    usage_location: str
    sku_ids: frozenset[str] = field(default_factory=frozenset)


class Directory(Protocol):
    def list_users(self, tenant_id: str) -> AsyncIterator[DirectoryUser]:
        """Every user of the tenant, page by page."""

    async def get_user(self, tenant_id: str, user_id: str) -> DirectoryUser:
        """Raises DirectoryError(USER_NOT_FOUND)."""

    async def subscribed_skus(self, tenant_id: str) -> list[Sku]: ...

    async def assign_licenses(
        self, tenant_id: str, user_id: str, *, add: list[str], remove: list[str]
    ) -> DirectoryUser:
        """Add and remove licences (SKU ids) in one call; the user as it is afterwards.

        Raises DirectoryError: NO_USAGE_LOCATION, NO_SEATS, USER_NOT_FOUND,
        INSUFFICIENT_PRIVILEGES.
        """

    async def role_template_ids(self, tenant_id: str, user_id: str) -> frozenset[str]:
        """The directory roles the user holds, as role template ids."""
