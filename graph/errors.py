"""The one error of the Graph package: Graph (or its token authority) did not give an answer."""

from __future__ import annotations

# Codes the client gives to answers that are not Graph's own errors.
BAD_NEXT_LINK = "bad_next_link"
"""An `@odata.nextLink` that is not a URL on Graph's origin (the token never follows it)."""
NOT_JSON = "not_json"
"""A success whose body is not a JSON object (or holds NaN or Infinity)."""
TOO_LARGE = "too_large"
"""A body larger than the client accepts."""
GAVE_UP = "gave_up"
"""Still throttled or failing after the bounded retries, or asked to wait too long."""


class GraphError(RuntimeError):
    """Graph refused (`status` 4xx with Graph's `code`), or did not answer usefully.

    `transient` is True when the cause passes with time (throttling, an outage, a dropped
    connection): the same call may succeed later. `status` is the last HTTP status, None when
    no answer came.
    """

    def __init__(
        self, status: int | None, code: str, message: str, *, transient: bool = False
    ) -> None:
        super().__init__(f"{status or 'no answer'} {code}: {message}"[:300])
        self.status = status
        self.code = code
        self.message = message[:300]
        self.transient = transient

    @property
    def throttled(self) -> bool:
        return self.status == 429


class TokenError(GraphError):
    """No app-only token for the tenant: `code` is Entra's OAuth error (`invalid_client`, …) or
    one of `not_a_tenant_id`, `unreachable`; never anything a secret could be read from."""
