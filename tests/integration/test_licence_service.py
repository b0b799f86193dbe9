"""Licence batches on the embedded directory (Azurite): seats running out mid-way, prerequisites,
removal, and the audit log of every change."""

from __future__ import annotations

from azure.data.tables import UpdateMode

from credits.licence_service import LicenceService, Outcome, Prerequisite
from credits.licences import COMMUNICATIONS_CREDITS_SKU_ID, Standing
from storage.audit import AuditLog
from storage.demo import seed_demo_tenant
from storage.embedded_directory import EmbeddedDirectory
from storage.keys import escape_key

TENANT = "licence-tenant"


async def _service(table_store):
    directory = EmbeddedDirectory.on(table_store)
    await seed_demo_tenant(directory, TENANT)
    audit = AuditLog(table_store.table(table_store.names.audit))
    return directory, audit, LicenceService(directory, audit.write_licence_change)


async def _leave_free_seats(table_store, free: int) -> None:
    table = table_store.table(table_store.names.directory)
    key = "sku-" + escape_key(COMMUNICATIONS_CREDITS_SKU_ID)
    entity = await table.get_entity(escape_key(TENANT), key)
    entity["Enabled"] = int(entity["Consumed"]) + free
    await table.update_entity(entity, mode=UpdateMode.MERGE)


async def test_seats_running_out_mid_way_give_a_result_per_user(table_store):
    _, audit, service = await _service(table_store)
    overview = await service.overview(TENANT)
    eligible = [u.user.id for u in overview.users if u.standing == Standing.ELIGIBLE]
    assert len(eligible) >= 4
    await _leave_free_seats(table_store, 2)
    results = await service.assign(TENANT, eligible[:4], actor="alex")
    assert [r.outcome for r in results] == [Outcome.ASSIGNED] * 2 + [Outcome.NO_SEATS] * 2
    after = await service.overview(TENANT)
    assert after.free_seats == 0
    licensed = {u.user.id for u in after.users if u.standing == Standing.LICENSED}
    assert set(eligible[:2]) <= licensed and not set(eligible[2:4]) & licensed
    [entry] = await audit.recent(TENANT)
    assert entry["action"] == "licence.assign" and entry["actor"] == "alex"
    assert [r["outcome"] for r in entry["results"]] == ["assigned"] * 2 + ["no_seats"] * 2


async def test_prerequisites_are_named_or_fixed(table_store):
    _, _, service = await _service(table_store)
    overview = await service.overview(TENANT)
    missing = [u for u in overview.users if u.standing == Standing.MISSING_PREREQUISITE]
    ids = [u.user.id for u in missing[:2]]
    named = await service.assign(TENANT, ids, actor="alex")
    assert {r.outcome for r in named} == {Outcome.MISSING_PREREQUISITE}
    assert all(r.missing.value != "nothing" for r in named)
    fixed = await service.assign(
        TENANT, ids, actor="alex", prerequisite=Prerequisite.PHONE_SYSTEM_DOMESTIC
    )
    assert {r.outcome for r in fixed} <= {Outcome.ASSIGNED_WITH_PREREQUISITE, Outcome.NO_SEATS}
    assert any(
        r.outcome == Outcome.ASSIGNED_WITH_PREREQUISITE and r.needs_phone_number for r in fixed
    )


async def test_a_user_of_another_tenant_is_not_found_and_nothing_changes(table_store):
    directory, _, service = await _service(table_store)
    await directory.add_user("other-tenant", _stranger())
    before = await service.overview(TENANT)
    results = await service.assign(TENANT, ["stranger-1"], actor="alex")
    assert [r.outcome for r in results] == [Outcome.NOT_FOUND]
    assert (await service.overview(TENANT)).free_seats == before.free_seats


def _stranger():
    from credits.directory import DirectoryUser

    return DirectoryUser("stranger-1", "Stranger", "s@other.example", "US", frozenset())
