"""The credits ledger on Azure Table storage: one partition per tenant, one table.

Row keys within a tenant's partition:

    account                      the account: balance, sequence, settings
    lot-<lot id>                 one funds lot
    ledger-<inverted sequence>   one ledger entry; inverted so the newest sorts first
    order-<idempotency key>      one order; inserting an existing key is how a repeat is caught
    ids-<yyyymmdd>-<nnnn>        charged UsageIds of calls started that UTC day: 16 bytes each
                                 in one binary property of at most 64 KiB (credits/usage_days.py)
    spend-<yyyymmdd>             that day's calls, their cost and what was charged
    usage-<UsageId>              a call charged before the day buckets (moved into them, then
                                 deleted, by credits/usage_migration.py)
    outbox-<event id>            an alert to deliver

Money is Edm.Int64 minor units. A money change is one entity-group transaction that carries
If-Match on the account (and on the order it books, and on the day buckets and spend rows it
updates), so two writers can never both succeed from the same starting point.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from credits.ledger import Change
from credits.model import (
    Account,
    AutoRecharge,
    EntryKind,
    EventKind,
    LedgerEntry,
    Lot,
    MethodKind,
    Order,
    OrderStatus,
    OutboxEvent,
    PaymentMethod,
    RechargeState,
    RunwayWatch,
    SavedCard,
    UsageMarker,
)
from credits.repository import ConcurrencyConflict, DuplicateRecord, Versioned
from credits.usage_days import DaySpend, DayUsage, DayWrite, IdBucket
from storage.keys import escape_key
from storage.tenants_index import TableTenantsIndex

logger = logging.getLogger(__name__)

ACCOUNT = "account"
LOT = "lot-"
LEDGER = "ledger-"
ORDER = "order-"
USAGE = "usage-"
IDS = "ids-"
SPEND = "spend-"
OUTBOX = "outbox-"
# Ledger row keys count down from here so that a plain ascending query lists newest first.
_SEQ_CEILING = 10**18
# One query page holds at most 1,000 entities.
MAX_PAGE_ENTITIES = 1000
# One entity-group transaction holds at most 100 operations.
MAX_TRANSACTION_OPERATIONS = 100
# Buckets read per request: at most 1 MiB of ids, so that no response (base64 in JSON, then
# decoded) makes a large transient allocation.
BUCKETS_PER_PAGE = 16


def _int64(value: int) -> EntityProperty:
    return EntityProperty(value, EdmType.INT64)


def _int(value: Any) -> int:
    return int(value.value) if isinstance(value, EntityProperty) else int(value)


def _if_match(etag: str) -> dict[str, Any]:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


# Every row key that starts with a prefix: [prefix, prefix with its last character + 1).
_PREFIX_QUERY = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"


class TableCreditsRepository:
    def __init__(
        self,
        table: TableClient,
        on_events: Callable[[str], None] | None = None,
        tenants: TableTenantsIndex | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        """`on_events(tenant)` is told, after a commit, that the tenant has new alert events:
        the dispatcher delivers them at once instead of at its next sweep. `tenants`, the
        tenants index, gets a row for every account created (the service always gives one;
        without it, tools and tests that serve a few tenants find them by a scan).
        `on_change(tenant)` is told after every `commit` and `save_account` (money in or out
        other than usage, and settings): the runway forecast looks again. Usage batches
        (`commit_usage`) do not tell it: the import evaluates once it is done, rather than
        racing its own batches for the account."""
        self._table = table
        self._on_events = on_events
        self._tenants = tenants
        self._on_change = on_change

    def _notify(self, tenant_id: str) -> None:
        if self._on_events is not None:
            self._on_events(tenant_id)

    def _changed(self, tenant_id: str) -> None:
        if self._on_change is not None:
            self._on_change(tenant_id)

    # --- accounts -------------------------------------------------------------------------

    async def get_account(self, tenant_id: str) -> Versioned[Account] | None:
        try:
            entity = await self._table.get_entity(escape_key(tenant_id), ACCOUNT)
        except ResourceNotFoundError:
            return None
        return Versioned(_account_from(entity), entity.metadata["etag"])

    async def create_account(self, account: Account) -> Versioned[Account]:
        if self._tenants is not None:
            # Indexed first: a crash in between leaves an index row without an account (which
            # every job passes over), never an account the jobs cannot find.
            await self._tenants.add(account.tenant_id)
        try:
            metadata = await self._table.create_entity(_account_entity(account))
            return Versioned(account, metadata["etag"])
        except ResourceExistsError:
            existing = await self.get_account(account.tenant_id)
            if existing is None:  # created and deleted in between; accounts are never deleted
                raise
            return existing

    async def save_account(self, current: Versioned[Account], new: Account) -> Versioned[Account]:
        if (new.balance_minor, new.ledger_seq) != (
            current.value.balance_minor,
            current.value.ledger_seq,
        ):
            raise ValueError("money moves through commit(), not save_account()")
        try:
            metadata = await self._table.update_entity(
                _account_entity(new), mode=UpdateMode.REPLACE, **_if_match(current.etag)
            )
        except ResourceModifiedError as error:
            raise ConcurrencyConflict("the account changed") from error
        self._changed(new.tenant_id)
        return Versioned(new, metadata["etag"])

    # --- lots and ledger --------------------------------------------------------------------

    async def list_lots(self, tenant_id: str) -> list[Lot]:
        return [_lot_from(e) async for e in self._query_prefix(tenant_id, LOT)]

    async def recent_entries(self, tenant_id: str, limit: int) -> list[LedgerEntry]:
        entries: list[LedgerEntry] = []
        async for entity in self._query_prefix(tenant_id, LEDGER, results_per_page=limit):
            entries.append(_entry_from(entity))
            if len(entries) >= limit:
                break
        return entries

    async def all_entries(self, tenant_id: str) -> list[LedgerEntry]:
        entries = [_entry_from(e) async for e in self._query_prefix(tenant_id, LEDGER)]
        return sorted(entries, key=lambda entry: entry.seq)

    async def ledger_entry(self, tenant_id: str, seq: int) -> LedgerEntry | None:
        try:
            entity = await self._table.get_entity(escape_key(tenant_id), _ledger_key(seq))
        except ResourceNotFoundError:
            return None
        return _entry_from(entity)

    async def ledger_entries(self, tenant_id: str, first: int, last: int) -> list[LedgerEntry]:
        if last < first:
            return []
        # Keys count down, so the newest entry of the run has the lowest key.
        query = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi",
            parameters={
                "pk": escape_key(tenant_id),
                "lo": _ledger_key(last),
                "hi": _ledger_key(first),
            },
            results_per_page=min(last - first + 1, MAX_PAGE_ENTITIES),
        )
        return [_entry_from(entity) async for entity in query]

    # --- orders -----------------------------------------------------------------------------

    async def insert_order(self, order: Order) -> Versioned[Order] | None:
        try:
            metadata = await self._table.create_entity(_order_entity(order))
        except ResourceExistsError:
            return None
        return Versioned(order, metadata["etag"])

    async def get_order(self, tenant_id: str, key: str) -> Versioned[Order] | None:
        try:
            entity = await self._table.get_entity(escape_key(tenant_id), _order_key(key))
        except ResourceNotFoundError:
            return None
        return Versioned(_order_from(entity), entity.metadata["etag"])

    async def update_order(self, current: Versioned[Order], new: Order) -> Versioned[Order]:
        try:
            metadata = await self._table.update_entity(
                _order_entity(new), mode=UpdateMode.REPLACE, **_if_match(current.etag)
            )
        except ResourceModifiedError as error:
            raise ConcurrencyConflict(f"order {new.key} changed") from error
        return Versioned(new, metadata["etag"])

    async def pending_orders(self, tenant_id: str) -> list[Versioned[Order]]:
        return [
            Versioned(_order_from(e), e.metadata["etag"])
            async for e in self._query_prefix(tenant_id, ORDER)
            if e.get("Status") == OrderStatus.PENDING.value
        ]

    # --- usage: day buckets of charged ids, and each day's spend -----------------------------

    async def usage_days(self, tenant_id: str, first: date, last: date) -> dict[date, DayUsage]:
        """Two range queries: the days' buckets, and their spend rows."""
        pk = escape_key(tenant_id)
        after = _day_key(last + timedelta(days=1))
        buckets: dict[date, list[IdBucket]] = {}
        query = self._table.query_entities(
            _PREFIX_QUERY,
            parameters={"pk": pk, "lo": IDS + _day_key(first), "hi": IDS + after},
            select=["RowKey", "Ids"],
            results_per_page=BUCKETS_PER_PAGE,
        )
        async for entity in query:
            bucket = _bucket_from(entity)
            buckets.setdefault(bucket.day, []).append(bucket)
        spends: dict[date, DaySpend] = {}
        query = self._table.query_entities(
            _PREFIX_QUERY,
            parameters={"pk": pk, "lo": SPEND + _day_key(first), "hi": SPEND + after},
        )
        async for entity in query:
            spend = _spend_from(entity)
            spends[spend.day] = spend
        return {
            day: DayUsage(
                day,
                tuple(sorted(buckets.get(day, ()), key=lambda bucket: bucket.index)),
                spends.get(day) or DaySpend(day),
            )
            for day in buckets.keys() | spends.keys()
        }

    async def commit_usage(
        self,
        account_etag: str,
        change: Change,
        days: Sequence[DayWrite],
        inserts: Sequence[OutboxEvent] = (),
    ) -> tuple[Versioned[Account], tuple[DayWrite, ...]]:
        tenant_id = change.account.tenant_id
        operations = _change_operations(account_etag, change)
        first_day = len(operations)
        operations += _day_operations(tenant_id, days)
        first_insert = len(operations)
        operations += [("create", _insert_entity(tenant_id, record)) for record in inserts]
        if len(operations) > MAX_TRANSACTION_OPERATIONS:
            raise ValueError(f"{len(operations)} operations exceed one transaction")
        try:
            results = await self._table.submit_transaction(operations)
        except TableTransactionError as error:
            if error.status_code == 409 and error.index >= first_insert:
                raise DuplicateRecord(inserts[error.index - first_insert]) from error
            # 412 (an ETag is stale), 409 (a bucket, spend or ledger row exists: another writer
            # got there first) and 404 (a row read is gone) all mean: read again.
            if error.status_code in (404, 409, 412):
                raise ConcurrencyConflict(str(error.error_code)) from error
            raise
        if inserts:
            self._notify(tenant_id)
        written = _written_days(days, results[first_day:first_insert])
        return Versioned(change.account, results[0]["etag"]), written

    async def legacy_usage(self, tenant_id: str, limit: int) -> list[Versioned[UsageMarker]]:
        markers: list[Versioned[UsageMarker]] = []
        async for entity in self._query_prefix(tenant_id, USAGE, results_per_page=limit):
            markers.append(Versioned(_marker_from(entity), entity.metadata["etag"]))
            if len(markers) >= limit:
                break
        return markers

    async def migrate_usage(
        self,
        tenant_id: str,
        days: Sequence[DayWrite],
        markers: Sequence[Versioned[UsageMarker]],
    ) -> tuple[DayWrite, ...]:
        pk = escape_key(tenant_id)
        operations = _day_operations(tenant_id, days)
        operations += [
            (
                "delete",
                {"PartitionKey": pk, "RowKey": USAGE + escape_key(marker.value.usage_id)},
                _if_match(marker.etag),
            )
            for marker in markers
        ]
        if len(operations) > MAX_TRANSACTION_OPERATIONS:
            raise ValueError(f"{len(operations)} operations exceed one transaction")
        if not operations:
            return ()
        try:
            results = await self._table.submit_transaction(operations)
        except TableTransactionError as error:
            if error.status_code in (404, 409, 412):
                raise ConcurrencyConflict(str(error.error_code)) from error
            raise
        return _written_days(days, results)

    async def insert_event(self, tenant_id: str, event: OutboxEvent) -> bool:
        """Write an alert on its own; False when an alert with its id exists already."""
        try:
            await self._table.create_entity(_insert_entity(tenant_id, event))
        except ResourceExistsError:
            return False
        self._notify(tenant_id)
        return True

    async def daily_spend(self, tenant_id: str, since: datetime) -> dict[date, int]:
        """Charged minor units per day of call start, from `since` on: one row per day with
        calls, kept by the charging transactions (a 90-day window is at most 90 rows)."""
        query = self._table.query_entities(
            _PREFIX_QUERY,
            parameters={
                "pk": escape_key(tenant_id),
                "lo": SPEND + _day_key(since.date()),
                "hi": SPEND[:-1] + ".",
            },
            select=["RowKey", "ChargedMinor"],
        )
        totals: dict[date, int] = {}
        async for entity in query:
            totals[_day_from(entity["RowKey"], SPEND)] = _int(entity["ChargedMinor"])
        return totals

    async def outbox(self, tenant_id: str) -> list[OutboxEvent]:
        return [_event_from(e) async for e in self._query_prefix(tenant_id, OUTBOX)]

    async def undelivered_events(self, tenant_id: str) -> list[OutboxEvent]:
        """Events not yet turned into deliveries, oldest first."""
        query = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and Delivered eq false",
            parameters={"pk": escape_key(tenant_id), "lo": OUTBOX, "hi": OUTBOX[:-1] + "."},
        )
        events = [_event_from(e) async for e in query]
        return sorted(events, key=lambda e: (e.at, e.event_id))

    async def mark_fanned_out(self, tenant_id: str, event_id: str) -> None:
        """The event's deliveries exist: the dispatcher need not read it again."""
        await self._table.update_entity(
            {
                "PartitionKey": escape_key(tenant_id),
                "RowKey": escape_key(OUTBOX + event_id),
                "Delivered": True,
            },
            mode=UpdateMode.MERGE,
        )

    async def tenants_with_accounts(self) -> list[str]:
        """Every tenant with an account: the tenants index, reconciled with a scan of the
        accounts when it was never filled and at most daily after (storage/tenants_index.py)."""
        if self._tenants is None:
            return await self.scan_accounts()
        return await self._tenants.tenants(self.scan_accounts)

    async def scan_accounts(self) -> list[str]:
        """A query across every partition: for the index's reconciliation, not for every pass."""
        query = self._table.query_entities(
            "RowKey eq @account", parameters={"account": ACCOUNT}, select=["TenantId"]
        )
        return [entity["TenantId"] async for entity in query]

    async def tenants_with_pending_orders(self) -> list[str]:
        """A scan across partitions; pending orders are rare, and only recovery asks."""
        query = self._table.query_entities(
            "RowKey ge @lo and RowKey lt @hi and Status eq @pending",
            parameters={"lo": ORDER, "hi": ORDER[:-1] + ".", "pending": OrderStatus.PENDING.value},
            select=["TenantId"],
        )
        return sorted({entity["TenantId"] async for entity in query})

    # --- the one way money moves ------------------------------------------------------------

    async def commit(
        self,
        account_etag: str,
        change: Change,
        order: tuple[Versioned[Order], Order] | None = None,
        inserts: Sequence[OutboxEvent] = (),
    ) -> Versioned[Account]:
        tenant_id = change.account.tenant_id
        replace_if_match = {"mode": UpdateMode.REPLACE, **_if_match(account_etag)}
        operations: list[tuple[Any, ...]] = [
            ("update", _account_entity(change.account), replace_if_match)
        ]
        operations += [
            ("upsert", _lot_entity(tenant_id, lot), {"mode": UpdateMode.REPLACE})
            for lot in change.lots
        ]
        operations += [("create", _entry_entity(tenant_id, entry)) for entry in change.entries]
        if order is not None:
            current, new = order
            order_if_match = {"mode": UpdateMode.REPLACE, **_if_match(current.etag)}
            operations.append(("update", _order_entity(new), order_if_match))
        first_insert = len(operations)
        operations += [("create", _insert_entity(tenant_id, record)) for record in inserts]
        if len(operations) > MAX_TRANSACTION_OPERATIONS:
            raise ValueError(f"{len(operations)} operations exceed one transaction")
        try:
            results = await self._table.submit_transaction(operations)
        except TableTransactionError as error:
            if error.status_code == 409 and error.index >= first_insert:
                # An event that exists already: a duplicate, not a race.
                record = inserts[error.index - first_insert]
                raise DuplicateRecord(record) from error
            # 412 (an ETag is stale) and 409 (a ledger row exists: someone committed the same
            # sequence number first) both mean: another writer got there first.
            if error.status_code in (409, 412):
                raise ConcurrencyConflict(str(error.error_code)) from error
            raise
        if any(isinstance(record, OutboxEvent) for record in inserts):
            self._notify(tenant_id)
        self._changed(tenant_id)
        return Versioned(change.account, results[0]["etag"])

    def _query_prefix(self, tenant_id: str, prefix: str, **kwargs: Any):
        return self._table.query_entities(
            _PREFIX_QUERY,
            parameters={
                "pk": escape_key(tenant_id),
                "lo": prefix,
                "hi": prefix[:-1] + chr(ord(prefix[-1]) + 1),
            },
            **kwargs,
        )


