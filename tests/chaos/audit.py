"""After the chaos: wait for the background jobs to settle, then audit the tables directly.

The tables are read with the azure-data-tables client by their own property names, not through
the service's repositories, so a mistake in the service's mapping cannot hide a breach. Each
check is one line, PASS or FAIL, with what it counted and its first offenders.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.data.tables.aio import TableServiceClient

from credits.usage_days import ID_BYTES, usage_key
from storage.tables import TableNames
from tests.chaos.driver import ImportRun
from tests.chaos.exports import chargeable_ids

SHOWN = 5
CREDIT_KINDS = ("purchase", "recharge")
FINAL_DELIVERY_STATES = {"delivered", "superseded", "unconfirmed", "dead", "gone"}
# What an instance's log may never say, and what it says when something unexpected failed.
NEVER_LOGGED = ("InvariantViolation",)
UNEXPECTED = re.compile(r" ERROR .*(turn failed|job \S+ failed|dispatch failed|pass failed)")


@dataclass
class Check:
    name: str
    summary: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Evidence:
    """What the driver and the fake connector saw, to hold the tables against."""

    tenants: list[str]
    accepted: dict[str, int]
    """Alert posts answered 201, by message id."""
    killed_mid_send: set[str]
    """Message ids claimed (or held open) when their sender was killed."""
    imports: list[ImportRun]
    pressed: list[tuple[str, str]]
    removed: set[str]
    logs: list[Path]


class Tables:
    def __init__(self, service: TableServiceClient, prefix: str) -> None:
        self._service = service
        self.names = TableNames(prefix)

    async def rows(self, table: str, query: str, **parameters: Any) -> list[dict[str, Any]]:
        client = self._service.get_table_client(table)
        return [e async for e in client.query_entities(query, parameters=parameters)]

    async def prefixed(self, table: str, prefix: str, extra: str = "", **parameters: Any):
        query = "RowKey ge @lo and RowKey lt @hi" + (f" and {extra}" if extra else "")
        high = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return await self.rows(table, query, lo=prefix, hi=high, **parameters)

    async def sending(self) -> set[str]:
        """Message ids of deliveries claimed and not yet recorded, across tenants."""
        rows = await self.prefixed(self.names.alerts, "d-", "State eq @s", s="sending")
        return {_message_id(row) for row in rows}


def _message_id(delivery: dict[str, Any]) -> str:
    return delivery["RowKey"].split("-", 2)[2]  # d-<inverted time>-<message id>


def _int(value: Any) -> int:
    return int(getattr(value, "value", value))


# --- settling ---------------------------------------------------------------------------------


async def open_work(tables: Tables) -> Counter[str]:
    """What the background jobs still have to do: pending orders, due recharges, alerts."""
    names = tables.names
    left: Counter[str] = Counter()
    pending = await tables.prefixed(names.credits, "order-", "Status eq @p", p="pending")
    left["pending orders"] = len(pending)
    for account in await tables.rows(names.credits, "RowKey eq 'account'"):
        recharge = json.loads(account.get("Recharge") or "{}")
        enabled = json.loads(account.get("AutoRecharge") or "{}").get("enabled")
        if enabled and recharge.get("due_key"):
            left["recharges due"] += 1
    unfanned = await tables.prefixed(names.credits, "outbox-", "Delivered eq false")
    left["alert events not fanned out"] = len(unfanned)
    deliveries = await tables.prefixed(
        names.alerts, "d-", "( State eq @p or State eq @s )", p="pending", s="sending"
    )
    left["alert messages not finished"] = len(deliveries)
    return +left


async def settle(tables: Tables, limit: float) -> tuple[float, Counter[str]]:
    """Poll until the jobs have nothing left (twice in a row), or `limit` seconds pass."""
    started = time.monotonic()
    quiet = 0
    while True:
        left = await open_work(tables)
        quiet = quiet + 1 if not left else 0
        elapsed = time.monotonic() - started
        if quiet >= 2 or elapsed > limit:
            return elapsed, left
        await asyncio.sleep(2.0)


# --- the audit --------------------------------------------------------------------------------


@dataclass
class Books:
    """One tenant's rows, as stored."""

    account: dict[str, Any]
    lots: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    buckets: list[dict[str, Any]]
    """The charged UsageIds, 16 bytes each, per day of call start (`ids-<yyyymmdd>-<n>`)."""
    spend: list[dict[str, Any]]
    """Each day's calls and what was charged for them (`spend-<yyyymmdd>`)."""
    markers: list[dict[str, Any]]
    """Per-call markers of the layout before buckets: none may be left once usage ran."""
    outbox: list[dict[str, Any]]
    charges: dict[str, dict[str, Any]]
    """Sandbox charge records by order key."""
    deliveries: list[dict[str, Any]]


