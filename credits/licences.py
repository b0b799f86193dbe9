"""Licence rules for Communications Credits, decided from service plans, never SKU names alone.

A user may use Communications Credits with Audio Conferencing, or with Phone System plus a
Calling Plan. Bundles such as Office 365 E5 carry Phone System and Audio Conferencing as service
plans, so the decision reads the service plans of every licence the user holds. The SKUs
themselves are resolved at run time from the tenant's subscribed SKUs, by part number or id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from credits.directory import DirectoryUser, Sku

COMMUNICATIONS_CREDITS_SKU_ID = "47794cd0-f0e5-45c5-9033-2eb6b5fc84e0"
# Microsoft's own pages spell the part number both ways.
COMMUNICATIONS_CREDITS_PARTS = frozenset({"MCOPSTNC", "MCOPSTNPP"})
COMMUNICATIONS_CREDITS_PLANS = frozenset({"MCOPSTNPP", "MCOPSTNC"})

AUDIO_CONFERENCING_PLANS = frozenset({"MCOMEETADV"})
PHONE_SYSTEM_PLANS = frozenset({"MCOEV"})
CALLING_PLAN_PLANS = frozenset({"MCOPSTN1", "MCOPSTN2", "MCOPSTN5", "MCOPSTN6"})
# Standalone SKUs an admin can add to fix a missing prerequisite, by part number.
AUDIO_CONFERENCING_PART = "MCOMEETADV"
PHONE_SYSTEM_PART = "MCOEV"
DOMESTIC_PLAN_PART = "MCOPSTN1"
INTERNATIONAL_PLAN_PART = "MCOPSTN2"
# Bundles for which Microsoft still recommends assigning the Communications Credits licence.
E5_PARTS = frozenset({"ENTERPRISEPREMIUM", "ENTERPRISEPREMIUM_NOPSTNCONF", "SPE_E5"})


class Standing(StrEnum):
    LICENSED = "licensed"
    """Holds the Communications Credits licence."""
    ELIGIBLE = "eligible"
    """Has the prerequisites, not the licence."""
    MISSING_PREREQUISITE = "missing_prerequisite"
    NO_USAGE_LOCATION = "no_usage_location"
    """Graph refuses any licence change for a user without a usage location."""


class Missing(StrEnum):
    NOTHING = "nothing"
    CALLING_PLAN = "calling_plan"
    """Has Phone System, needs a Domestic (or Domestic and International) Calling Plan."""
    AUDIO_CONFERENCING_OR_PHONE_SYSTEM = "audio_conferencing_or_phone_system"


@dataclass(frozen=True)
class UserLicences:
    user: DirectoryUser
    standing: Standing
    missing: Missing
    has_credits: bool
    is_e5: bool


class SkuCatalogue:
    """The tenant's subscribed SKUs, looked up by id or part number."""

    def __init__(self, skus: Iterable[Sku]) -> None:
        self._by_id = {sku.sku_id.lower(): sku for sku in skus}

    def plans_of(self, user: DirectoryUser) -> frozenset[str]:
        plans: set[str] = set()
        for sku_id in user.sku_ids:
            sku = self._by_id.get(sku_id.lower())
            if sku is not None:
                plans |= sku.service_plans
        return frozenset(plans)

    def parts_of(self, user: DirectoryUser) -> frozenset[str]:
        return frozenset(
            self._by_id[s.lower()].part_number for s in user.sku_ids if s.lower() in self._by_id
        )

    def by_part(self, *parts: str) -> Sku | None:
        wanted = {p.upper() for p in parts}
        return next((s for s in self._by_id.values() if s.part_number.upper() in wanted), None)

    def communications_credits(self) -> Sku | None:
        return self._by_id.get(COMMUNICATIONS_CREDITS_SKU_ID) or self.by_part(
            *COMMUNICATIONS_CREDITS_PARTS
        )


def assess(user: DirectoryUser, catalogue: SkuCatalogue) -> UserLicences:
    plans = catalogue.plans_of(user)
    parts = catalogue.parts_of(user)
    credits_sku = catalogue.communications_credits()
    has_credits = bool(plans & COMMUNICATIONS_CREDITS_PLANS) or (
        credits_sku is not None and credits_sku.sku_id.lower() in {s.lower() for s in user.sku_ids}
    )
    missing = missing_prerequisite(plans)
    if has_credits:
        standing = Standing.LICENSED
    elif not user.usage_location:
        standing = Standing.NO_USAGE_LOCATION
    elif missing is Missing.NOTHING:
        standing = Standing.ELIGIBLE
    else:
        standing = Standing.MISSING_PREREQUISITE
    return UserLicences(user, standing, missing, has_credits, bool(parts & E5_PARTS))


def missing_prerequisite(plans: frozenset[str]) -> Missing:
    if plans & AUDIO_CONFERENCING_PLANS:
        return Missing.NOTHING
    if plans & PHONE_SYSTEM_PLANS:
        return Missing.NOTHING if plans & CALLING_PLAN_PLANS else Missing.CALLING_PLAN
    return Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM
