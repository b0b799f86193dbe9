"""Overlapping PSTN usage exports for each tenant, from the suite's export generator.

`tests/usage/generate.py` writes realistic exports (hostile names, other capabilities and
currencies, repeats, malformed rows); its charges run up to $50,000 a call, which would empty
any demo balance on the first row, so the account-currency amounts are scaled down to cents
and dollars. A tenant's usage is a sequence of chunks; each file is a window of consecutive
chunks, so files overlap their neighbours and the same calls arrive by several routes at once.

The generator dates its calls in the 90 days from `EPOCH`; they are moved, by whole days, to end
yesterday, so that they count in the daily spend the runway forecast reads (calls of 2024 would
make every forecast "no spend", and runway alerts would never be raised under chaos).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from credits.usage import ParseReport
from credits.usage_export import iter_export_rows
from tests.usage.generate import COLUMNS, EPOCH, write_export

CHUNK_ROWS = 120
SCALE = Decimal(10_000)
_AMOUNT = re.compile(r"[0-9]+\.[0-9]{2}")
_CHARGE, _FEE, _CURRENCY = (COLUMNS.index(c) for c in ("Charge", "Connection Fee", "Currency"))
_TIMES = (COLUMNS.index("Start Time"), COLUMNS.index("End Time"))
# The generator's calls span 90 days (and a call lasts at most two hours).
GENERATED_DAYS = 91


class TenantUsage:
    def __init__(self, seed: int, tenant_index: int) -> None:
        self._seed = seed
        self._tenant = tenant_index
        self._chunks: list[list[list[str]]] = []
        today = datetime.now(UTC).date()
        self._shift = (today - timedelta(days=GENERATED_DAYS)) - EPOCH.date()

    def file(self, first_chunk: int, chunks: int) -> bytes:
        """The export holding chunks first_chunk .. first_chunk + chunks - 1."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for index in range(first_chunk, first_chunk + chunks):
            writer.writerows(self._chunk(index))
        return out.getvalue().encode("utf-8")

    def _chunk(self, index: int) -> list[list[str]]:
        while len(self._chunks) <= index:
            self._chunks.append(self._generate(len(self._chunks)))
        return self._chunks[index]

    def _generate(self, index: int) -> list[list[str]]:
        digest = hashlib.sha256(f"{self._seed}/{self._tenant}/{index}".encode()).digest()
        raw = io.BytesIO()
        write_export(raw, CHUNK_ROWS, seed=int.from_bytes(digest[:8], "big"))
        records = list(csv.reader(io.StringIO(raw.getvalue().decode("utf-8"), newline="")))
        return [self._recent(_scaled(record[: len(COLUMNS)])) for record in records[1:]]

    def _recent(self, record: list[str]) -> list[str]:
        """The record with its times moved by whole days (the date at the front of the text,
        so the form and offset stay as generated); a malformed time stays as it is."""
        for column in _TIMES:
            text = record[column]
            try:
                day = date.fromisoformat(text[:10])
            except ValueError:
                continue
            record[column] = (day + self._shift).isoformat() + text[10:]
        return record


def _scaled(record: list[str]) -> list[str]:
    if record[_CURRENCY] != "USD":
        return record
    for column in (_CHARGE, _FEE):
        if _AMOUNT.fullmatch(record[column]):
            amount = (Decimal(record[column]) / SCALE).quantize(Decimal("0.01"), ROUND_HALF_UP)
            record[column] = f"{amount:.2f}"
    return record


def chargeable_ids(body: bytes) -> set[str]:
    """The UsageIds the service must mark when it imports this file (its own parser)."""
    return {row.usage_id for row in iter_export_rows(io.BytesIO(body), account_currency="USD",
                                                     report=ParseReport())}  # fmt: skip
