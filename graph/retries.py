"""When the Graph client tries again, and how long it waits first.

Throttling (429) and passing outages (502, 503, 504, a dropped connection) are retried a bounded
number of times. Graph's `Retry-After` decides the wait when it gives one; otherwise full-jitter
exponential back-off. The two callers differ only in what a long `Retry-After` means: a chat turn
gives up rather than hold a person waiting, a background job waits (capped).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from credits.retry_after import retry_after_seconds

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Retries:
    attempts: int = 5
    """Requests at most, the first included."""
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    longest_wait: float = 60.0
    """The longest `Retry-After` honoured as given."""
    cap_long_waits: bool = False
    """A longer `Retry-After`: False gives up at once (someone waits for the answer), True
    waits `longest_wait` and tries again (nobody does)."""

    def delay(self, attempt: int, retry_after: str | None) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (from 1); None to give up."""
        if attempt >= self.attempts:
            return None
        seconds = retry_after_seconds(retry_after)
        if seconds is None:
            return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
        if seconds <= self.longest_wait:
            return seconds
        return self.longest_wait if self.cap_long_waits else None


FOR_A_TURN = Retries(longest_wait=60.0, cap_long_waits=False)
"""The directory: a person waits for the card, so a wait beyond a minute is not waited."""
IN_THE_BACKGROUND = Retries(longest_wait=120.0, cap_long_waits=True)
"""The usage sync: a long import may wait, but not for hours on one page."""
