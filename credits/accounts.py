"""Accounts: created on first use, cards added through the gateway, status read in one place."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from credits.model import Account, LedgerEntry, Lot, SavedCard
from credits.payments import CardDetails, PaymentGateway
from credits.repository import ConcurrencyConflict, CreditsRepository

logger = logging.getLogger(__name__)

# Seeds a new account (demo data in local mode); returns the account to create.
AccountSeeder = Callable[[Account], Awaitable[Account]]


async def no_seed(account: Account) -> Account:
    return account


@dataclass(frozen=True)
class Status:
    account: Account
    lots: list[Lot]
    """Lots with funds left, earliest expiry first."""
    recent: list[LedgerEntry]
    """Newest first."""


class AccountService:
    def __init__(
        self,
        repository: CreditsRepository,
        gateway: PaymentGateway,
        *,
        default_currency: str,
        seeder: AccountSeeder = no_seed,
    ) -> None:
        self._repo = repository
        self._gateway = gateway
        self._currency = default_currency
        self._seeder = seeder

    async def get_or_create(self, tenant_id: str) -> Account:
        existing = await self._repo.get_account(tenant_id)
        if existing is not None:
            return existing.value
        account = await self._seeder(Account(tenant_id, self._currency))
        created = await self._repo.create_account(account)
        logger.info("account created for tenant %s in %s", tenant_id, created.value.currency)
        return created.value

    async def status(self, tenant_id: str, recent: int = 5) -> Status:
        account = await self.get_or_create(tenant_id)
        lots = [lot for lot in await self._repo.list_lots(tenant_id) if lot.remaining_minor > 0]
        lots.sort(key=lambda lot: (lot.expires_at, lot.purchased_at))
        return Status(account, lots, await self._repo.recent_entries(tenant_id, recent))

    async def add_card(self, tenant_id: str, card: CardDetails, *, save: bool) -> SavedCard:
        """Tokenise a card and keep its token on the account; raises InvalidCard."""
        token = await self._gateway.tokenize_card(tenant_id, card)
        saved = SavedCard(
            id="card-" + uuid.uuid4().hex[:12],
            token=token.token,
            brand=token.brand,
            last4=token.last4,
            expiry_month=token.expiry_month,
            expiry_year=token.expiry_year,
            saved=save,
        )
        for _attempt in range(10):
            current = await self._repo.get_account(tenant_id)
            if current is None:
                await self.get_or_create(tenant_id)
                continue
            account = current.value
            updated = replace(
                account,
                cards=(*account.cards, saved),
                default_method_id=account.default_method_id or (saved.id if save else ""),
            )
            try:
                await self._repo.save_account(current, updated)
                return saved
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"account of tenant {tenant_id} kept changing")
