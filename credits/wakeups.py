"""Wake-ups: tenants with news for a background worker, and the event it waits on.

The ledger's repository calls one after a commit (`on_change`, `on_events`); the worker that
serves it (the alert dispatcher, the runway evaluation) is made after the repository, so the
wake-up is made first and handed to both.
"""

from __future__ import annotations

import asyncio


class Wakeups:
    """Tenants rung since the worker last took them; `event` is set while any wait."""

    def __init__(self) -> None:
        self.tenants: set[str] = set()
        self.event = asyncio.Event()

    def __call__(self, tenant_id: str) -> None:
        self.tenants.add(tenant_id)
        self.event.set()

    def take(self) -> set[str]:
        self.event.clear()
        taken, self.tenants = self.tenants, set()
        return taken
