"""Assigning and removing the Communications Credits licence, user by user, with a result each.

Seats are checked by the directory itself (Graph refuses an assignment when none are left), so
a batch that runs out half-way reports exactly who got a seat and who did not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from credits.directory import Directory, DirectoryError, DirectoryProblem, DirectoryUser
from credits.licences import (
    AUDIO_CONFERENCING_PART,
    DOMESTIC_PLAN_PART,
    INTERNATIONAL_PLAN_PART,
    PHONE_SYSTEM_PART,
    Missing,
    SkuCatalogue,
    Standing,
    UserLicences,
    assess,
)

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    ASSIGNED = "assigned"
    ASSIGNED_WITH_PREREQUISITE = "assigned_with_prerequisite"
    ALREADY_HAD = "already_had"
    REMOVED = "removed"
    NOT_HELD = "not_held"
    MISSING_PREREQUISITE = "missing_prerequisite"
    NO_USAGE_LOCATION = "no_usage_location"
    NO_SEATS = "no_seats"
    NOT_FOUND = "not_found"
    FAILED = "failed"


class Prerequisite(StrEnum):
    """What the admin may add, in the same confirmation, for users who lack a prerequisite."""

    NONE = "none"
    AUDIO_CONFERENCING = "audio_conferencing"
    PHONE_SYSTEM_DOMESTIC = "phone_system_domestic"
    PHONE_SYSTEM_INTERNATIONAL = "phone_system_international"


PREREQUISITE_PARTS: dict[Prerequisite, tuple[str, ...]] = {
    Prerequisite.NONE: (),
    Prerequisite.AUDIO_CONFERENCING: (AUDIO_CONFERENCING_PART,),
    Prerequisite.PHONE_SYSTEM_DOMESTIC: (PHONE_SYSTEM_PART, DOMESTIC_PLAN_PART),
    Prerequisite.PHONE_SYSTEM_INTERNATIONAL: (PHONE_SYSTEM_PART, INTERNATIONAL_PLAN_PART),
}


@dataclass(frozen=True)
class UserResult:
    user_id: str
    display_name: str
    outcome: Outcome
    missing: Missing = Missing.NOTHING
    is_e5: bool = False
    needs_phone_number: bool = False
    """A Calling Plan was just assigned: a phone number is still to be given in the admin centre."""


@dataclass(frozen=True)
class Overview:
    catalogue: SkuCatalogue
    users: list[UserLicences]

    def count(self, standing: Standing) -> int:
        return sum(1 for u in self.users if u.standing == standing)

    @property
    def free_seats(self) -> int:
        sku = self.catalogue.communications_credits()
        return sku.free_units if sku else 0


AuditWriter = Callable[[str, str, str, list[UserResult]], Awaitable[None]]


class LicenceService:
    def __init__(self, directory: Directory, audit: AuditWriter) -> None:
        self._directory = directory
        self._audit = audit

    async def overview(self, tenant_id: str) -> Overview:
        catalogue = SkuCatalogue(await self._directory.subscribed_skus(tenant_id))
        users = [assess(user, catalogue) async for user in self._directory.list_users(tenant_id)]
        users.sort(key=lambda u: u.user.display_name.casefold())
        return Overview(catalogue, users)

    async def licensed_count(self, tenant_id: str) -> int:
        """Users holding the Communications Credits licence (for Microsoft's sizing guidance)."""
        overview = await self.overview(tenant_id)
        return overview.count(Standing.LICENSED)

    async def users_of_tenant(self, tenant_id: str, user_ids: list[str]) -> list[DirectoryUser]:
        """The users behind ids from a card, each checked to belong to this tenant."""
        found = []
        for user_id in dict.fromkeys(user_ids):
            try:
                found.append(await self._directory.get_user(tenant_id, user_id))
            except DirectoryError as error:
                if error.problem is not DirectoryProblem.USER_NOT_FOUND:
                    raise
                logger.warning("card named user %s who is not in tenant %s", user_id, tenant_id)
        return found

    async def assign(
        self,
        tenant_id: str,
        user_ids: list[str],
        *,
        actor: str,
        prerequisite: Prerequisite = Prerequisite.NONE,
    ) -> list[UserResult]:
        catalogue = SkuCatalogue(await self._directory.subscribed_skus(tenant_id))
        credits_sku = catalogue.communications_credits()
        results = []
        for user in await self.users_of_tenant(tenant_id, user_ids):
            results.append(
                await self._assign_one(tenant_id, user, catalogue, credits_sku, prerequisite)
            )
        missing = set(user_ids) - {r.user_id for r in results}
        results += [UserResult(uid, uid, Outcome.NOT_FOUND) for uid in sorted(missing)]
        await self._audit(tenant_id, actor, "assign", results)
        return results

    async def _assign_one(
        self, tenant_id, user, catalogue, credits_sku, prerequisite
    ) -> UserResult:
        standing = assess(user, catalogue)
        base = {"user_id": user.id, "display_name": user.display_name, "is_e5": standing.is_e5}
        if credits_sku is None:
            return UserResult(**base, outcome=Outcome.NO_SEATS)
        if standing.has_credits:
            return UserResult(**base, outcome=Outcome.ALREADY_HAD)
        if not user.usage_location:
            return UserResult(**base, outcome=Outcome.NO_USAGE_LOCATION)
        add = [credits_sku.sku_id]
        fixing = False
        if standing.missing is not Missing.NOTHING:
            extra = _prerequisite_skus(catalogue, prerequisite, standing.missing)
            if extra is None:
                return UserResult(
                    **base, outcome=Outcome.MISSING_PREREQUISITE, missing=standing.missing
                )
            add = extra + add
            fixing = True
        try:
            await self._directory.assign_licenses(tenant_id, user.id, add=add, remove=[])
        except DirectoryError as error:
            return UserResult(**base, outcome=_outcome_of(error), missing=standing.missing)
        if fixing:
            return UserResult(
                **base,
                outcome=Outcome.ASSIGNED_WITH_PREREQUISITE,
                needs_phone_number=prerequisite
                in (Prerequisite.PHONE_SYSTEM_DOMESTIC, Prerequisite.PHONE_SYSTEM_INTERNATIONAL),
            )
        return UserResult(**base, outcome=Outcome.ASSIGNED)

    async def remove(self, tenant_id: str, user_ids: list[str], *, actor: str) -> list[UserResult]:
        catalogue = SkuCatalogue(await self._directory.subscribed_skus(tenant_id))
        credits_sku = catalogue.communications_credits()
        results = []
        for user in await self.users_of_tenant(tenant_id, user_ids):
            base = {"user_id": user.id, "display_name": user.display_name}
            held = credits_sku is not None and credits_sku.sku_id.lower() in {
                s.lower() for s in user.sku_ids
            }
            if not held:
                results.append(UserResult(**base, outcome=Outcome.NOT_HELD))
                continue
            try:
                await self._directory.assign_licenses(
                    tenant_id, user.id, add=[], remove=[credits_sku.sku_id]
                )
                results.append(UserResult(**base, outcome=Outcome.REMOVED))
            except DirectoryError as error:
                results.append(UserResult(**base, outcome=_outcome_of(error)))
        missing = set(user_ids) - {r.user_id for r in results}
        results += [UserResult(uid, uid, Outcome.NOT_FOUND) for uid in sorted(missing)]
        await self._audit(tenant_id, actor, "remove", results)
        return results


def _prerequisite_skus(
    catalogue: SkuCatalogue, prerequisite: Prerequisite, missing: Missing
) -> list[str] | None:
    """SKU ids that fix `missing` with the admin's choice; None when the choice does not fix it."""
    parts = PREREQUISITE_PARTS[prerequisite]
    if not parts:
        return None
    if missing is Missing.CALLING_PLAN:
        # The user has Phone System already: only the Calling Plan is added.
        parts = tuple(p for p in parts if p != PHONE_SYSTEM_PART)
        if not parts:
            return None
    skus = [catalogue.by_part(part) for part in parts]
    if any(sku is None for sku in skus):
        return None
    return [sku.sku_id for sku in skus]


def _outcome_of(error: DirectoryError) -> Outcome:
    return {
        DirectoryProblem.NO_SEATS: Outcome.NO_SEATS,
        DirectoryProblem.NO_USAGE_LOCATION: Outcome.NO_USAGE_LOCATION,
        DirectoryProblem.USER_NOT_FOUND: Outcome.NOT_FOUND,
    }.get(error.problem, Outcome.FAILED)
