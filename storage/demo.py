"""The local demo, in one place: what a tenant seen for the first time gets in local mode.

Only wired in when the service runs in unauthenticated local mode (the Agents Playground): the
demo directory (thirty users covering every licence case, the Playground's own mock users among
them, its default user Alex Wilber a Billing Administrator) and a demo account (a saved test card
of the sandbox gateway and two Enterprise Agreement numbers), so a new tenant can buy at once. A
real tenant starts with an empty account and its directory is Microsoft Graph.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from credits.accounts import saved_card
from credits.directory import (
    BILLING_ADMINISTRATOR,
    GLOBAL_ADMINISTRATOR,
    TEAMS_ADMINISTRATOR,
    DirectoryUser,
    Sku,
)
from credits.model import Account
from storage.embedded_directory import EmbeddedDirectory
from storage.sandbox_gateway import SandboxGateway

logger = logging.getLogger(__name__)

# --- the demo directory ------------------------------------------------------------------------

COMMUNICATIONS_CREDITS = "47794cd0-f0e5-45c5-9033-2eb6b5fc84e0"
AUDIO_CONFERENCING = "0c266dff-15dd-4b49-8397-2bb16070ed52"
PHONE_SYSTEM = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
DOMESTIC_CALLING = "0dab259f-bf13-4952-b7f8-7db8f131b28d"
INTERNATIONAL_CALLING = "d3b4fe1f-9992-4930-8acb-ca6ec609365e"
OFFICE_E5 = "c7df2760-2c81-4ef7-b578-5b5392b571df"
MICROSOFT_365_E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"


@dataclass(frozen=True)
class _DemoSku:
    sku_id: str
    part_number: str
    plans: tuple[str, ...]
    free: int | None = None
    """Free seats left after the demo users' licences; None when `enabled` is fixed instead."""
    enabled: int | None = None


DEMO_SKUS = (
    _DemoSku(COMMUNICATIONS_CREDITS, "MCOPSTNC", ("MCOPSTNC",), enabled=25),
    _DemoSku(AUDIO_CONFERENCING, "MCOMEETADV", ("MCOMEETADV",), free=5),
    _DemoSku(PHONE_SYSTEM, "MCOEV", ("MCOEV",), free=3),
    _DemoSku(DOMESTIC_CALLING, "MCOPSTN1", ("MCOPSTN1",), free=2),
    _DemoSku(INTERNATIONAL_CALLING, "MCOPSTN2", ("MCOPSTN2",), free=2),
    # Office 365 E5 carries Phone System and Audio Conferencing as service plans.
    _DemoSku(
        OFFICE_E5,
        "ENTERPRISEPREMIUM",
        (
            "EXCHANGE_S_ENTERPRISE",
            "TEAMS1",
            "MCOSTANDARD",
            "MCOEV",
            "MCOMEETADV",
            "SHAREPOINTENTERPRISE",
            "OFFICESUBSCRIPTION",
            "POWERAPPS_O365_P3",
            "FORMS_PLAN_E5",
        ),
        free=2,
    ),
    # Microsoft 365 E3: Teams, but no Phone System and no Audio Conferencing.
    _DemoSku(
        MICROSOFT_365_E3,
        "SPE_E3",
        (
            "EXCHANGE_S_ENTERPRISE",
            "TEAMS1",
            "MCOSTANDARD",
            "SHAREPOINTENTERPRISE",
            "OFFICESUBSCRIPTION",
            "AAD_PREMIUM",
            "INTUNE_A",
        ),
        free=5,
    ),
)

_E3 = MICROSOFT_365_E3
_AC = AUDIO_CONFERENCING
_PS = PHONE_SYSTEM
_DOM = DOMESTIC_CALLING
_INTL = INTERNATIONAL_CALLING
_CC = COMMUNICATIONS_CREDITS
_E5 = OFFICE_E5

