"""Overlapping PSTN usage exports for each tenant, from the suite's export generator.

`tests/usage/generate.py` writes realistic exports (hostile names, other capabilities and
currencies, repeats, malformed rows); its charges run up to $50,000 a call, which would empty
any demo balance on the first row, so the account-currency amounts are scaled down to cents
and dollars. A tenant's usage is a sequence of chunks; each file is a window of consecutive
chunks, so files overlap their neighbours and the same calls arrive by several routes at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from decimal import ROUND_HALF_UP, Decimal

from credits.usage import ParseReport
from credits.usage_export import iter_export_rows
from tests.usage.generate import COLUMNS, write_export

CHUNK_ROWS = 120
SCALE = Decimal(10_000)
_AMOUNT = re.compile(r"[0-9]+\.[0-9]{2}")
_CHARGE, _FEE, _CURRENCY = (COLUMNS.index(c) for c in ("Charge", "Connection Fee", "Currency"))


class TenantUsage:
    def __init__(self, seed: int, tenant_index: int) -> None:
        self._seed = seed
        self._tenant = tenant_index
        self._chunks: list[list[list[str]]] = []

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
        return [_scaled(record[: len(COLUMNS)]) for record in records[1:]]


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
