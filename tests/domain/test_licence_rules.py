"""Prerequisite rules over service-plan combinations, table-driven."""

from __future__ import annotations

import pytest

from credits.directory import DirectoryUser, Sku
from credits.licences import Missing, SkuCatalogue, Standing, assess, missing_prerequisite

SKUS = [
    Sku("ac", "MCOMEETADV", 10, 0, frozenset({"MCOMEETADV"})),
    Sku("ps", "MCOEV", 10, 0, frozenset({"MCOEV"})),
    Sku("dom", "MCOPSTN1", 10, 0, frozenset({"MCOPSTN1"})),
    Sku("intl", "MCOPSTN2", 10, 0, frozenset({"MCOPSTN2"})),
    Sku(
        "e5",
        "ENTERPRISEPREMIUM",
        10,
        0,
        frozenset({"MCOEV", "MCOMEETADV", "TEAMS1", "EXCHANGE_S_ENTERPRISE"}),
    ),
    Sku("e3", "SPE_E3", 10, 0, frozenset({"TEAMS1", "EXCHANGE_S_ENTERPRISE"})),
    Sku("47794cd0-f0e5-45c5-9033-2eb6b5fc84e0", "MCOPSTNC", 10, 0, frozenset({"MCOPSTNPP"})),
]
CATALOGUE = SkuCatalogue(SKUS)
CREDITS = "47794CD0-F0E5-45C5-9033-2EB6B5FC84E0"  # Graph ids compare case-insensitively


@pytest.mark.parametrize(
    ("plans", "missing"),
    [
        (set(), Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM),
        ({"MCOMEETADV"}, Missing.NOTHING),
        ({"MCOEV"}, Missing.CALLING_PLAN),
        ({"MCOEV", "MCOPSTN1"}, Missing.NOTHING),
        ({"MCOEV", "MCOPSTN2"}, Missing.NOTHING),
        ({"MCOEV", "MCOPSTN5"}, Missing.NOTHING),
        ({"MCOPSTN1"}, Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM),
        ({"MCOMEETADV", "MCOPSTN2"}, Missing.NOTHING),
        ({"TEAMS1", "EXCHANGE_S_ENTERPRISE"}, Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM),
    ],
)
def test_prerequisites_from_service_plans(plans, missing):
    assert missing_prerequisite(frozenset(plans)) == missing


@pytest.mark.parametrize(
    ("skus", "location", "standing", "missing", "e5"),
    [
        ({"ac"}, "US", Standing.ELIGIBLE, Missing.NOTHING, False),
        ({"ps", "dom"}, "BR", Standing.ELIGIBLE, Missing.NOTHING, False),
        ({"ps", "intl"}, "FR", Standing.ELIGIBLE, Missing.NOTHING, False),
        ({"ps"}, "ES", Standing.MISSING_PREREQUISITE, Missing.CALLING_PLAN, False),
        ({"e5"}, "CN", Standing.ELIGIBLE, Missing.NOTHING, True),
        (
            {"e3"},
            "RU",
            Standing.MISSING_PREREQUISITE,
            Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM,
            False,
        ),
        (
            set(),
            "US",
            Standing.MISSING_PREREQUISITE,
            Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM,
            False,
        ),
        ({"ac", CREDITS}, "US", Standing.LICENSED, Missing.NOTHING, False),
        ({"e5", CREDITS}, "US", Standing.LICENSED, Missing.NOTHING, True),
        ({"ac"}, "", Standing.NO_USAGE_LOCATION, Missing.NOTHING, False),
        (
            {"unknown-sku"},
            "US",
            Standing.MISSING_PREREQUISITE,
            Missing.AUDIO_CONFERENCING_OR_PHONE_SYSTEM,
            False,
        ),
    ],
)
def test_standing_of_a_user(skus, location, standing, missing, e5):
    user = DirectoryUser("u", "User", "u@example.com", location, frozenset(skus))
    result = assess(user, CATALOGUE)
    assert (result.standing, result.missing, result.is_e5) == (standing, missing, e5)


def test_credits_sku_found_by_either_part_number():
    alt = SkuCatalogue([Sku("other-id", "MCOPSTNPP", 5, 1, frozenset({"MCOPSTNPP"}))])
    assert alt.communications_credits().sku_id == "other-id"
    assert CATALOGUE.communications_credits().part_number == "MCOPSTNC"
    assert SkuCatalogue([]).communications_credits() is None