# The Agents Playground's mock users, with the ids it ships (13 hex digits in the last group).
PLAYGROUND_USERS = (
    # id suffix, name, UPN, usage location, licences, roles
    ("0020", "Alex Wilber", "alexw@example.com", "US", (_E3, _AC), (BILLING_ADMINISTRATOR,)),
    ("0021", "Megan Bowen", "meganb@example.com", "US", (_E5, _CC), (GLOBAL_ADMINISTRATOR,)),
    ("0022", "Adele Vance", "adelev@example.com", "US", (_E3, _PS, _DOM), (TEAMS_ADMINISTRATOR,)),
    ("0023", "Isaiah Langer", "isaiahl@example.com", "US", (_AC,), ()),
    ("0024", "Patti Fernandez", "pattif@example.com", "US", (_E3,), ()),
    ("0025", "Lynne Robbins", "lynner@example.com", "US", (_E3, _PS), ()),
)
PLAYGROUND_ID_PREFIX = "00000000-0000-0000-0000-000000000"

# Everyone else: name, UPN, usage location ("" for none), licences.
OTHER_USERS = (
    ("王芳", "wang.fang@example.com", "CN", (_E5,)),
    ("Li Wei", "li.wei@example.com", "SG", (_E3, _AC)),
    ("Zhang Min", "zhang.min@example.com", "HK", (_E3, _PS, _INTL)),
    ("Chen Jing", "chen.jing@example.com", "TW", (_E5, _CC)),
    ("Dmitry Ivanov", "dmitry.ivanov@example.com", "DE", (_E3, _PS, _DOM)),
    ("Ольга Смирнова", "olga.smirnova@example.com", "FI", (_AC, _CC)),
    ("Sergei Petrov", "sergei.petrov@example.com", "CY", (_E3, _PS)),
    ("Anastasia Kuznetsova", "anastasia.kuznetsova@example.com", "EE", (_E3,)),
    ("João Silva", "joao.silva@example.com", "PT", (_E3, _PS, _DOM, _CC)),
    ("Ana Costa", "ana.costa@example.com", "BR", (_E3, _AC)),
    ("Pedro Almeida", "pedro.almeida@example.com", "BR", (_E3, _PS, _INTL)),
    ("Beatriz Santos", "beatriz.santos@example.com", "PT", ()),
    ("María García", "maria.garcia@example.com", "ES", (_E5,)),
    ("Carlos Rodríguez", "carlos.rodriguez@example.com", "MX", (_E3, _AC)),
    ("Lucía Martínez", "lucia.martinez@example.com", "AR", (_E3,)),
    ("Javier López", "javier.lopez@example.com", "CO", (_E3, _PS)),
    ("Camille Dubois", "camille.dubois@example.com", "FR", (_E5,)),
    ("Julien Moreau", "julien.moreau@example.com", "FR", (_E3, _PS, _DOM)),
    # No usage location: Graph (and this directory) refuses to license them.
    ("Élodie Lefèvre", "elodie.lefevre@example.com", "", (_E3, _AC)),
    ("Antoine Girard", "antoine.girard@example.com", "BE", (_AC,)),
    ("Priya Sharma", "priya.sharma@example.com", "IN", (_E3, _PS, _INTL)),
    ("Kenji Tanaka", "kenji.tanaka@example.com", "JP", (_E5, _CC)),
    ("Aisha Bello", "aisha.bello@example.com", "", ()),
    ("Lars Johansson", "lars.johansson@example.com", "SE", (_E3, _AC)),
)
# Ids of the other users derive from their UPN, so every seeding gives the same ones.
_DEMO_NAMESPACE = uuid.UUID("6d1c8a52-3f0e-4c1b-9a7e-2b0f3c5d9e11")


