"""Stripe's idempotency layer for v1 POST requests, as its documentation describes it.

- The first request with an `Idempotency-Key` that reaches execution has its status and body
  saved (errors and 500s included); later requests with the key get them back, with the header
  `Idempotent-Replayed: true` (and `Original-Request`: the first request's id).
- The key with other parameters, or on another endpoint, is a 400 `idempotency_error`
  (the SDK raises `stripe.IdempotencyError`).
- While the first request is still executing, the key is "in use": a 409 with code
  `idempotency_key_in_use` (the SDK retries 409s, then raises `stripe.APIError`).
- Requests refused before execution (validation, authentication, rate limiting) save nothing.
- Keys are at most 255 characters. Stripe prunes keys at least 24 hours old, after which the
  key makes a new request: `prune` does that on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.stripe.errors import StripeFailure, invalid

MAX_KEY_LENGTH = 255


@dataclass
class Saved:
    key: str
    endpoint: str
    params: Any
    request_id: str
    created: float
    status: int | None = None
    """None while the first request is still executing."""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    """Answer headers that go with the body (Stripe-Should-Retry, Retry-After)."""


class IdempotencyStore:
    def __init__(self) -> None:
        self._saved: dict[str, Saved] = {}

    def begin(
        self, key: str, endpoint: str, params: Any, request_id: str, now: float
    ) -> Saved | None:
        """The saved answer to replay, or None after reserving the key for this request."""
        if len(key) > MAX_KEY_LENGTH:
            raise invalid(
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters long.",
                param="Idempotency-Key",
            )
        saved = self._saved.get(key)
        if saved is None:
            self._saved[key] = Saved(key, endpoint, params, request_id, now)
            return None
        if saved.status is None:
            raise StripeFailure(
                409,
                "invalid_request_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        if saved.endpoint != endpoint:
            raise StripeFailure(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{saved.endpoint}' vs '{endpoint}'). Try using a key other "
                f"than '{key}' if you meant to execute a different request.",
            )
        if saved.params != params:
            raise StripeFailure(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        return saved

    def finish(self, key: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        saved = self._saved[key]
        saved.status = status
        saved.body = body
        saved.headers = dict(headers)

    def release(self, key: str) -> None:
        """The request ended before execution: nothing is saved and the key is free again."""
        saved = self._saved.get(key)
        if saved is not None and saved.status is None:
            del self._saved[key]

    def prune(self, *, older_than: float, now: float) -> int:
        """Forget finished keys at least `older_than` seconds old; how many were forgotten."""
        old = [
            key
            for key, saved in self._saved.items()
            if saved.status is not None and now - saved.created >= older_than
        ]
        for key in old:
            del self._saved[key]
        return len(old)

    def __contains__(self, key: str) -> bool:
        return key in self._saved
