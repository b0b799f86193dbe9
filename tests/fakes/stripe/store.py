"""Where the fake account keeps its objects, and what every change goes through: the events it
emits, the search index (with its lag), and `expand` when an object is rendered.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.stripe import objects, search
from tests.fakes.stripe.errors import invalid, no_such

LABELS = {
    "customer": "customer",
    "payment_method": "PaymentMethod",
    "checkout.session": "checkout.session",
    "payment_intent": "payment_intent",
    "setup_intent": "setupintent",
    "charge": "charge",
    "refund": "refund",
    "dispute": "dispute",
    "event": "event",
}
"""How Stripe names each kind in "No such …" errors."""

EXPANDABLE = {
    "checkout.session": {"customer", "payment_intent", "setup_intent", "line_items"},
    "payment_intent": {"customer", "payment_method", "latest_charge"},
    "setup_intent": {"customer", "payment_method"},
    "charge": {"customer", "payment_intent"},
    "refund": {"charge", "payment_intent"},
    "dispute": {"charge", "payment_intent"},
    "payment_method": {"customer"},
    "customer": {"invoice_settings"},
    "customer.invoice_settings": {"default_payment_method"},
}


@dataclass(frozen=True)
class Origin:
    """The API request behind a change; empty for the cardholder's page and test hooks."""

    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass
class Clock:
    """Unix time, which a test may move forward (to expire sessions, age search writes)."""

    offset: float = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@dataclass
class Store:
    api_version: str
    clock: Clock
    publish: Callable[[dict[str, Any]], None]
    """Called with every new event (the webhook deliveries)."""
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """A Checkout Session's items (Stripe shows them only when expanded or listed)."""
    search_lag: float = 0.0
    """Seconds before a write is visible to search (Stripe: usually under a minute)."""
    _index: dict[str, dict[str, list[tuple[float, dict]]]] = field(default_factory=dict)

    def now(self) -> int:
        return int(self.clock.now())

    def get(self, kind: str, object_id: str, *, param: str = "id", status: int = 404) -> dict:
        """The object, or Stripe's resource_missing: 404 for the path's, 400 for a param's."""
        obj = self.objects.get(object_id)
        if obj is None or obj.get("object") != kind:
            raise no_such(LABELS[kind], object_id, param=param, status=status)
        return obj

    def of_kind(self, kind: str, where: Callable[[dict], bool] = lambda _: True) -> list[dict]:
        """Objects of a kind, newest first, as Stripe lists them."""
        found = [obj for obj in self.objects.values() if obj.get("object") == kind and where(obj)]
        return found[::-1]

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        self._reindex(obj)
        return obj

    def change(self, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """Set fields; the previous values of those that changed (`previous_attributes`)."""
        previous = {name: obj.get(name) for name, value in fields.items() if obj.get(name) != value}
        obj.update(fields)
        if previous:
            self._reindex(obj)
        return previous

    def emit(
        self,
        type_: str,
        obj: dict[str, Any],
        origin: Origin,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        event = objects.event(
            self.now(),
            type_=type_,
            data_object=copy.deepcopy(obj),
            previous_attributes=copy.deepcopy(previous) if previous is not None else None,
            api_version=self.api_version,
            request_id=origin.request_id,
            idempotency_key=origin.idempotency_key,
        )
        self.objects[event["id"]] = event
        self.events.append(event)
        self.publish(event)
        return event

    # --- search ---------------------------------------------------------------------------

    def _reindex(self, obj: dict[str, Any]) -> None:
        if obj["object"] in search.SEARCH_FIELDS:
            versions = self._index.setdefault(obj["object"], {}).setdefault(obj["id"], [])
            versions.append((self.clock.now() + self.search_lag, copy.deepcopy(obj)))

    def search(self, kind: str, query: str) -> list[dict[str, Any]]:
        """Objects whose latest version visible to search matches, newest first."""
        matches = search.parse(query, kind)
        now = self.clock.now()
        found = []
        for object_id, versions in self._index.get(kind, {}).items():
            visible = [version for at, version in versions if at <= now]
            if visible and matches(visible[-1]):
                found.append(self.objects[object_id])
        return found[::-1]

    # --- rendering ------------------------------------------------------------------------

    def render(self, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        """A copy of `obj` with the `expand` paths replaced by the objects they name."""
        out = copy.deepcopy(obj)
        for path in expand:
            segments = path.split(".")
            if len(segments) > 4:
                raise invalid("You cannot expand more than 4 levels of a property.", param="expand")
            self._expand(out, segments, path, out.get("object", ""))
        return out

    def _expand(self, node: dict[str, Any], segments: list[str], path: str, kind: str) -> None:
        head, rest = segments[0], segments[1:]
        if kind in ("list", "search_result") and head == "data":
            for item in node["data"]:
                if rest:
                    self._expand(item, rest, path, item.get("object", ""))
            return
        if head not in EXPANDABLE.get(kind, ()):
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
        if kind == "checkout.session" and head == "line_items":
            node[head] = objects.page(
                "list",
                copy.deepcopy(self.line_items[node["id"]]),
                url=f"/v1/checkout/sessions/{node['id']}/line_items",
                has_more=False,
            )
        elif isinstance(node.get(head), str):
            node[head] = copy.deepcopy(self.objects[node[head]])
        target = node.get(head)
        if rest and isinstance(target, dict):
            self._expand(target, rest, path, target.get("object") or f"{kind}.{head}")
