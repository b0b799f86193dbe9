"""Reading an HTTP `Retry-After` header, as Graph and the Bot Connector send it (RFC 9110).

One reader for every client that honours it: the value is delay-seconds or an HTTP-date.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait (never negative), or None when absent or unreadable (NaN, infinity,
    words): the caller then falls back to its own back-off."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