def _change_operations(account_etag: str, change: Change) -> list[tuple[Any, ...]]:
    """The account (If-Match), the lots and the ledger entries of a change (as `commit`)."""
    tenant_id = change.account.tenant_id
    replace_if_match = {"mode": UpdateMode.REPLACE, **_if_match(account_etag)}
    operations: list[tuple[Any, ...]] = [
        ("update", _account_entity(change.account), replace_if_match)
    ]
    operations += [
        ("upsert", _lot_entity(tenant_id, lot), {"mode": UpdateMode.REPLACE}) for lot in change.lots
    ]
    operations += [("create", _entry_entity(tenant_id, entry)) for entry in change.entries]
    return operations


def _day_operations(tenant_id: str, days: Sequence[DayWrite]) -> list[tuple[Any, ...]]:
    """Each day's buckets, then its spend: replaced under their ETags, or created."""
    operations: list[tuple[Any, ...]] = []
    for write in days:
        rows = [_bucket_entity(tenant_id, bucket) for bucket in write.buckets]
        rows.append(_spend_entity(tenant_id, write.spend))
        etags = [bucket.etag for bucket in write.buckets] + [write.spend.etag]
        for row, etag in zip(rows, etags, strict=True):
            if etag:
                operations.append(("update", row, {"mode": UpdateMode.REPLACE, **_if_match(etag)}))
            else:
                operations.append(("create", row))
    return operations


