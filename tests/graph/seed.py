"""The app registration and the two tenants the Graph tests use, and what each tenant holds."""

from __future__ import annotations

from tests.fakes.graph import FakeGraph

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "fake-secret-do-not-log"
TENANT = "8f0b2c1e-5d4a-4e3b-9c2d-1a0f9e8d7c6b"
OTHER_TENANT = "contoso.onmicrosoft.com"
CREDITS = "47794cd0-f0e5-45c5-9033-2eb6b5fc84e0"
AUDIO = "0c266dff-15dd-4b49-8397-2bb16070ed52"
E5 = "c7df2760-2c81-4ef7-b578-5b5392b571df"
# Users are named by their Entra object ids, as Graph names them (the directory sends no other).
ALEX = "a1e5a1e5-0000-4000-8000-000000000001"
MEGAN = "3e9a3e9a-0000-4000-8000-000000000002"
NOWHERE = "0e0e0e0e-0000-4000-8000-000000000003"
OLGA = "01ca01ca-0000-4000-8000-000000000004"
NOBODY = "0b0d0b0d-0000-4000-8000-000000000099"


def seeded_graph() -> FakeGraph:
    fake = FakeGraph(clients={CLIENT_ID: SECRET})
    for tenant in (TENANT, OTHER_TENANT):
        fake.add_sku(tenant, CREDITS, "MCOPSTNC", enabled=3, consumed=1, plans=["MCOPSTNC"])
        fake.add_sku(tenant, AUDIO, "MCOMEETADV", enabled=10, consumed=2)
        fake.add_sku(
            tenant, E5, "ENTERPRISEPREMIUM", enabled=5, plans=["MCOEV", "MCOMEETADV", "TEAMS1"]
        )
    fake.add_user(TENANT, ALEX, "Alex Wilber", upn="alexw@example.com", sku_ids=[AUDIO])
    fake.add_user(TENANT, MEGAN, "Megan Bowen", sku_ids=[E5, CREDITS])
    fake.add_user(TENANT, NOWHERE, "Élodie Lefèvre", usage_location=None, sku_ids=[AUDIO])
    fake.add_user(OTHER_TENANT, OLGA, "Ольга Смирнова", usage_location="FI")
    return fake
