"""Stripe's form encoding of parameters, decoded, and the checks Stripe makes on their values.

Stripe's v1 API takes `application/x-www-form-urlencoded` bodies (and query strings) with
bracket notation for nesting: `metadata[tenant_id]=t1`, `line_items[0][price_data][currency]=usd`,
`expand[]=payment_intent` (the Python SDK writes arrays as `expand[0]=…`; both are accepted).
An empty value (`metadata[key]=`) means "unset" to Stripe; it decodes to "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tests.fakes.stripe.errors import invalid, unknown_parameter

_NAME = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

FREE = "free-form hash"
"""A schema leaf whose keys are the caller's (metadata)."""


class Each:
    """A schema for an array whose items follow `item`."""

    def __init__(self, item: Any = None) -> None:
        self.item = item


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The nested parameters of a form body or query string, as Stripe reads them."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        match = _NAME.match(name)
        if match is None:
            raise invalid(f"Invalid parameter name: {name}")
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node = root
        for depth, segment in enumerate(path[:-1]):
            child = node.get(segment) if segment else None
            if segment == "":
                segment = str(len(node))
            if child is None:
                child = node[segment] = {}
            if not isinstance(child, dict):
                raise invalid(f"Invalid hash: {'.'.join(path[: depth + 1])}")
            node = child
        last = path[-1] if path[-1] else str(len(node))
        if isinstance(node.get(last), dict):
            raise invalid(f"Invalid hash: {name}")
        node[last] = value
    return _arrays(root, under_free_hash=False)


def _arrays(node: dict[str, Any], *, under_free_hash: bool) -> Any:
    """Hashes keyed 0..n-1 are arrays (except inside metadata, whose keys are the caller's)."""
    for key, value in list(node.items()):
        if isinstance(value, dict):
            node[key] = _arrays(value, under_free_hash=key == "metadata")
    if under_free_hash or not node or not all(key.isdigit() for key in node):
        return node
    indexes = sorted(int(key) for key in node)
    if indexes != list(range(len(indexes))):
        raise invalid("Invalid array: indexes must start at 0 and be contiguous.")
    return [node[str(index)] for index in indexes]


def check_known(params: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "") -> None:
    """Stripe refuses any parameter it does not know (`parameter_unknown`)."""
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in schema:
            raise unknown_parameter(name)
        rule = schema[key]
        if rule is FREE or rule is None:
            continue
        if isinstance(rule, Each):
            if not isinstance(value, list):
                raise invalid(f"Invalid array: {name}", param=name)
            if isinstance(rule.item, dict):
                for index, item in enumerate(value):
                    if not isinstance(item, dict):
                        raise invalid(f"Invalid hash: {name}[{index}]", param=f"{name}[{index}]")
                    check_known(item, rule.item, f"{name}[{index}]")
            continue
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {name}", param=name)
        check_known(value, rule, name)


def string(params: Mapping[str, Any], name: str, *, max_length: int = 5000) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name}", param=name)
    if len(value) > max_length:
        raise invalid(
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            param=name,
        )
    return value


def integer(params: Mapping[str, Any], name: str, *, label: str | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(f"Invalid integer: {value}", param=label or name)
    return int(value)


def boolean(params: Mapping[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", param=name)
    return value == "true"


def one_of(params: Mapping[str, Any], name: str, allowed: Iterable[str]) -> str | None:
    value = string(params, name)
    options = list(allowed)
    if value is not None and value not in options:
        raise invalid(
            f"Invalid {name}: must be one of {', '.join(options[:-1])}, or {options[-1]}",
            param=name,
        )
    return value


def strings(params: Mapping[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if value == "":
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(f"Invalid array: {name}", param=name)
    return value


def metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Metadata as Stripe limits it: at most 50 keys, keys up to 40 and values up to 500
    characters, no square brackets in keys. "" for the whole hash or a value means unset."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {param}", param=param)
    if len(value) > 50:
        raise invalid("You can only specify up to 50 metadata keys.", param=param)
    for key, item in value.items():
        if len(key) > 40:
            raise invalid(
                f"Metadata keys can have up to 40 characters: '{key}' has {len(key)}.",
                param=f"{param}[{key}]",
            )
        if not isinstance(item, str):
            raise invalid(f"Invalid string: {param}[{key}]", param=f"{param}[{key}]")
        if len(item) > 500:
            raise invalid(
                f"Metadata values can have up to 500 characters, but '{key}' has {len(item)}.",
                param=f"{param}[{key}]",
            )
    return dict(value)


def merged_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """An update's metadata merges into the current one; "" unsets a key (or, whole, all)."""
    if update == "":
        return {}
    changes = metadata(update)
    result = dict(current)
    for key, value in changes.items():
        if value == "":
            result.pop(key, None)
        else:
            result[key] = value
    if len(result) > 50:
        raise invalid("You can only specify up to 50 metadata keys.", param="metadata")
    return result


# --- values with Stripe's own rules ---------------------------------------------------------

# Minimum charge amounts in minor units (Stripe: about $0.50); other currencies use 50.
MINIMUM_AMOUNT = {"usd": 50, "eur": 50, "gbp": 30, "brl": 50, "cad": 50, "aud": 50, "jpy": 50}
MAXIMUM_AMOUNT = 99_999_999
CURRENCIES = {
    "usd", "eur", "gbp", "brl", "cad", "aud", "chf", "cny", "jpy", "mxn", "rub", "sek", "nok",
    "dkk", "pln", "czk", "huf", "inr", "nzd", "sgd", "hkd",
}  # fmt: skip
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email(params: Mapping[str, Any], name: str = "email") -> str | None:
    value = string(params, name, max_length=512)
    if value and not _EMAIL.match(value):
        raise invalid(f"Invalid email address: {value}", param=name, code="email_invalid")
    return value or None


def url(params: Mapping[str, Any], name: str) -> str | None:
    value = string(params, name, max_length=5000)
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise invalid("Not a valid URL", param=name, code="url_invalid")
    return value or None


def currency(params: Mapping[str, Any], name: str, *, label: str | None = None) -> str | None:
    value = string(params, name)
    if value is None:
        return None
    if value.lower() not in CURRENCIES:
        raise invalid(f"Invalid currency: {value}.", param=label or name)
    return value.lower()


def check_amount(amount: int, currency: str, *, param: str) -> None:
    minimum = MINIMUM_AMOUNT.get(currency, 50)
    if amount < minimum:
        raise invalid(
            f"Amount must be at least {minimum} in the smallest unit of {currency}.",
            param=param,
            code="amount_too_small",
        )
    if amount > MAXIMUM_AMOUNT:
        raise invalid(
            f"Amount must be no more than {MAXIMUM_AMOUNT} in the smallest unit of {currency}.",
            param=param,
            code="amount_too_large",
        )


def descriptor_suffix(params: Mapping[str, Any]) -> str | None:
    value = string(params, "statement_descriptor_suffix")
    if value and len(value) > 22:
        raise invalid(
            "The statement descriptor suffix must be at most 22 characters.",
            param="statement_descriptor_suffix",
        )
    return value or None


def card_only(params: Mapping[str, Any]) -> None:
    for name in ("payment_method_types", "allowed_payment_method_types"):
        if (strings(params, name) or ["card"]) != ["card"]:
            raise invalid("The fake models card payments only.", param=name)