def _written_days(
    days: Sequence[DayWrite], results: Sequence[dict[str, Any]]
) -> tuple[DayWrite, ...]:
    """The days as written: each bucket and spend row with the ETag the transaction gave it."""
    etags = iter(result["etag"] for result in results)
    return tuple(
        DayWrite(
            write.day,
            tuple(replace(bucket, etag=next(etags)) for bucket in write.buckets),
            replace(write.spend, etag=next(etags)),
        )
        for write in days
    )


# --- entity mapping -------------------------------------------------------------------------


def _day_key(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _day_from(row_key: str, prefix: str) -> date:
    text = row_key[len(prefix) : len(prefix) + 8]
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _bucket_entity(tenant_id: str, bucket: IdBucket) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(tenant_id),
        "RowKey": f"{IDS}{_day_key(bucket.day)}-{bucket.index:04d}",
        "Ids": bucket.ids,
    }


def _bucket_from(entity: dict[str, Any]) -> IdBucket:
    row_key = entity["RowKey"]
    return IdBucket(
        day=_day_from(row_key, IDS),
        index=int(row_key[len(IDS) + 9 :]),
        ids=bytes(entity["Ids"]),
        etag=entity.metadata["etag"],
    )


def _spend_entity(tenant_id: str, spend: DaySpend) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(tenant_id),
        "RowKey": SPEND + _day_key(spend.day),
        "Calls": _int64(spend.calls),
        "AmountMinor": _int64(spend.amount_minor),
        "ChargedMinor": _int64(spend.charged_minor),
    }


