"""The API's endpoints: each turns a request's parameters into an operation of the account
and returns the object (or list) to render. Lists and search results are paged as Stripe pages
them (`limit`, `starting_after`, `ending_before`; search's `page` / `next_page`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.stripe import forms
from tests.fakes.stripe.account import Account
from tests.fakes.stripe.errors import invalid, no_such
from tests.fakes.stripe.objects import page
from tests.fakes.stripe.store import Origin


@dataclass(frozen=True)
class Call:
    """What an endpoint gets: the decoded parameters (without `expand`), the path's parts,
    the request behind it (for events) and the address the API was called on."""

    params: dict[str, Any]
    match: dict[str, str]
    origin: Origin
    base_url: str


Handler = Callable[[Call], dict[str, Any]]


class Endpoints:
    def __init__(self, account: Account) -> None:
        self.account = account
        self.store = account.store

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/customers", self._create_customer),
            ("GET", "/v1/customers", self._list_customers),
            ("GET", "/v1/customers/search", self._search_customers),
            ("GET", "/v1/customers/{customer}", self._retrieve("customer", "customer")),
            ("POST", "/v1/customers/{customer}", self._update_customer),
            ("GET", "/v1/customers/{customer}/payment_methods", self._customer_methods),
            (
                "GET",
                "/v1/customers/{customer}/payment_methods/{payment_method}",
                self._customer_method,
            ),
            ("GET", "/v1/payment_methods", self._list_methods),
            (
                "GET",
                "/v1/payment_methods/{payment_method}",
                self._retrieve("payment_method", "payment_method"),
            ),
            ("POST", "/v1/payment_methods/{payment_method}/attach", self._attach),
            ("POST", "/v1/payment_methods/{payment_method}/detach", self._detach),
            ("POST", "/v1/checkout/sessions", self._create_session),
            ("GET", "/v1/checkout/sessions", self._list_sessions),
            (
                "GET",
                "/v1/checkout/sessions/{session}",
                self._retrieve("checkout.session", "session"),
            ),
            ("GET", "/v1/checkout/sessions/{session}/line_items", self._session_items),
            ("POST", "/v1/checkout/sessions/{session}/expire", self._expire_session),
            ("POST", "/v1/payment_intents", self._create_intent),
            ("GET", "/v1/payment_intents", self._list_intents),
            ("GET", "/v1/payment_intents/search", self._search_intents),
            (
                "GET",
                "/v1/payment_intents/{intent}",
                self._retrieve("payment_intent", "intent"),
            ),
            ("GET", "/v1/setup_intents/{intent}", self._retrieve("setup_intent", "intent")),
            ("GET", "/v1/charges", self._list_charges),
            ("GET", "/v1/charges/{charge}", self._retrieve("charge", "charge")),
            ("POST", "/v1/refunds", self._create_refund),
            ("GET", "/v1/refunds/{refund}", self._retrieve("refund", "refund")),
            ("GET", "/v1/disputes/{dispute}", self._retrieve("dispute", "dispute")),
            ("GET", "/v1/events", self._list_events),
            ("GET", "/v1/events/{id}", self._retrieve("event", "id")),
        ]

    def _retrieve(self, kind: str, name: str) -> Handler:
        def handler(call: Call) -> dict[str, Any]:
            forms.check_known(call.params, {})
            return self.store.get(kind, call.match[name])

        return handler

    def _create_customer(self, call: Call) -> dict[str, Any]:
        return self.account.customers.create(call.params, call.origin)

    def _update_customer(self, call: Call) -> dict[str, Any]:
        return self.account.customers.update(call.match["customer"], call.params, call.origin)

    def _list_customers(self, call: Call) -> dict[str, Any]:
        params = self._list_params(call.params, {"email": None})
        email = forms.string(params, "email")
        return self._page(
            self.store.of_kind("customer", lambda c: email in (None, c["email"])),
            call.params,
            "/v1/customers",
        )

    def _search_customers(self, call: Call) -> dict[str, Any]:
        return self._search("customer", call.params, "/v1/customers/search")

    def _customer_methods(self, call: Call) -> dict[str, Any]:
        customer_id = call.match["customer"]
        self.store.get("customer", customer_id)
        params = self._list_params(call.params, {"type": None, "allow_redisplay": None})
        type_ = forms.string(params, "type")
        return self._page(
            self.account.customers.methods_of(customer_id, type_),
            call.params,
            f"/v1/customers/{customer_id}/payment_methods",
        )

    def _customer_method(self, call: Call) -> dict[str, Any]:
        forms.check_known(call.params, {})
        self.store.get("customer", call.match["customer"])
        method = self.store.get("payment_method", call.match["payment_method"])
        if method["customer"] != call.match["customer"]:
            raise no_such("PaymentMethod", method["id"], param="payment_method", status=404)
        return method

    def _list_methods(self, call: Call) -> dict[str, Any]:
        params = self._list_params(call.params, {"customer": None, "type": None})
        customer_id = forms.string(params, "customer")
        if customer_id is None:
            # Without a customer Stripe lists Treasury PaymentMethods: none here.
            return self._page([], call.params, "/v1/payment_methods")
        self.store.get("customer", customer_id, param="customer", status=400)
        return self._page(
            self.account.customers.methods_of(customer_id, forms.string(params, "type")),
            call.params,
            "/v1/payment_methods",
        )

    def _attach(self, call: Call) -> dict[str, Any]:
        return self.account.customers.attach(call.match["payment_method"], call.params, call.origin)

    def _detach(self, call: Call) -> dict[str, Any]:
        forms.check_known(call.params, {})
        return self.account.customers.detach(call.match["payment_method"], call.origin)

    def _create_session(self, call: Call) -> dict[str, Any]:
        return self.account.checkout.create(call.params, call.origin, call.base_url)

    def _list_sessions(self, call: Call) -> dict[str, Any]:
        filters = {"payment_intent": None, "customer": None, "status": None}
        params = self._list_params(call.params, filters)
        wanted = {name: forms.string(params, name) for name in filters}
        return self._page(
            self.store.of_kind(
                "checkout.session",
                lambda s: all(v in (None, s[k]) for k, v in wanted.items()),
            ),
            call.params,
            "/v1/checkout/sessions",
        )

    def _session_items(self, call: Call) -> dict[str, Any]:
        self._list_params(call.params, {})
        session_id = call.match["session"]
        return self._page(
            self._items(session_id),
            call.params,
            f"/v1/checkout/sessions/{session_id}/line_items",
        )

    def _expire_session(self, call: Call) -> dict[str, Any]:
        forms.check_known(call.params, {})
        return self.account.checkout.expire(call.match["session"], call.origin)

    def _create_intent(self, call: Call) -> dict[str, Any]:
        return self.account.payments.create_intent(call.params, call.origin)

    def _list_intents(self, call: Call) -> dict[str, Any]:
        params = self._list_params(call.params, {"customer": None})
        customer_id = forms.string(params, "customer")
        return self._page(
            self.store.of_kind("payment_intent", lambda i: customer_id in (None, i["customer"])),
            call.params,
            "/v1/payment_intents",
        )

    def _search_intents(self, call: Call) -> dict[str, Any]:
        return self._search("payment_intent", call.params, "/v1/payment_intents/search")

    def _list_charges(self, call: Call) -> dict[str, Any]:
        params = self._list_params(call.params, {"customer": None, "payment_intent": None})
        wanted = {name: forms.string(params, name) for name in ("customer", "payment_intent")}
        return self._page(
            self.store.of_kind(
                "charge", lambda c: all(v in (None, c[k]) for k, v in wanted.items())
            ),
            call.params,
            "/v1/charges",
        )

    def _create_refund(self, call: Call) -> dict[str, Any]:
        return self.account.payments.create_refund(call.params, call.origin)

    def _list_events(self, call: Call) -> dict[str, Any]:
        params = self._list_params(call.params, {"type": None, "types": forms.Each()})
        types = forms.strings(params, "types") or []
        type_ = forms.string(params, "type")
        if type_:
            types.append(type_)

        def wanted(event: dict[str, Any]) -> bool:
            return not types or any(_type_matches(pattern, event["type"]) for pattern in types)

        return self._page(self.store.of_kind("event", wanted), call.params, "/v1/events")

    # --- lists and search -----------------------------------------------------------------

    def _list_params(self, params: dict[str, Any], filters: dict[str, Any]) -> dict[str, Any]:
        schema = {
            "limit": None,
            "starting_after": None,
            "ending_before": None,
            "created": None,
            **filters,
        }
        forms.check_known(params, schema)
        return params

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict:
        items = [item for item in items if _created_matches(params.get("created"), item)]
        limit = forms.integer(params, "limit")
        limit = 10 if limit is None else limit
        if not 1 <= limit <= 100:
            raise invalid("Invalid limit: must be between 1 and 100", param="limit")
        ids = [item.get("id") for item in items]
        after = forms.string(params, "starting_after")
        before = forms.string(params, "ending_before")
        if after:
            if after not in ids:
                raise no_such("object", after, param="starting_after")
            rest = items[ids.index(after) + 1 :]
            return page("list", rest[:limit], url=url, has_more=len(rest) > limit)
        if before:
            if before not in ids:
                raise no_such("object", before, param="ending_before")
            end = ids.index(before)
            start = max(0, end - limit)
            return page("list", items[start:end], url=url, has_more=start > 0)
        return page("list", items[:limit], url=url, has_more=len(items) > limit)

    def _search(self, kind: str, params: dict[str, Any], url: str) -> dict[str, Any]:
        forms.check_known(params, {"query": None, "limit": None, "page": None})
        query = forms.string(params, "query")
        if not query:
            raise invalid("Missing required param: query.", param="query", code="parameter_missing")
        found = self.store.search(kind, query)
        limit = forms.integer(params, "limit")
        limit = 10 if limit is None else limit
        if not 1 <= limit <= 100:
            raise invalid("Invalid limit: must be between 1 and 100", param="limit")
        token = forms.string(params, "page") or "page_0"
        try:
            offset = int(token.removeprefix("page_"))
        except ValueError:
            raise invalid(f"Invalid page: {token}", param="page") from None
        more = offset + limit < len(found)
        return page(
            "search_result",
            found[offset : offset + limit],
            url=url,
            has_more=more,
            next_page=f"page_{offset + limit}" if more else None,
        )

    def _items(self, session_id: str) -> list[dict[str, Any]]:
        self.store.get("checkout.session", session_id)
        return self.store.line_items[session_id]


def _type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _created_matches(created: Any, item: dict[str, Any]) -> bool:
    if created is None:
        return True
    value = item.get("created", 0)
    if isinstance(created, str):
        return created.isdigit() and value == int(created)
    bounds = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    for name, limit in created.items():
        if name not in bounds or not str(limit).isdigit():
            raise invalid(f"Invalid created[{name}]", param=f"created[{name}]")
        if not bounds[name](value, int(limit)):
            return False
    return True