async def read_books(tables: Tables, tenant: str) -> Books:
    names = tables.names
    rows = await tables.rows(names.credits, "PartitionKey eq @pk", pk=tenant)
    by_prefix: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_prefix[row["RowKey"].split("-", 1)[0]].append(row)
    [account] = by_prefix["account"]
    records = await tables.rows(names.sandbox_payments, "PartitionKey eq @pk", pk=tenant)
    charges = {
        _unescape(row["RowKey"]).removeprefix("charge:"): json.loads(row["Record"])
        for row in records
        if _unescape(row["RowKey"]).startswith("charge:")
    }
    deliveries = await tables.rows(names.alerts, "PartitionKey eq @pk", pk=tenant)
    return Books(
        account=account,
        lots=by_prefix["lot"],
        entries=sorted(by_prefix["ledger"], key=lambda e: _int(e["Seq"])),
        orders=by_prefix["order"],
        buckets=by_prefix["ids"],
        spend=by_prefix["spend"],
        markers=by_prefix["usage"],
        outbox=by_prefix["outbox"],
        charges=charges,
        deliveries=[d for d in deliveries if d["RowKey"].startswith("d-")],
    )


def _unescape(key: str) -> str:
    return re.sub(r"\*([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), key)


async def audit(tables: Tables, evidence: Evidence, left: Counter[str]) -> list[Check]:
    books = {tenant: await read_books(tables, tenant) for tenant in evidence.tenants}
    return [
        Check(
            "the background jobs settled (orders booked, recharges placed, alerts finished)",
            "nothing left"
            if not left
            else "left: " + ", ".join(f"{n} {k}" for k, n in left.items()),
            [f"{n} {k}" for k, n in left.items()],
        ),
        check_ledger(books),
        check_charges(books),
        check_orders(books, evidence),
        check_usage(books),
        check_imports(books, evidence),
        check_recharges(books),
        check_alert_events(books, evidence),
        check_alert_messages(books, evidence),
        check_logs(evidence),
    ]


def check_ledger(books: dict[str, Books]) -> Check:
    problems = []
    entries = 0
    for tenant, b in books.items():
        balance = _int(b.account["BalanceMinor"])
        lots = sum(_int(lot["RemainingMinor"]) for lot in b.lots)
        ledger = sum(_int(e["AmountMinor"]) for e in b.entries)
        entries += len(b.entries)
        if not balance == lots == ledger or balance < 0:
            problems.append(f"{tenant}: balance {balance}, lots {lots}, ledger {ledger}")
        for lot in b.lots:
            if not 0 <= _int(lot["RemainingMinor"]) <= _int(lot["AmountMinor"]):
                problems.append(f"{tenant}: {lot['RowKey']} remainder out of bounds")
        running = 0
        for expected_seq, entry in enumerate(b.entries, start=1):
            running += _int(entry["AmountMinor"])
            if _int(entry["Seq"]) != expected_seq or _int(entry["BalanceAfterMinor"]) != running:
                problems.append(f"{tenant}: ledger entry {entry['Seq']} does not follow on")
                break
        if _int(b.account["LedgerSeq"]) != len(b.entries):
            problems.append(f"{tenant}: LedgerSeq {b.account['LedgerSeq']} vs {len(b.entries)}")
    return Check(
        "ledger invariant per tenant: balance = lot remainders = ledger sum, within bounds",
        f"{len(books)} tenants, {entries:,} ledger entries",
        problems,
    )


def check_charges(books: dict[str, Books]) -> Check:
    problems = []
    succeeded = declined = 0
    for tenant, b in books.items():
        credits: dict[str, list[int]] = defaultdict(list)
        for entry in b.entries:
            if entry["Kind"] in CREDIT_KINDS:
                credits[entry["Reference"]].append(_int(entry["AmountMinor"]))
        for key, record in b.charges.items():
            if record["outcome"]["status"] == "succeeded":
                succeeded += 1
                amount = record["request"]["amount_minor"]
                if credits.get(key) != [amount]:
                    problems.append(f"{tenant}: charge {key} of {amount} booked {credits.get(key)}")
            else:
                declined += 1
                if key in credits:
                    problems.append(f"{tenant}: declined charge {key} booked")
        for key, amounts in credits.items():
            record = b.charges.get(key)
            if record is None or record["outcome"]["status"] != "succeeded":
                problems.append(f"{tenant}: {amounts} booked as {key} without a charge")
    return Check(
        "each gateway charge booked exactly once, and no booking without a charge",
        f"{succeeded} charges succeeded, {declined} declined",
        problems,
    )


def check_orders(books: dict[str, Books], evidence: Evidence) -> Check:
    problems = []
    statuses: Counter[str] = Counter()
    for tenant, b in books.items():
        lots = {lot["RowKey"].removeprefix("lot-"): lot for lot in b.lots}
        for order in b.orders:
            statuses[order["Status"]] += 1
            if order["Status"] == "pending":
                problems.append(f"{tenant}: order {order['Key']} still pending")
            if order["Status"] == "succeeded":
                lot = lots.get(order.get("LotId", ""))
                if lot is None or _int(lot["AmountMinor"]) != _int(order["AmountMinor"]):
                    problems.append(f"{tenant}: order {order['Key']} has no lot of its amount")
    keys = {(tenant, order["Key"]) for tenant, b in books.items() for order in b.orders}
    unplaced = sum(1 for pressed in evidence.pressed if pressed not in keys)
    return Check(
        "every order ends succeeded or failed, each succeeded order with its own lot",
        f"{sum(statuses.values())} orders ({dict(statuses)}); {len(evidence.pressed)} "
        f"confirmations pressed, {unplaced} never placed (the form was lost to a kill or to a "
        "concurrent turn's state)",
        problems,
    )


def charged_ids(b: Books) -> Counter[bytes]:
    """How many times each UsageId is kept in the tenant's day buckets (once, in sound books)."""
    counts: Counter[bytes] = Counter()
    for bucket in b.buckets:
        ids = bytes(bucket["Ids"])
        counts.update(ids[at : at + ID_BYTES] for at in range(0, len(ids), ID_BYTES))
    return counts


def check_usage(books: dict[str, Books]) -> Check:
    problems = []
    kept = charged = 0
    for tenant, b in books.items():
        counts = charged_ids(b)
        kept += len(counts)
        twice = [key.hex() for key, n in counts.items() if n > 1]
        if twice:
            problems.append(f"{tenant}: {len(twice)} calls kept twice, e.g. {twice[0]}")
        days: Counter[str] = Counter()
        for bucket in b.buckets:
            days[bucket["RowKey"][4:12]] += len(bytes(bucket["Ids"])) // ID_BYTES
        for spend in b.spend:
            day = spend["RowKey"][6:]
            calls, got = _int(spend["Calls"]), _int(spend["ChargedMinor"])
            charged += got
            if days.pop(day, 0) != calls or not 0 <= got <= _int(spend["AmountMinor"]):
                problems.append(f"{tenant}: day {day} keeps other calls than it counts")
        problems += [f"{tenant}: day {day} has calls but no spend row" for day in days]
        drawn = -sum(_int(e["AmountMinor"]) for e in b.entries if e["Kind"] == "usage")
        spent = sum(_int(spend["ChargedMinor"]) for spend in b.spend)
        if drawn != spent:
            problems.append(f"{tenant}: usage lines draw {drawn}, the days charged {spent}")
        if b.markers:
            problems.append(f"{tenant}: {len(b.markers)} per-call markers were never moved")
    return Check(
        "each UsageId charged once: kept once in its day, the days add up to the usage lines",
        f"{kept:,} calls kept, {charged / 100:,.2f} charged",
        problems,
    )


def check_imports(books: dict[str, Books], evidence: Evidence) -> Check:
    problems = []
    outcomes: Counter[str] = Counter()
    kept = {tenant: set(charged_ids(b)) for tenant, b in books.items()}
    for run in evidence.imports:
        outcomes[f"{run.route} {run.outcome}"] += 1
        if run.outcome in ("killed", "refused"):
            continue
        if run.outcome != "completed":
            problems.append(f"{run.route} import {run.name} {run.outcome}: {run.detail}")
            continue
        missing = {usage_key(u) for u in chargeable_ids(run.body)} - kept[run.tenant_id]
        if missing:
            problems.append(f"{run.route} import {run.name}: {len(missing)} calls not kept")
    return Check(
        "every import that was not killed completed, and kept every call it holds",
        ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())),
        problems,
    )