def _spend_from(entity: dict[str, Any]) -> DaySpend:
    return DaySpend(
        day=_day_from(entity["RowKey"], SPEND),
        calls=_int(entity["Calls"]),
        amount_minor=_int(entity["AmountMinor"]),
        charged_minor=_int(entity["ChargedMinor"]),
        etag=entity.metadata["etag"],
    )


def _marker_from(entity: dict[str, Any]) -> UsageMarker:
    return UsageMarker(
        usage_id=entity["UsageId"],
        amount_minor=_int(entity["AmountMinor"]),
        charged_minor=_int(entity["ChargedMinor"]),
        source=entity.get("Source", ""),
        at=entity["At"],
        started_at=entity.get("StartedAt"),
    )


def _account_entity(account: Account) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(account.tenant_id),
        "RowKey": ACCOUNT,
        "TenantId": account.tenant_id,
        "Currency": account.currency,
        "BalanceMinor": _int64(account.balance_minor),
        "LedgerSeq": _int64(account.ledger_seq),
        "Cards": json.dumps([asdict(card) for card in account.cards]),
        "Agreements": json.dumps(list(account.agreements)),
        "DefaultMethodId": account.default_method_id,
        "AutoRecharge": json.dumps(asdict(account.auto_recharge)),
        "Recharge": json.dumps(asdict(account.recharge)),
        "LowBalanceThresholds": json.dumps(list(account.low_balance_thresholds)),
        "RunwayThresholds": json.dumps(list(account.runway_thresholds)),
        "Runway": json.dumps(asdict(account.runway)),
        "LastPurchaseMinor": _int64(account.last_purchase_minor),
        "PaymentCustomer": account.payment_customer,
        "OwedMinor": _int64(account.owed_minor),
    }


