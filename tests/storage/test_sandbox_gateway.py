"""The sandbox gateway: validation, the test cards, idempotency, timeouts and tenant isolation.

Every gateway test runs twice: on an in-memory `SandboxRecords` (pure and fast) and on
`TableSandboxRecords` against Azurite, the store the product runs on. The gateway itself is never
mocked; the in-memory store yields to the event loop on every call, as a network store would, so
concurrent calls really interleave.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from credits.payments import (
    CardDetails,
    CardToken,
    ChargeResult,
    DeclineReason,
    GatewayTimeout,
    IdempotencyConflict,
    InvalidCard,
    PaymentDeclined,
    PaymentGateway,
    PaymentSource,
)
from storage.sandbox_gateway import (
    TEST_CARDS,
    Behaviour,
    SandboxGateway,
    SandboxRecords,
    brand_of,
    luhn_valid,
    token_key,
)
from storage.sandbox_records import RECORD, TableSandboxRecords

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox-cards.md"

NOW = datetime(2026, 5, 15, 12, 30, tzinfo=UTC)
TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"

SUCCESS = "4242424242424242"
EXPIRED = "4000000000000069"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
PROCESSING = "4000000000000119"
HANG = "4000000000000259"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"

CVC = "987"
HANG_TIMEOUT = 0.2


class MemoryRecords:
    """SandboxRecords in a dict, with the semantics of the Table one (insert never overwrites)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str] = {}

    async def get(self, tenant_id: str, key: str) -> dict | None:
        await asyncio.sleep(0)  # a real store answers later; let concurrent callers interleave
        text = self.rows.get((tenant_id, key))
        return None if text is None else json.loads(text)

    async def insert(self, tenant_id: str, key: str, record: dict) -> bool:
        await asyncio.sleep(0)
        if (tenant_id, key) in self.rows:
            return False
        self.rows[(tenant_id, key)] = json.dumps(record)
        return True

    async def list(self, tenant_id: str, prefix: str) -> list[dict]:
        await asyncio.sleep(0)
        return [
            json.loads(text)
            for (tenant, key), text in sorted(self.rows.items())
            if tenant == tenant_id and key.startswith(prefix)
        ]


class RecordingRecords:
    """Passes every call through and keeps a copy of everything the gateway writes."""

    def __init__(self, inner: SandboxRecords) -> None:
        self.inner = inner
        self.written: list[tuple[str, str, dict]] = []

    async def get(self, tenant_id: str, key: str) -> dict | None:
        return await self.inner.get(tenant_id, key)

    async def insert(self, tenant_id: str, key: str, record: dict) -> bool:
        self.written.append((tenant_id, key, json.loads(json.dumps(record))))
        return await self.inner.insert(tenant_id, key, record)

    async def list(self, tenant_id: str, prefix: str) -> list[dict]:
        return await self.inner.list(tenant_id, prefix)


