"""The account's low-balance thresholds follow every admin's saved preferences, on Azurite, even
when two admins save at the same moment."""

from __future__ import annotations

import uuid

import pytest

from credits.alert_settings import sync_account_thresholds
from credits.alerts import AlertPreferences
from credits.model import Account
from credits.repository import ConcurrencyConflict
from storage.alerts import TableAlertStore
from storage.credits_repository import TableCreditsRepository

TENANT = "tenant-" + uuid.uuid4().hex[:8]


@pytest.fixture
def repo(table_store):
    return TableCreditsRepository(table_store.table(table_store.names.credits))


@pytest.fixture
def alerts(table_store):
    return TableAlertStore(table_store.table(table_store.names.alerts))


async def test_the_union_of_every_admins_thresholds(repo, alerts):
    await repo.create_account(Account(TENANT, "USD"))
    await alerts.save_preferences(TENANT, "alex", AlertPreferences(thresholds_minor=(500, 100)))
    await alerts.save_preferences(TENANT, "megan", AlertPreferences(thresholds_minor=(250, 100)))
    await alerts.save_preferences(TENANT, "adele", AlertPreferences())
    account = await sync_account_thresholds(repo, TENANT, alerts.all_preferences)
    assert account.low_balance_thresholds == (500, 250, 100)
    assert (await repo.get_account(TENANT)).value.low_balance_thresholds == (500, 250, 100)

    # Nothing changed: nothing is written.
    before = await repo.get_account(TENANT)
    await sync_account_thresholds(repo, TENANT, alerts.all_preferences)
    assert (await repo.get_account(TENANT)).etag == before.etag


async def test_an_admin_saving_meanwhile_is_never_lost(repo, alerts):
    """Alex's sync reads the preferences before Megan's are saved; Megan's whole save (her
    preferences and the account) happens before Alex writes the account. Alex's write then
    fails on the ETag, and the retry reads both."""
    await repo.create_account(Account(TENANT, "USD"))
    await alerts.save_preferences(TENANT, "alex", AlertPreferences(thresholds_minor=(700,)))
    interleaved = False

    async def alex_reads(tenant_id: str):
        nonlocal interleaved
        preferences = await alerts.all_preferences(tenant_id)
        if not interleaved:
            interleaved = True
            await alerts.save_preferences(
                TENANT, "megan", AlertPreferences(thresholds_minor=(300,))
            )
            await sync_account_thresholds(repo, TENANT, alerts.all_preferences)
        return preferences

    await sync_account_thresholds(repo, TENANT, alex_reads)
    assert (await repo.get_account(TENANT)).value.low_balance_thresholds == (700, 300)


async def test_an_account_that_keeps_changing_gives_up(repo, alerts):
    await repo.create_account(Account(TENANT, "USD"))
    await alerts.save_preferences(TENANT, "alex", AlertPreferences(thresholds_minor=(700,)))

    async def someone_always_writes_first(tenant_id: str):
        current = await repo.get_account(tenant_id)
        await repo.save_account(current, current.value)
        return await alerts.all_preferences(tenant_id)

    with pytest.raises(ConcurrencyConflict):
        await sync_account_thresholds(repo, TENANT, someone_always_writes_first)
    assert (await repo.get_account(TENANT)).value.low_balance_thresholds == ()
