"""Demo data for the local stack: a tenant seen for the first time can buy at once.

Only wired in when the service runs in unauthenticated local mode; a real tenant starts with an
empty account and adds its own payment methods.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from credits.model import Account, SavedCard
from credits.payments import CardDetails, PaymentGateway

DEMO_CARD_NUMBER = "4242424242424242"  # the sandbox's always-succeeds test card
DEMO_AGREEMENTS = ("EA-4471-2210", "EA-8802-3157")


def demo_seeder(gateway: PaymentGateway):
    async def seed(account: Account) -> Account:
        token = await gateway.tokenize_card(
            account.tenant_id,
            CardDetails(DEMO_CARD_NUMBER, 12, datetime.now(UTC).year + 3, "123", "Demo Admin"),
        )
        card = SavedCard(
            id="card-" + uuid.uuid4().hex[:12],
            token=token.token,
            brand=token.brand,
            last4=token.last4,
            expiry_month=token.expiry_month,
            expiry_year=token.expiry_year,
        )
        return replace(
            account, cards=(card,), agreements=DEMO_AGREEMENTS, default_method_id=card.id
        )

    return seed