def check_recharges(books: dict[str, Books]) -> Check:
    problems = []
    crossings = booked = 0
    for tenant, b in books.items():
        by_crossing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for order in b.orders:
            if order["Kind"] == "recharge":
                by_crossing[order["Key"].rsplit("-a", 1)[0]].append(order)
        seqs = {_int(e["Seq"]): e for e in b.entries}
        for crossing, orders in by_crossing.items():
            crossings += 1
            won = [o for o in orders if o["Status"] == "succeeded"]
            booked += len(won)
            if len(won) > 1:
                problems.append(f"{tenant}: {crossing} recharged {len(won)} times")
            debit = seqs.get(int(crossing.removeprefix("recharge-")))
            if debit is None or debit["Kind"] not in ("usage", "expiry"):
                problems.append(f"{tenant}: {crossing} names no debit in the ledger")
        entries = sum(1 for e in b.entries if e["Kind"] == "recharge")
        if entries != sum(
            1 for o in b.orders if o["Kind"] == "recharge" and o["Status"] == "succeeded"
        ):
            problems.append(f"{tenant}: {entries} recharge entries for its succeeded recharges")
    return Check(
        "one recharge per crossing, each crossing named by the debit that caused it",
        f"{crossings} crossings, {booked} recharges booked",
        problems,
    )


