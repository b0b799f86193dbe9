"""A subset of Stripe's search query language (the `query` of `/v1/*/search`).

A query is clauses `field:value`, `-field:value` (negated), `field~"substr"` (substring, at
least 3 characters), `field>n` / `<` / `>=` / `<=` (numbers), joined by spaces or `AND`, or by
`OR` (case insensitive; AND and OR cannot be mixed), at most 10 clauses. Values are quoted with
'…' or "…", or bare numbers; `null` matches a missing value. Metadata is
`metadata['key']:'value'`. Exact string matches ignore case here (a choice of the fake).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.stripe.errors import invalid

SEARCH_FIELDS = {
    "customer": {"created", "email", "metadata", "name", "phone"},
    "payment_intent": {"amount", "created", "currency", "customer", "metadata", "status"},
    "charge": {
        "amount",
        "created",
        "currency",
        "customer",
        "disputed",
        "metadata",
        "payment_method_details.card.last4",
        "refunded",
        "status",
    },
}

_CLAUSE = re.compile(
    r"""\s*(?P<negated>-)?
    (?P<field>metadata\[(?:'[^']*'|"[^"]*")\]|[a-z_][a-z0-9_.]*)
    (?P<op>:|~|>=|<=|>|<)
    (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)
    \s*""",
    re.VERBOSE,
)
_JOINER = re.compile(r"\s*\b(AND|OR)\b\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    negated: bool
    field: str
    op: str
    value: str | float | None

    def matches(self, obj: dict[str, Any]) -> bool:
        return self._test(obj) != self.negated

    def _test(self, obj: dict[str, Any]) -> bool:
        actual = _field(obj, self.field)
        if self.value is None:
            return actual is None
        if self.op == ":":
            if isinstance(self.value, float):
                return isinstance(actual, int | float) and actual == self.value
            return str(actual).lower() == self.value.lower() if actual is not None else False
        if self.op == "~":
            return actual is not None and str(self.value).lower() in str(actual).lower()
        if not isinstance(actual, int | float) or not isinstance(self.value, float):
            return False
        compare: dict[str, Callable[[float, float], bool]] = {
            ">": lambda a, b: a > b,
            "<": lambda a, b: a < b,
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
        }
        return compare[self.op](actual, self.value)


def _field(obj: dict[str, Any], field: str) -> Any:
    if field.startswith("metadata["):
        return obj.get("metadata", {}).get(field[10:-2])
    node: Any = obj
    for part in field.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def parse(query: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate for the objects of `kind` that `query` selects; 400 if it is not valid."""
    clauses: list[Clause] = []
    joiners: set[str] = set()
    position = 0
    text = query.strip()
    while position < len(text):
        if clauses:
            joiner = _JOINER.match(text, position)
            if joiner:
                joiners.add(joiner.group(1).upper())
                position = joiner.end()
            else:
                joiners.add("AND")  # a space joins with AND
        match = _CLAUSE.match(text, position)
        if match is None:
            raise invalid(f"Unsupported query syntax near: {text[position:][:30]!r}", param="query")
        clauses.append(_clause(match, kind))
        position = match.end()
    if not clauses:
        raise invalid("A search query needs at least one clause.", param="query")
    if len(clauses) > 10:
        raise invalid("A search query can have at most 10 clauses.", param="query")
    if len(joiners) > 1:
        raise invalid("AND and OR cannot be combined in one search query.", param="query")
    if joiners == {"OR"}:
        return lambda obj: any(clause.matches(obj) for clause in clauses)
    return lambda obj: all(clause.matches(obj) for clause in clauses)


def _clause(match: re.Match[str], kind: str) -> Clause:
    field = match.group("field")
    base = "metadata" if field.startswith("metadata[") else field
    if base not in SEARCH_FIELDS[kind]:
        raise invalid(f"Field '{field}' is not a supported search field.", param="query")
    raw = match.group("value")
    op = match.group("op")
    value: str | float | None
    if raw[0] in "'\"":
        value = re.sub(r"\\(.)", r"\1", raw[1:-1])
    elif raw == "null":
        value = None
    else:
        try:
            value = float(raw)
        except ValueError:
            value = raw
    if op == "~" and (not isinstance(value, str) or len(value) < 3):
        raise invalid("Substring matching needs at least 3 characters.", param="query")
    if op in (">", "<", ">=", "<=") and not isinstance(value, float):
        raise invalid(f"Comparator {op} needs a number.", param="query")
    if base == "metadata":
        field = "metadata['" + field[10:-2] + "']"
    return Clause(bool(match.group("negated")), field, op, value)