class SlowRecords(MemoryRecords):
    """A store that takes `delay` seconds to answer: the gateway's timeout must cover it."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def get(self, tenant_id: str, key: str) -> dict | None:
        await asyncio.sleep(self.delay)
        return await super().get(tenant_id, key)


@pytest.fixture(params=["memory", "tables"])
def backend(request: pytest.FixtureRequest) -> SandboxRecords:
    if request.param == "memory":
        return MemoryRecords()
    # Requested only here, so the memory half of the suite never starts Azurite.
    table_store = request.getfixturevalue("table_store")
    return TableSandboxRecords(table_store.table(table_store.names.sandbox_payments))


@pytest.fixture
def records(backend: SandboxRecords) -> RecordingRecords:
    return RecordingRecords(backend)


@pytest.fixture
def make_gateway(records: RecordingRecords) -> Callable[..., SandboxGateway]:
    def make(timeout: float = 10.0) -> SandboxGateway:
        return SandboxGateway(records, timeout=timeout, now=lambda: NOW)

    return make


@pytest.fixture
def gateway(make_gateway: Callable[..., SandboxGateway]) -> SandboxGateway:
    return make_gateway()


def card(
    number: str = SUCCESS,
    month: int = 12,
    year: int = NOW.year + 2,
    cvc: str = CVC,
    name: str = "Alex Wilber",
) -> CardDetails:
    return CardDetails(number, month, year, cvc, name)


async def token_for(gateway: SandboxGateway, number: str, tenant: str = TENANT) -> str:
    cvc = "9876" if brand_of(number) == "amex" else CVC
    return (await gateway.tokenize_card(tenant, card(number, cvc=cvc))).token


async def pay(
    gateway: SandboxGateway,
    token: str,
    key: str = "order-1",
    *,
    tenant: str = TENANT,
    amount: int = 50000,
    currency: str = "USD",
    description: str = "Communications Credits purchase",
) -> ChargeResult:
    return await gateway.charge(
        tenant_id=tenant,
        idempotency_key=key,
        amount_minor=amount,
        currency=currency,
        source=PaymentSource(card_token=token),
        description=description,
    )


# --- the test cards ------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(TEST_CARDS) + [MASTERCARD, AMEX])
def test_every_test_card_number_is_luhn_valid(number: str) -> None:
    assert luhn_valid(number)


def test_luhn_refuses_a_changed_digit() -> None:
    assert not luhn_valid("4242424242424241")
    assert not luhn_valid("4000000000000250")


def test_the_docs_list_every_test_card_and_only_valid_numbers() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = {
        digits
        for quoted in re.findall(r"`([0-9 ]+)`", text)
        if len(digits := quoted.replace(" ", "")) >= 12
    }
    assert set(TEST_CARDS) <= documented
    assert all(luhn_valid(number) for number in documented)


def test_the_sandbox_is_a_payment_gateway() -> None:
    gateway: PaymentGateway = SandboxGateway(MemoryRecords())
    assert gateway is not None


@pytest.mark.parametrize("number", [SUCCESS, MASTERCARD, AMEX, "6011111111111117"])
async def test_a_good_card_is_charged(gateway: SandboxGateway, number: str) -> None:
    token = await token_for(gateway, number)

    result = await pay(gateway, token)

    assert result.gateway_reference.startswith("ch_sandbox_")
    assert len(result.gateway_reference) == len("ch_sandbox_") + 32
    assert (result.amount_minor, result.currency) == (50000, "USD")


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (EXPIRED, DeclineReason.EXPIRED_CARD),
        (DECLINED, DeclineReason.DECLINED),
        (INSUFFICIENT, DeclineReason.INSUFFICIENT_FUNDS),
        (PROCESSING, DeclineReason.PROCESSING_ERROR),
    ],
)
async def test_a_declining_test_card_is_declined_for_its_reason(
    gateway: SandboxGateway, records: RecordingRecords, number: str, reason: DeclineReason
) -> None:
    # The expired test card tokenises with a future expiry: it is the processor that says no.
    token = await token_for(gateway, number)

    with pytest.raises(PaymentDeclined) as declined:
        await pay(gateway, token)

    assert declined.value.reason == reason
    [charge] = await records.list(TENANT, "charge:")
    assert charge["outcome"] == {"status": "declined", "reason": reason.value}


async def test_a_decline_is_final_for_its_key(gateway: SandboxGateway) -> None:
    token = await token_for(gateway, INSUFFICIENT)
    for _ in range(3):
        with pytest.raises(PaymentDeclined) as declined:
            await pay(gateway, token)
        assert declined.value.reason == DeclineReason.INSUFFICIENT_FUNDS


async def test_a_token_remembers_the_behaviour_not_the_number(
    gateway: SandboxGateway, records: RecordingRecords
) -> None:
    token = await gateway.tokenize_card(TENANT, card("4000-0000-0000-9995"))

    assert await records.get(TENANT, token_key(token.token)) == {
        "kind": "token",
        "behaviour": Behaviour.INSUFFICIENT_FUNDS.value,
        "last4": "9995",
        "brand": "visa",
    }


async def test_an_unknown_token_is_declined_as_an_invalid_card(gateway: SandboxGateway) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        await pay(gateway, "tok_sandbox_" + "0" * 32)
    assert declined.value.reason == DeclineReason.INVALID_CARD


# --- tokenising and validation ---------------------------------------------------------------


async def test_tokenising_answers_what_an_admin_may_see(gateway: SandboxGateway) -> None:
    token = await gateway.tokenize_card(TENANT, card(" 4242 4242-4242 4242 ", month=3, year=28))

    assert token == CardToken(token.token, "visa", "4242", 3, 2028)
    assert re.fullmatch(r"tok_sandbox_[0-9a-f]{32}", token.token)
    other = await gateway.tokenize_card(TENANT, card())
    assert other.token != token.token


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5105105105105100", "mastercard"),
        ("5555555555554444", "mastercard"),
        ("2221000000000009", "mastercard"),
        ("2720990000000007", "mastercard"),
        ("2220990000000000", "card"),
        ("5610591081018250", "card"),
        ("340000000000009", "amex"),
        ("378282246310005", "amex"),
        ("6011111111111117", "card"),
    ],
)
def test_the_brand_comes_from_the_leading_digits(number: str, brand: str) -> None:
    assert brand_of(number) == brand


@pytest.mark.parametrize(
    "number",
    [
        "4242424242424241",  # Luhn
        "4242",  # too short
        "42424242424",  # 11 digits
        "42424242424242424242",  # 20 digits
        "4242 4242 4242 424a",
        "4242.4242.4242.4242",
        "４２４２４２４２４２４２４２４２",  # full-width digits
        "",
    ],
)
async def test_a_bad_number_is_refused_naming_the_number(
    gateway: SandboxGateway, records: RecordingRecords, number: str
) -> None:
    with pytest.raises(InvalidCard) as invalid:
        await gateway.tokenize_card(TENANT, card(number))
    assert (invalid.value.field, invalid.value.reason) == ("number", DeclineReason.INVALID_CARD)
    assert records.written == []


@pytest.mark.parametrize(
    ("month", "year", "reason"),
    [
        (0, NOW.year + 1, DeclineReason.INVALID_CARD),
        (13, NOW.year + 1, DeclineReason.INVALID_CARD),
        (12, NOW.year + 51, DeclineReason.INVALID_CARD),
        (NOW.month - 1, NOW.year, DeclineReason.EXPIRED_CARD),
        (12, NOW.year - 1, DeclineReason.EXPIRED_CARD),
        (12, 0, DeclineReason.EXPIRED_CARD),  # what the form sends when the year is empty
        (12, NOW.year % 100 - 1, DeclineReason.EXPIRED_CARD),
    ],
)
async def test_a_bad_expiry_is_refused_naming_the_expiry(
    gateway: SandboxGateway, month: int, year: int, reason: DeclineReason
) -> None:
    with pytest.raises(InvalidCard) as invalid:
        await gateway.tokenize_card(TENANT, card(month=month, year=year))
    assert (invalid.value.field, invalid.value.reason) == ("expiry", reason)


async def test_a_card_is_good_through_its_expiry_month(gateway: SandboxGateway) -> None:
    token = await gateway.tokenize_card(TENANT, card(month=NOW.month, year=NOW.year))
    assert (token.expiry_month, token.expiry_year) == (NOW.month, NOW.year)


async def test_the_clock_decides_what_is_expired(records: RecordingRecords) -> None:
    later = SandboxGateway(records, now=lambda: datetime(2031, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidCard) as invalid:
        await later.tokenize_card(TENANT, card(month=12, year=2030))
    assert invalid.value.reason == DeclineReason.EXPIRED_CARD


@pytest.mark.parametrize(
    ("number", "cvc"),
    [
        (SUCCESS, "12"),
        (SUCCESS, "1234"),  # Visa has three
        (SUCCESS, "12a"),
        (SUCCESS, "١٢٣"),  # Arabic-Indic digits
        (SUCCESS, ""),
        (MASTERCARD, "12345"),
        (AMEX, "123"),  # Amex has four
        ("6011111111111117", "12"),
    ],
)
async def test_a_bad_cvc_is_refused_naming_the_cvc(
    gateway: SandboxGateway, number: str, cvc: str
) -> None:
    with pytest.raises(InvalidCard) as invalid:
        await gateway.tokenize_card(TENANT, card(number, cvc=cvc))
    assert invalid.value.field == "cvc"


async def test_an_amex_takes_four_digits_and_an_unknown_brand_three_or_four(
    gateway: SandboxGateway,
) -> None:
    assert (await gateway.tokenize_card(TENANT, card(AMEX, cvc="1234"))).brand == "amex"
    for cvc in ("123", "1234"):
        assert (
            await gateway.tokenize_card(TENANT, card("6011111111111117", cvc=cvc))
        ).brand == "card"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "Alex\nWilber"])
async def test_a_bad_name_is_refused_naming_the_name(gateway: SandboxGateway, name: str) -> None:
    with pytest.raises(InvalidCard) as invalid:
        await gateway.tokenize_card(TENANT, card(name=name))
    assert invalid.value.field == "name"


async def test_a_name_of_a_hundred_characters_is_accepted(gateway: SandboxGateway) -> None:
    await gateway.tokenize_card(TENANT, card(name="Zoë " + "x" * 96))


# --- idempotency -----------------------------------------------------------------------------


async def test_a_replay_returns_the_first_result(
    gateway: SandboxGateway, records: RecordingRecords
) -> None:
    token = await token_for(gateway, SUCCESS)

    first = await pay(gateway, token)
    again = await pay(gateway, token)

    assert again == first
    assert len(await records.list(TENANT, "charge:")) == 1


@pytest.mark.parametrize("changed", ["amount", "currency", "description", "token"])
async def test_the_same_key_with_other_parameters_is_a_conflict(
    gateway: SandboxGateway, records: RecordingRecords, changed: str
) -> None:
    token = await token_for(gateway, SUCCESS)
    first = await pay(gateway, token)
    other = {
        "amount": {"amount": 50001},
        "currency": {"currency": "EUR"},
        "description": {"description": "something else"},
        "token": {"token": await token_for(gateway, SUCCESS)},
    }[changed]

    with pytest.raises(IdempotencyConflict):
        await pay(gateway, **{"token": token, **other})

    assert await pay(gateway, token) == first  # the first request still replays
    assert len(await records.list(TENANT, "charge:")) == 1


async def test_a_conflict_is_refused_even_when_the_first_charge_was_declined(
    gateway: SandboxGateway,
) -> None:
    token = await token_for(gateway, DECLINED)
    with pytest.raises(PaymentDeclined):
        await pay(gateway, token)
    with pytest.raises(IdempotencyConflict):
        await pay(gateway, token, amount=1)


async def test_twenty_concurrent_charges_with_one_key_are_one_charge(
    gateway: SandboxGateway, records: RecordingRecords
) -> None:
    token = await token_for(gateway, SUCCESS)

    results = await asyncio.gather(*(pay(gateway, token, "same-key") for _ in range(20)))

    assert len(set(results)) == 1
    charges = await records.list(TENANT, "charge:")
    assert len(charges) == 1
    assert charges[0]["outcome"]["gateway_reference"] == results[0].gateway_reference


async def test_twenty_concurrent_declines_with_one_key_are_one_decline(
    gateway: SandboxGateway, records: RecordingRecords
) -> None:
    token = await token_for(gateway, PROCESSING)

    outcomes = await asyncio.gather(
        *(pay(gateway, token, "same-key") for _ in range(20)), return_exceptions=True
    )

    assert {type(o) for o in outcomes} == {PaymentDeclined}
    assert {o.reason for o in outcomes} == {DeclineReason.PROCESSING_ERROR}
    assert len(await records.list(TENANT, "charge:")) == 1


async def test_amounts_must_be_positive_and_nothing_is_recorded_otherwise(
    gateway: SandboxGateway, records: RecordingRecords
) -> None:
    token = await token_for(gateway, SUCCESS)
    for amount in (0, -1, True):
        with pytest.raises(ValueError, match="amount"):
            await pay(gateway, token, amount=amount)
    with pytest.raises(ValueError, match="currency"):
        await pay(gateway, token, currency="usd")
    assert await records.list(TENANT, "charge:") == []


# --- the answer that comes too late ----------------------------------------------------------


async def test_the_hanging_card_is_charged_but_the_caller_times_out_then_replays(
    make_gateway: Callable[..., SandboxGateway], records: RecordingRecords
) -> None:
    gateway = make_gateway(timeout=HANG_TIMEOUT)
    token = await token_for(gateway, HANG)  # also warms the store's connection

    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        await pay(gateway, token, "key-t")
    waited = time.monotonic() - started

    # Only a lower bound: wall-clock upper bounds flake on a shared machine, and the
    # GatewayTimeout itself proves the call did not wait for the hang (3 x the timeout).
    assert waited >= HANG_TIMEOUT * 0.9
    [charge] = await records.list(TENANT, "charge:")
    assert charge["outcome"]["status"] == "succeeded"

    # The replay is answered from the record inside the same short timeout (a slower answer
    # would raise GatewayTimeout here).
    replayed = await pay(gateway, token, "key-t")
    assert replayed.gateway_reference == charge["outcome"]["gateway_reference"]
    assert await pay(gateway, token, "key-t") == replayed
    assert len(await records.list(TENANT, "charge:")) == 1


async def test_the_whole_call_is_bounded_by_the_timeout() -> None:
    gateway = SandboxGateway(SlowRecords(delay=5.0), timeout=HANG_TIMEOUT, now=lambda: NOW)
    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        await pay(gateway, "tok_sandbox_" + "1" * 32)
    # Far below the store's 5 s: the timeout cut the call short (generous for a busy machine).
    assert time.monotonic() - started < 4.0


# --- agreements ------------------------------------------------------------------------------


async def test_an_agreement_is_invoiced_and_keeps_its_purchase_order(
    gateway: SandboxGateway, records: RecordingRecords
) -> None:
    source = PaymentSource(agreement_number="EA-1001", purchase_order="PO-7")
    ask = dict(
        tenant_id=TENANT,
        idempotency_key="key-ea",
        amount_minor=100000,
        currency="USD",
        source=source,
        description="Communications Credits purchase",
    )

    result = await gateway.charge(**ask)

    assert re.fullmatch(r"inv_sandbox_[0-9a-f]{32}", result.gateway_reference)
    [charge] = await records.list(TENANT, "charge:")
    assert charge["request"]["agreement_number"] == "EA-1001"
    assert charge["request"]["purchase_order"] == "PO-7"
    assert await gateway.charge(**ask) == result
    with pytest.raises(IdempotencyConflict):
        await gateway.charge(
            **{**ask, "source": PaymentSource(agreement_number="EA-1001", purchase_order="PO-8")}
        )


@pytest.mark.parametrize("number", ["x" * 65, "EA-\x001", "   "])
async def test_a_malformed_agreement_number_is_declined(
    gateway: SandboxGateway, number: str
) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge(
            tenant_id=TENANT,
            idempotency_key="key-ea",
            amount_minor=100000,
            currency="USD",
            source=PaymentSource(agreement_number=number),
            description="Communications Credits purchase",
        )
    assert declined.value.reason == DeclineReason.UNKNOWN_AGREEMENT


# --- tenants ---------------------------------------------------------------------------------


async def test_one_key_in_two_tenants_is_two_charges(
    gateway: SandboxGateway, records: RecordingRecords
) -> None:
    mine = await pay(gateway, await token_for(gateway, SUCCESS, TENANT), "k", tenant=TENANT)
    theirs = await pay(
        gateway, await token_for(gateway, SUCCESS, OTHER_TENANT), "k", tenant=OTHER_TENANT, amount=9
    )

    assert mine.gateway_reference != theirs.gateway_reference
    for tenant, amount in ((TENANT, 50000), (OTHER_TENANT, 9)):
        charges = await records.list(tenant, "charge:")
        assert [c["request"]["amount_minor"] for c in charges] == [amount]


async def test_a_token_of_one_tenant_is_unknown_in_another(gateway: SandboxGateway) -> None:
    token = await token_for(gateway, SUCCESS, TENANT)

    with pytest.raises(PaymentDeclined) as declined:
        await pay(gateway, token, tenant=OTHER_TENANT)

    assert declined.value.reason == DeclineReason.INVALID_CARD
    assert (await pay(gateway, token, tenant=TENANT)).gateway_reference.startswith("ch_sandbox_")


# --- secrets ---------------------------------------------------------------------------------


def _without_random_ids(text: str) -> str:
    # Tokens, references and hashes are random hex; a CVC could turn up inside one by chance.
    return re.sub(r"[0-9a-f]{32,}", "<id>", text)


async def test_neither_the_number_nor_the_cvc_is_stored_or_logged(
    make_gateway: Callable[..., SandboxGateway],
    records: RecordingRecords,
    backend: SandboxRecords,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = make_gateway(timeout=HANG_TIMEOUT)  # the hanging card is among them
    tokens = []
    for index, number in enumerate((*TEST_CARDS, MASTERCARD)):
        token = await gateway.tokenize_card(TENANT, card(" ".join(re.findall("....", number))))
        tokens.append(token.token)
        try:
            await pay(gateway, token.token, f"key-{index}", description=f"ends {token.last4}")
        except (PaymentDeclined, GatewayTimeout):
            pass
    with pytest.raises(InvalidCard):
        await gateway.tokenize_card(TENANT, card("4242424242424241"))

    written = json.dumps(records.written)
    if isinstance(backend, TableSandboxRecords):
        # What actually reached the table, not only what the gateway handed over.
        store = request.getfixturevalue("table_store")
        table = store.table(store.names.sandbox_payments)
        entities = [e async for e in table.list_entities()]
        written += json.dumps([[e["PartitionKey"], e["RowKey"], e[RECORD]] for e in entities])
    else:
        written += json.dumps(sorted(backend.rows.items()))
    everything_logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    # The product's own lines. azure.core's HTTP logging (URLs and headers, never bodies) is
    # left out of the CVC and token checks: its timestamps and lengths are digits that may
    # spell a CVC by chance, and it shows the row key (the token) in the URL at INFO, which is
    # why app.py keeps the "azure" loggers at WARNING.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("azure"))
    assert len(records.written) == 2 * len(tokens)  # the test did write
    assert "sandbox tokenised a visa card ending 4242" in ours  # and log

    for text in (written, everything_logged):
        for number in (*TEST_CARDS, MASTERCARD, "4242424242424241"):
            assert number not in text.replace(" ", "").replace("-", "")
    for text in (written, ours):
        assert CVC not in _without_random_ids(text)
    for token in tokens:
        assert token not in ours


# --- the Table store -------------------------------------------------------------------------


@pytest.fixture
def table_records(table_store) -> TableSandboxRecords:
    return TableSandboxRecords(table_store.table(table_store.names.sandbox_payments))


async def test_a_table_insert_never_overwrites(table_records: TableSandboxRecords) -> None:
    assert await table_records.get(TENANT, "charge:k") is None
    assert await table_records.insert(TENANT, "charge:k", {"n": 1}) is True
    assert await table_records.insert(TENANT, "charge:k", {"n": 2}) is False
    assert await table_records.get(TENANT, "charge:k") == {"n": 1}


async def test_table_keys_may_hold_any_characters(table_records: TableSandboxRecords) -> None:
    tenant, key = "contoso/emea#1?", "charge:order/7#?\\*\x01é"
    assert await table_records.insert(tenant, key, {"text": "Zoë ✓"})
    assert await table_records.get(tenant, key) == {"text": "Zoë ✓"}
    assert await table_records.get("contoso", key) is None


async def test_a_table_listing_keeps_to_its_tenant_and_prefix(
    table_records: TableSandboxRecords,
) -> None:
    for tenant, key in [
        (TENANT, "charge:a"),
        (TENANT, "charge:b/c"),
        (TENANT, "charge;"),  # the character after ":" — just past the range
        (TENANT, "charge"),
        (TENANT, "token:x"),
        (OTHER_TENANT, "charge:a"),
    ]:
        await table_records.insert(tenant, key, {"tenant": tenant, "key": key})

    listed = await table_records.list(TENANT, "charge:")

    assert [r["key"] for r in listed] == ["charge:a", "charge:b/c"]
    assert len(await table_records.list(TENANT, "")) == 5
