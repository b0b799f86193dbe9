"""Pages of Graph's getPstnCalls as the domain reads them: amounts only as Decimals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from credits.usage import ParseReport, iter_graph_rows, parse_graph_page
from tests.fakes.graph_pstn import pstn_row

START = datetime(2024, 1, 1, tzinfo=UTC)


def test_a_page_parsed_with_floats_is_refused_loudly() -> None:
    row = pstn_row(start=START, charge=Decimal("0.1"))
    page = json.loads(json.dumps({"value": [row]}, default=float))  # the mistake: floats
    assert isinstance(page["value"][0]["charge"], float)
    with pytest.raises(TypeError):
        list(iter_graph_rows(page, account_currency="USD", report=ParseReport()))


def test_parse_graph_page_keeps_decimal_text_and_refuses_nan() -> None:
    page = parse_graph_page(b'{"value": [{"charge": 0.1, "connectionCharge": 0.040}]}')
    assert page["value"][0]["charge"] == Decimal("0.1")
    assert isinstance(page["value"][0]["connectionCharge"], Decimal)
    for body in (b'{"value": [{"charge": NaN}]}', b"[1]", b"\xff\xfe", b"{"):
        with pytest.raises(ValueError):
            parse_graph_page(body)