def _account_from(entity: dict[str, Any]) -> Account:
    return Account(
        tenant_id=entity["TenantId"],
        currency=entity["Currency"],
        balance_minor=_int(entity["BalanceMinor"]),
        ledger_seq=_int(entity["LedgerSeq"]),
        cards=tuple(SavedCard(**card) for card in json.loads(entity.get("Cards") or "[]")),
        agreements=tuple(json.loads(entity.get("Agreements") or "[]")),
        default_method_id=entity.get("DefaultMethodId", ""),
        auto_recharge=AutoRecharge(**json.loads(entity.get("AutoRecharge") or "{}")),
        recharge=RechargeState(**json.loads(entity.get("Recharge") or "{}")),
        low_balance_thresholds=tuple(json.loads(entity.get("LowBalanceThresholds") or "[]")),
        runway_thresholds=tuple(json.loads(entity.get("RunwayThresholds") or "[]")),
        runway=_runway_from(entity.get("Runway")),
        last_purchase_minor=_int(entity.get("LastPurchaseMinor") or 0),
        payment_customer=entity.get("PaymentCustomer", ""),
        owed_minor=_int(entity.get("OwedMinor") or 0),
    )


def _runway_from(text: str | None) -> RunwayWatch:
    fields = json.loads(text or "{}")
    return RunwayWatch(**{**fields, "crossed": tuple(fields.get("crossed") or ())})


