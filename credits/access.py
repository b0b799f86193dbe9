"""Who may act for a tenant: its Global, Billing and Teams administrators, nobody else.

Roles come from the directory and are cached briefly per instance, so a turn normally costs no
directory call while a revoked admin loses access within the cache lifetime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from credits.directory import ADMIN_ROLES, Directory, DirectoryError, DirectoryProblem

logger = logging.getLogger(__name__)

# Bounds the cache of a long-running instance serving many tenants.
MAX_CACHED = 10_000


class AdminCheck:
    def __init__(
        self, directory: Directory, *, ttl: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self._directory = directory
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[bool, datetime]] = {}

    async def is_admin(self, tenant_id: str, user_object_id: str) -> bool:
        """True for the tenant's admins; raises DirectoryError when the directory is down."""
        if not tenant_id or not user_object_id:
            return False
        key = (tenant_id, user_object_id)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            roles = await self._directory.role_template_ids(tenant_id, user_object_id)
        except DirectoryError as error:
            if error.problem is not DirectoryProblem.USER_NOT_FOUND:
                raise
            # Someone the tenant's directory does not know: never an admin of it.
            logger.warning(
                "user %s is not in the directory of tenant %s", user_object_id, tenant_id
            )
            roles = frozenset()
        allowed = bool(roles & ADMIN_ROLES)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (allowed, now + self._ttl)
        return allowed
