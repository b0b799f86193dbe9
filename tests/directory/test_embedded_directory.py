"""The embedded directory on Azurite: the demo tenant, seats, and licence changes under races.

Everything runs against a real Table endpoint; the seeded demo tenant is what the local stack
shows in the Agents Playground.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from credits.directory import (
    ADMIN_ROLES,
    BILLING_ADMINISTRATOR,
    GLOBAL_ADMINISTRATOR,
    TEAMS_ADMINISTRATOR,
    DirectoryError,
    DirectoryProblem,
    DirectoryUser,
    Sku,
)
from credits.licences import Missing, SkuCatalogue, Standing, assess
from storage.demo import (
    AUDIO_CONFERENCING,
    COMMUNICATIONS_CREDITS,
    DOMESTIC_CALLING,
    INTERNATIONAL_CALLING,
    MICROSOFT_365_E3,
    OFFICE_E5,
    PHONE_SYSTEM,
    seed_demo_tenant,
)
from storage.embedded_directory import EmbeddedDirectory
from storage.keys import escape_key

ALEX = "00000000-0000-0000-0000-0000000000020"
MEGAN = "00000000-0000-0000-0000-0000000000021"
ADELE = "00000000-0000-0000-0000-0000000000022"
ISAIAH = "00000000-0000-0000-0000-0000000000023"
PATTI = "00000000-0000-0000-0000-0000000000024"
LYNNE = "00000000-0000-0000-0000-0000000000025"


@pytest.fixture
def tenant() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def directory(table_store) -> EmbeddedDirectory:
    return EmbeddedDirectory.on(table_store)


@pytest.fixture
async def demo(directory, tenant) -> EmbeddedDirectory:
    await seed_demo_tenant(directory, tenant)
    return directory


async def _users(directory, tenant) -> dict[str, DirectoryUser]:
    return {user.id: user async for user in directory.list_users(tenant)}


async def _skus(directory, tenant) -> dict[str, Sku]:
    return {sku.sku_id: sku for sku in await directory.subscribed_skus(tenant)}


async def _rows(directory, tenant) -> dict[str, tuple[str, dict]]:
    """Every row of the tenant with its ETag: what 'nothing changed' is checked against."""
    query = directory.table.query_entities(
        "PartitionKey eq @pk", parameters={"pk": escape_key(tenant)}
    )
    return {e["RowKey"]: (e.metadata["etag"], dict(e)) async for e in query}


# --- the demo tenant ----------------------------------------------------------------------------


async def test_the_demo_tenant_covers_every_case(demo, tenant):
    users = await _users(demo, tenant)
    skus = await _skus(demo, tenant)
    catalogue = SkuCatalogue(skus.values())
    assessed = {user_id: assess(user, catalogue) for user_id, user in users.items()}

    assert 28 <= len(users) <= 32
    # The Playground's users, with the ids it ships and the roles the access tests rely on.
    assert users[ALEX].display_name == "Alex Wilber"
    assert users[ALEX].user_principal_name == "alexw@example.com"
    assert await demo.role_template_ids(tenant, ALEX) == {BILLING_ADMINISTRATOR}
    assert await demo.role_template_ids(tenant, MEGAN) == {GLOBAL_ADMINISTRATOR}
    assert await demo.role_template_ids(tenant, ADELE) == {TEAMS_ADMINISTRATOR}
    for user_id in (ISAIAH, PATTI, LYNNE):
        assert not await demo.role_template_ids(tenant, user_id) & ADMIN_ROLES
    assert [u.display_name for u in users.values() if "megan" in u.display_name.casefold()] == [
        "Megan Bowen"
    ]

    def holding(*sku_ids: str) -> list[DirectoryUser]:
        return [u for u in users.values() if set(sku_ids) <= u.sku_ids]

    # Audio Conferencing alone.
    assert users[ISAIAH].sku_ids == {AUDIO_CONFERENCING}
    # Phone System with each Calling Plan, and without one.
    assert holding(PHONE_SYSTEM, DOMESTIC_CALLING)
    assert holding(PHONE_SYSTEM, INTERNATIONAL_CALLING)
    assert assessed[LYNNE].missing is Missing.CALLING_PLAN
    # E5 carries Phone System and Audio Conferencing as service plans: eligible, not licensed.
    assert {"MCOEV", "MCOMEETADV"} <= skus[OFFICE_E5].service_plans
    assert any(a.is_e5 and a.standing is Standing.ELIGIBLE for a in assessed.values())
    # Microsoft 365 E3 alone: no calling licence at all.
    assert "MCOEV" not in skus[MICROSOFT_365_E3].service_plans
    assert assessed[PATTI].missing is Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM
    # Already holding Communications Credits, with E5 and without.
    licensed = [a for a in assessed.values() if a.standing is Standing.LICENSED]
    assert any(a.is_e5 for a in licensed) and any(not a.is_e5 for a in licensed)
    # No usage location.
    assert any(a.standing is Standing.NO_USAGE_LOCATION for a in assessed.values())
    # Every standing the licences card filters on is present.
    assert {a.standing for a in assessed.values()} == set(Standing)

    # International names, with usage locations.
    names = " ".join(u.display_name for u in users.values())
    assert "王芳" in names and "Ольга" in names and "João" in names and "María" in names
    assert "Élodie" in names

    # Seats: consumed units are exactly the demo users' licences, with a few free of each.
    for sku in skus.values():
        assert sku.consumed_units == len(holding(sku.sku_id)), sku.part_number
    credits = skus[COMMUNICATIONS_CREDITS]
    assert (credits.part_number, credits.enabled_units) == ("MCOPSTNC", 25)
    assert 0 < credits.consumed_units < 25
    assert skus[AUDIO_CONFERENCING].free_units == 5
    assert skus[PHONE_SYSTEM].free_units == 3
    assert skus[DOMESTIC_CALLING].free_units == 2
    assert skus[INTERNATIONAL_CALLING].free_units == 2


async def test_seeding_again_changes_nothing(directory, tenant):
    first = await seed_demo_tenant(directory, tenant)
    before = await _rows(directory, tenant)

    second = await seed_demo_tenant(directory, tenant)

    assert first == len(before) and second == 0
    assert await _rows(directory, tenant) == before


async def test_seeding_keeps_what_the_demo_changed(demo, tenant):
    await demo.assign_licenses(tenant, ISAIAH, add=[COMMUNICATIONS_CREDITS], remove=[])
    after_assign = await _rows(demo, tenant)

    assert await seed_demo_tenant(demo, tenant) == 0

    assert await _rows(demo, tenant) == after_assign


async def test_concurrent_seedings_seed_once(directory, tenant):
    counts = await asyncio.gather(*(seed_demo_tenant(directory, tenant) for _ in range(4)))

    rows = await _rows(directory, tenant)
    assert sum(counts) == len(rows)
    skus = await _skus(directory, tenant)
    users = await _users(directory, tenant)
    for sku in skus.values():
        assert sku.consumed_units == sum(sku.sku_id in u.sku_ids for u in users.values())


# --- licence changes ----------------------------------------------------------------------------


async def test_assign_and_remove_count_seats(demo, tenant):
    before = (await _skus(demo, tenant))[COMMUNICATIONS_CREDITS]

    user = await demo.assign_licenses(tenant, ISAIAH, add=[COMMUNICATIONS_CREDITS], remove=[])

    assert user.sku_ids == {AUDIO_CONFERENCING, COMMUNICATIONS_CREDITS}
    assert (await demo.get_user(tenant, ISAIAH)).sku_ids == user.sku_ids
    credits = (await _skus(demo, tenant))[COMMUNICATIONS_CREDITS]
    assert credits.consumed_units == before.consumed_units + 1

    user = await demo.assign_licenses(tenant, ISAIAH, add=[], remove=[COMMUNICATIONS_CREDITS])

    assert user.sku_ids == {AUDIO_CONFERENCING}
    assert (await demo.get_user(tenant, ISAIAH)).sku_ids == {AUDIO_CONFERENCING}
    assert (await _skus(demo, tenant))[COMMUNICATIONS_CREDITS] == before


async def test_adding_and_removing_in_one_change(demo, tenant):
    # Lynne has Phone System and no Calling Plan: she gets one with the credits, and loses E3.
    skus = await _skus(demo, tenant)

    user = await demo.assign_licenses(
        tenant,
        LYNNE,
        add=[DOMESTIC_CALLING.upper(), COMMUNICATIONS_CREDITS],
        remove=[MICROSOFT_365_E3],
    )

    assert user.sku_ids == {PHONE_SYSTEM, DOMESTIC_CALLING, COMMUNICATIONS_CREDITS}
    after = await _skus(demo, tenant)
    assert after[DOMESTIC_CALLING].consumed_units == skus[DOMESTIC_CALLING].consumed_units + 1
    assert after[MICROSOFT_365_E3].consumed_units == skus[MICROSOFT_365_E3].consumed_units - 1


async def test_assigning_what_is_held_changes_nothing(demo, tenant):
    before = await _rows(demo, tenant)

    user = await demo.assign_licenses(tenant, MEGAN, add=[COMMUNICATIONS_CREDITS], remove=[])
    again = await demo.assign_licenses(tenant, MEGAN, add=[], remove=[PHONE_SYSTEM])

    assert COMMUNICATIONS_CREDITS in user.sku_ids and again == user
    assert await _rows(demo, tenant) == before


async def test_no_free_seat_is_refused_and_nothing_changes(demo, tenant):
    # Two Domestic Calling Plan seats are free: two users get one, the third does not.
    takers = [u async for u in demo.list_users(tenant) if PHONE_SYSTEM in u.sku_ids]
    takers = [u for u in takers if not u.sku_ids & {DOMESTIC_CALLING, INTERNATIONAL_CALLING}]
    assert len(takers) >= 3
    for user in takers[:2]:
        await demo.assign_licenses(tenant, user.id, add=[DOMESTIC_CALLING], remove=[])
    before = await _rows(demo, tenant)

    with pytest.raises(DirectoryError) as refused:
        await demo.assign_licenses(
            tenant, takers[2].id, add=[COMMUNICATIONS_CREDITS, DOMESTIC_CALLING], remove=[]
        )

    assert refused.value.problem is DirectoryProblem.NO_SEATS
    # Not even the credits, which had seats: the change is all or nothing.
    assert await _rows(demo, tenant) == before
    sku = (await _skus(demo, tenant))[DOMESTIC_CALLING]
    assert sku.consumed_units == sku.enabled_units


async def test_a_user_without_usage_location_cannot_be_licensed(demo, tenant):
    nowhere = [u async for u in demo.list_users(tenant) if not u.usage_location]
    assert nowhere
    before = await _rows(demo, tenant)

    with pytest.raises(DirectoryError) as refused:
        await demo.assign_licenses(tenant, nowhere[0].id, add=[COMMUNICATIONS_CREDITS], remove=[])

    assert refused.value.problem is DirectoryProblem.NO_USAGE_LOCATION
    assert await _rows(demo, tenant) == before


async def test_an_unknown_user_is_not_found(demo, tenant):
    stranger = str(uuid.uuid4())
    for call in (
        demo.get_user(tenant, stranger),
        demo.role_template_ids(tenant, stranger),
        demo.assign_licenses(tenant, stranger, add=[COMMUNICATIONS_CREDITS], remove=[]),
    ):
        with pytest.raises(DirectoryError) as missing:
            await call
        assert missing.value.problem is DirectoryProblem.USER_NOT_FOUND


async def test_a_sku_the_tenant_does_not_have_is_rejected(demo, tenant):
    with pytest.raises(DirectoryError) as refused:
        await demo.assign_licenses(tenant, ISAIAH, add=[str(uuid.uuid4())], remove=[])
    assert refused.value.problem is DirectoryProblem.REJECTED


async def test_concurrent_assignments_never_exceed_the_seats(directory, tenant):
    # Ten admins each give the last three seats to a different user, at the same moment.
    await directory.add_sku(
        tenant, Sku(COMMUNICATIONS_CREDITS, "MCOPSTNC", 5, 2, frozenset({"MCOPSTNC"}))
    )
    ids = [str(uuid.uuid4()) for _ in range(10)]
    for n, user_id in enumerate(ids):
        await directory.add_user(
            tenant,
            DirectoryUser(user_id, f"User {n}", f"user{n}@example.com", "FR", frozenset()),
        )

    async def assign(user_id: str) -> DirectoryProblem | None:
        try:
            await directory.assign_licenses(
                tenant, user_id, add=[COMMUNICATIONS_CREDITS], remove=[]
            )
        except DirectoryError as error:
            return error.problem
        return None

    outcomes = await asyncio.gather(*(assign(user_id) for user_id in ids))

    assert outcomes.count(None) == 3
    assert outcomes.count(DirectoryProblem.NO_SEATS) == 7
    sku = (await _skus(directory, tenant))[COMMUNICATIONS_CREDITS]
    assert (sku.consumed_units, sku.enabled_units) == (5, 5)
    holders = [u async for u in directory.list_users(tenant) if COMMUNICATIONS_CREDITS in u.sku_ids]
    assert sorted(u.id for u in holders) == sorted(
        user_id for user_id, outcome in zip(ids, outcomes, strict=True) if outcome is None
    )


async def test_tenants_do_not_see_each_other(directory):
    seeded, other = str(uuid.uuid4()), str(uuid.uuid4())
    await seed_demo_tenant(directory, seeded)
    await directory.add_sku(other, Sku(COMMUNICATIONS_CREDITS, "MCOPSTNC", 1, 0))
    await directory.add_user(
        other, DirectoryUser("only-here", "Only Here", "only@other.example", "DE", frozenset())
    )

    assert [u.id async for u in directory.list_users(other)] == ["only-here"]
    with pytest.raises(DirectoryError) as missing:
        await directory.get_user(other, ALEX)
    assert missing.value.problem is DirectoryProblem.USER_NOT_FOUND
    with pytest.raises(DirectoryError):
        await directory.role_template_ids(other, ALEX)

    await directory.assign_licenses(other, "only-here", add=[COMMUNICATIONS_CREDITS], remove=[])

    assert (await _skus(directory, other))[COMMUNICATIONS_CREDITS].free_units == 0
    seeded_credits = (await _skus(directory, seeded))[COMMUNICATIONS_CREDITS]
    assert seeded_credits.free_units > 0
    assert "only-here" not in await _users(directory, seeded)
