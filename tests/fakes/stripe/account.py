"""The test-mode Stripe account behind the fake: its store and the operations on it.

Every operation validates its parameters as the API does (raising `StripeFailure`), changes
the objects, and emits the events Stripe emits for the change. HTTP, idempotency and faults
live in the app (`app.py`); none of this knows about them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fakes.stripe.checkout import Checkout
from tests.fakes.stripe.customers import Customers
from tests.fakes.stripe.payments import Payments
from tests.fakes.stripe.store import Clock, Store


class Account:
    def __init__(
        self, api_version: str, clock: Clock, publish: Callable[[dict[str, Any]], None]
    ) -> None:
        self.store = Store(api_version, clock, publish)
        self.customers = Customers(self.store)
        self.payments = Payments(self.store, self.customers)
        self.checkout = Checkout(self.store, self.customers, self.payments)