def _lot_entity(tenant_id: str, lot: Lot) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(tenant_id),
        "RowKey": LOT + lot.lot_id,
        "AmountMinor": _int64(lot.amount_minor),
        "RemainingMinor": _int64(lot.remaining_minor),
        "PurchasedAt": lot.purchased_at,
        "ExpiresAt": lot.expires_at,
        "OrderKey": lot.order_key,
    }


def _lot_from(entity: dict[str, Any]) -> Lot:
    return Lot(
        lot_id=entity["RowKey"][len(LOT) :],
        amount_minor=_int(entity["AmountMinor"]),
        remaining_minor=_int(entity["RemainingMinor"]),
        purchased_at=entity["PurchasedAt"],
        expires_at=entity["ExpiresAt"],
        order_key=entity.get("OrderKey", ""),
    )


def _ledger_key(seq: int) -> str:
    return f"{LEDGER}{_SEQ_CEILING - seq:019d}"


def _entry_entity(tenant_id: str, entry: LedgerEntry) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(tenant_id),
        "RowKey": _ledger_key(entry.seq),
        "Seq": _int64(entry.seq),
        "Kind": entry.kind.value,
        "AmountMinor": _int64(entry.amount_minor),
        "BalanceAfterMinor": _int64(entry.balance_after_minor),
        "LotId": entry.lot_id,
        "Actor": entry.actor,
        "Reference": entry.reference,
        "At": entry.at,
        # A line for a batch of calls: how many, and when the first and the last started.
        **(
            {
                "Calls": _int64(entry.calls),
                "FirstCall": entry.first_call,
                "LastCall": entry.last_call,
            }
            if entry.calls
            else {}
        ),
    }