def demo_users() -> list[tuple[DirectoryUser, tuple[str, ...]]]:
    """The demo tenant's users with their roles."""
    users = [
        (DirectoryUser(PLAYGROUND_ID_PREFIX + suffix, name, upn, where, frozenset(skus)), roles)
        for suffix, name, upn, where, skus, roles in PLAYGROUND_USERS
    ]
    users += [
        (
            DirectoryUser(str(uuid.uuid5(_DEMO_NAMESPACE, upn)), name, upn, where, frozenset(skus)),
            (),
        )
        for name, upn, where, skus in OTHER_USERS
    ]
    return users


def demo_skus() -> list[Sku]:
    """The demo tenant's SKUs, their consumed units those of the demo users."""
    users = [user for user, _ in demo_users()]
    skus = []
    for demo in DEMO_SKUS:
        consumed = sum(1 for user in users if demo.sku_id in user.sku_ids)
        enabled = demo.enabled if demo.enabled is not None else consumed + (demo.free or 0)
        skus.append(Sku(demo.sku_id, demo.part_number, enabled, consumed, frozenset(demo.plans)))
    return skus


async def seed_demo_tenant(directory: EmbeddedDirectory, tenant_id: str) -> int:
    """Gives the tenant the demo users and SKUs, unless it has them; the number of rows added.

    Idempotent: rows that exist are left as they are (a demo that assigned licences keeps
    them). A fresh tenant is seeded in one transaction, so seats always match the users.
    """
    created = await directory.fill(tenant_id, demo_users(), demo_skus())
    if created:
        logger.info("seeded the demo directory of tenant %s (%d rows)", tenant_id, created)
    return created


class DemoSeededDirectory:
    """The embedded directory, seeding each tenant with the demo users the first time it is
    asked about it: in local mode any tenant id the Playground sends has a Billing admin."""

    def __init__(self, inner: EmbeddedDirectory) -> None:
        self._inner = inner
        self._seeded: set[str] = set()

    async def _seed(self, tenant_id: str) -> None:
        if tenant_id not in self._seeded:
            await seed_demo_tenant(self._inner, tenant_id)
            self._seeded.add(tenant_id)

    async def list_users(self, tenant_id: str) -> AsyncIterator[DirectoryUser]:
        await self._seed(tenant_id)
        async for user in self._inner.list_users(tenant_id):
            yield user

    async def get_user(self, tenant_id: str, user_id: str) -> DirectoryUser:
        await self._seed(tenant_id)
        return await self._inner.get_user(tenant_id, user_id)

    async def subscribed_skus(self, tenant_id: str) -> list[Sku]:
        await self._seed(tenant_id)
        return await self._inner.subscribed_skus(tenant_id)

    async def assign_licenses(
        self, tenant_id: str, user_id: str, *, add: list[str], remove: list[str]
    ) -> DirectoryUser:
        await self._seed(tenant_id)
        return await self._inner.assign_licenses(tenant_id, user_id, add=add, remove=remove)

    async def role_template_ids(self, tenant_id: str, user_id: str) -> frozenset[str]:
        await self._seed(tenant_id)
        return await self._inner.role_template_ids(tenant_id, user_id)


# --- the demo account --------------------------------------------------------------------------

DEMO_CARD_NUMBER = "4242424242424242"  # the sandbox's always-succeeds test card
DEMO_AGREEMENTS = ("EA-4471-2210", "EA-8802-3157")


def demo_seeder(gateway: SandboxGateway | None):
    """An `AccountSeeder`: a new account gets two agreement numbers and, with the sandbox, a
    saved test card.

    The card is saved in the sandbox directly, as if an admin had typed it on the sandbox's
    hosted page: the demo never types a card number anywhere.
    """

    async def seed(account: Account) -> Account:
        account = replace(account, agreements=DEMO_AGREEMENTS)
        if gateway is None:
            return account
        customer = await gateway.create_customer(account.tenant_id)
        card = saved_card(await gateway.seed_card(account.tenant_id, DEMO_CARD_NUMBER))
        return replace(account, cards=(card,), default_method_id=card.id, payment_customer=customer)

    return seed