def check_alert_events(books: dict[str, Books], evidence: Evidence) -> Check:
    problems = []
    kinds: Counter[str] = Counter()
    silent = 0
    for tenant, b in books.items():
        with_deliveries = {d["EventId"] for d in b.deliveries}
        for event in b.outbox:
            kinds[event["Kind"]] += 1
            if not event.get("Delivered"):
                problems.append(f"{tenant}: event {event['EventId']} never fanned out")
            elif event["EventId"] not in with_deliveries:
                silent += 1
                if tenant not in evidence.removed:
                    problems.append(f"{tenant}: event {event['EventId']} reached nobody")
    return Check(
        "every alert event fanned out to the admin (none silent unless the chat was removed)",
        f"{sum(kinds.values())} events ({', '.join(f'{n} {k}' for k, n in kinds.most_common())})"
        f"; {silent} reached nobody",
        problems,
    )


def check_alert_messages(books: dict[str, Books], evidence: Evidence) -> Check:
    problems = []
    states: Counter[str] = Counter()
    known: set[str] = set()
    for tenant, b in books.items():
        for delivery in b.deliveries:
            message = _message_id(delivery)
            known.add(message)
            state = delivery["State"]
            states[state] += 1
            accepted = evidence.accepted.get(message, 0)
            where = f"{tenant}: {delivery['EventId']} → {message}"
            if state not in FINAL_DELIVERY_STATES:
                problems.append(f"{where} left {state}")
            elif state == "delivered" and accepted != 1:
                problems.append(f"{where} delivered, but posted {accepted} times")
            elif state == "unconfirmed":
                if message not in evidence.killed_mid_send:
                    problems.append(f"{where} unconfirmed, but its sender was not killed mid-send")
                if accepted > 1:
                    problems.append(f"{where} unconfirmed, posted {accepted} times")
            elif state in ("superseded", "dead", "gone") and accepted:
                problems.append(f"{where} {state}, but posted {accepted} times")
    for message in set(evidence.accepted) - known:
        problems.append(f"{message} posted, but no delivery records it")
    return Check(
        "each alert message posted at most once: delivered once, or unconfirmed only where "
        "its sender was killed mid-send",
        ", ".join(f"{n} {k}" for k, n in states.most_common())
        + f"; {len(evidence.killed_mid_send)} messages in flight at kills",
        problems,
    )


def check_logs(evidence: Evidence) -> Check:
    problems = []
    errors = 0
    for path in evidence.logs:
        for line in path.read_text(errors="replace").splitlines():
            if " ERROR " in line:
                errors += 1
            if any(word in line for word in NEVER_LOGGED) or UNEXPECTED.search(line):
                problems.append(f"{path.name}: {line[:240]}")
    return Check(
        "no invariant violation and no unexpected failure in any log",
        f"{len(evidence.logs)} logs, {errors} ERROR lines",
        problems,
    )