def _entry_from(entity: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        seq=_int(entity["Seq"]),
        kind=EntryKind(entity["Kind"]),
        amount_minor=_int(entity["AmountMinor"]),
        balance_after_minor=_int(entity["BalanceAfterMinor"]),
        lot_id=entity["LotId"],
        actor=entity["Actor"],
        reference=entity["Reference"],
        at=entity["At"],
        calls=_int(entity.get("Calls") or 0),
        first_call=entity.get("FirstCall"),
        last_call=entity.get("LastCall"),
    )


def _order_key(key: str) -> str:
    return ORDER + escape_key(key)


def _order_entity(order: Order) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(order.tenant_id),
        "RowKey": _order_key(order.key),
        "TenantId": order.tenant_id,
        "Key": order.key,
        "AmountMinor": _int64(order.amount_minor),
        "Currency": order.currency,
        "Method": json.dumps(asdict(order.method)),
        "Kind": order.kind.value,
        "Actor": order.actor,
        "Status": order.status.value,
        "CreatedAt": order.created_at,
        "UpdatedAt": order.updated_at,
        "GatewayReference": order.gateway_reference,
        "FailureReason": order.failure_reason,
        "LotId": order.lot_id,
        "CheckoutReference": order.checkout_reference,
        "RefundedMinor": _int64(order.refunded_minor),
        "DisputedMinor": _int64(order.disputed_minor),
    }


def _order_from(entity: dict[str, Any]) -> Order:
    method = json.loads(entity["Method"])
    return Order(
        tenant_id=entity["TenantId"],
        key=entity["Key"],
        amount_minor=_int(entity["AmountMinor"]),
        currency=entity["Currency"],
        method=PaymentMethod(**{**method, "kind": MethodKind(method["kind"])}),
        kind=EntryKind(entity["Kind"]),
        actor=entity["Actor"],
        status=OrderStatus(entity["Status"]),
        created_at=entity["CreatedAt"],
        updated_at=entity["UpdatedAt"],
        gateway_reference=entity.get("GatewayReference", ""),
        failure_reason=entity.get("FailureReason", ""),
        lot_id=entity.get("LotId", ""),
        checkout_reference=entity.get("CheckoutReference", ""),
        refunded_minor=_int(entity.get("RefundedMinor") or 0),
        disputed_minor=_int(entity.get("DisputedMinor") or 0),
    )


def _insert_entity(tenant_id: str, record: OutboxEvent) -> dict[str, Any]:
    return {
        "PartitionKey": escape_key(tenant_id),
        "RowKey": OUTBOX + escape_key(record.event_id),
        "EventId": record.event_id,
        "Kind": record.kind.value,
        "At": record.at,
        "Data": json.dumps(record.data),
        "Delivered": False,
    }


def _event_from(entity: dict[str, Any]) -> OutboxEvent:
    return OutboxEvent(
        event_id=entity["EventId"],
        kind=EventKind(entity["Kind"]),
        at=entity["At"],
        data=json.loads(entity.get("Data") or "{}"),
    )
