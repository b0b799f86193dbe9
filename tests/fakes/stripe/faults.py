"""Scripted failures of API requests: rate limits, outages, hangs, lost answers."""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakes.stripe.errors import StripeFailure

STAGES = ("before", "during", "after")


@dataclass(frozen=True)
class Fault:
    """A scripted failure of one API request.

    `stage` is when it strikes: "before" the API executes (nothing happens, nothing is saved
    for the idempotency key: a retry can succeed); "during" execution (the key stays in use
    for `delay` seconds, so a concurrent request with it gets 409, then the request executes);
    "after" execution (the request took effect and its answer is saved; `status` replaces that
    answer, so replays repeat the error; `delay` holds the answer back, as a lost response).
    """

    status: int = 500
    """0: no error, only the delay."""
    delay: float = 0.0
    stage: str = "before"
    retry_after: str | None = None
    should_retry: bool | None = None
    """The `Stripe-Should-Retry` header (the SDK obeys it); None sends none."""
    code: str | None = None
    path: str = ""
    """Only requests whose path starts with this."""
    method: str = ""


def fault_failure(fault: Fault, *, executed: bool) -> StripeFailure:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    should_retry = fault.should_retry
    if should_retry is None and executed:
        should_retry = False  # the saved answer would only be replayed
    if should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    if fault.status == 429:
        code = fault.code or "rate_limit"
        message = (
            "This object cannot be accessed right now because another API request or "
            "Stripe process is currently accessing it."
            if code == "lock_timeout"
            else "Too many requests hit the API too quickly. We recommend an exponential "
            "backoff of your requests."
        )
        return StripeFailure(429, "invalid_request_error", message, code=code, headers=headers)
    return StripeFailure(
        fault.status,
        "api_error",
        "Sorry, something went wrong on Stripe's end (a fault scripted in the fake).",
        code=fault.code,
        headers=headers,
    )
