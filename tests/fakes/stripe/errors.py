"""Stripe's error answers: the `{"error": {...}}` body, its HTTP status, and whether Stripe's
idempotency layer saves it.

Stripe saves the result of a request with an Idempotency-Key only once the endpoint has begun
to execute: a request refused by validation (unknown or missing parameters, a missing object)
is not saved and may be retried with the same key; a card decline or an internal error during
execution is saved and replayed.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://stripe.com/docs/error-codes"


class StripeFailure(Exception):
    """An error answer of the API, raised by the account's operations and rendered by the app."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        decline_code: str | None = None,
        param: str | None = None,
        saved: bool = False,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.decline_code = decline_code
        self.param = param
        self.saved = saved
        """Whether Stripe's idempotency layer keeps this answer for replays."""
        self.extra = dict(extra or {})
        """More members of the error (payment_intent, payment_method, charge, setup_intent)."""
        self.headers = dict(headers or {})

    def body(self, request_id: str, created: int) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code:
            error["code"] = self.code
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if self.code:
            error["doc_url"] = f"{DOCS}/{self.code.replace('_', '-')}"
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        error["request_log_url"] = (
            f"https://dashboard.stripe.com/test/logs/{request_id}?t={created}"
        )
        error["type"] = self.type
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeFailure:
    return StripeFailure(400, "invalid_request_error", message, code=code, param=param)


def missing(param: str) -> StripeFailure:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_parameter(param: str) -> StripeFailure:
    return invalid(
        f"Received unknown parameter: {param}. (The fake Stripe in tests/fakes/stripe_api.py "
        "does not model it: extend the fake if the product needs it.)",
        param=param,
        code="parameter_unknown",
    )


def no_such(label: str, object_id: str, *, param: str, status: int = 400) -> StripeFailure:
    """A missing object: 404 when it is the request's path, 400 when a parameter names it."""
    return StripeFailure(
        status,
        "invalid_request_error",
        f"No such {label}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def unrecognized_url(method: str, path: str) -> StripeFailure:
    return StripeFailure(
        404,
        "invalid_request_error",
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or "
        "we can help at https://support.stripe.com/.",
    )
