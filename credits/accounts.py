"""Accounts: created on first use, their processor customer and saved cards, status read in one
place.

Saved cards live at the processor (a Stripe Customer's PaymentMethods); the account keeps a copy
of what an admin may see of them (brand, last four digits, expiry) for the forms, refreshed from
the processor when a form opens and when a card is saved on the hosted page.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from credits.model import Account, LedgerEntry, Lot, SavedCard
from credits.payments import (
    CardOnFile,
    Checkout,
    CheckoutMode,
    CheckoutRequest,
    PaymentError,
    PaymentGateway,
)
from credits.repository import ConcurrencyConflict, CreditsRepository

logger = logging.getLogger(__name__)

# Seeds a new account (demo data in local mode); returns the account to create.
AccountSeeder = Callable[[Account], Awaitable[Account]]
# A hosted page for saving a card stays open this long (Stripe allows 30 minutes to 24 hours).
SETUP_LIFETIME = timedelta(hours=1)
SAVE_ATTEMPTS = 10


async def no_seed(account: Account) -> Account:
    return account


def card_id_of(reference: str) -> str:
    """The account's id for a processor card: derived from its reference, so two instances
    saving the same card agree, and the reference itself never appears in a form."""
    return "card-" + hashlib.sha256(reference.encode("utf-8")).hexdigest()[:12]


def saved_card(card: CardOnFile, *, saved: bool = True) -> SavedCard:
    return SavedCard(
        id=card_id_of(card.reference),
        token=card.reference,
        brand=card.brand,
        last4=card.last4,
        expiry_month=card.expiry_month,
        expiry_year=card.expiry_year,
        saved=saved,
    )


def with_card(account: Account, card: SavedCard) -> Account:
    """The account with this card (a saved card is never demoted to a used-once one)."""
    existing = account.card(card.id)
    if existing is not None:
        if existing.saved or not card.saved:
            return account
        cards = tuple(card if c.id == card.id else c for c in account.cards)
    else:
        cards = (*account.cards, card)
    default = account.default_method_id or (card.id if card.saved else "")
    return replace(account, cards=cards, default_method_id=default)


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repo = repository
        self._gateway = gateway
        self._currency = default_currency
        self._seeder = seeder
        self._clock = clock

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

    async def payment_customer(self, tenant_id: str) -> str:
        """The tenant's customer at the processor, made (and kept on the account) if need be."""
        await self.get_or_create(tenant_id)
        return await ensure_customer(self._repo, self._gateway, tenant_id)

    async def sync_cards(self, tenant_id: str) -> Account:
        """The account, its saved cards refreshed from the processor.

        Cards removed at the processor (in its dashboard) leave the account; new ones join it.
        A processor that does not answer leaves the copy as it was: the forms still open.
        """
        account = await self.get_or_create(tenant_id)
        if not account.payment_customer:
            return account  # never used the processor: it keeps no cards for this tenant
        try:
            held = await self._gateway.saved_cards(tenant_id, account.payment_customer)
        except PaymentError:
            logger.warning("saved cards of tenant %s not refreshed", tenant_id, exc_info=True)
            return account
        return await self._update(tenant_id, lambda current: _synced(current, held))

    async def start_card_setup(self, tenant_id: str, key: str, locale: str) -> Checkout:
        """A hosted page where an admin saves a new card without paying (keyed by `key`)."""
        customer = await self.payment_customer(tenant_id)
        return await self._gateway.start_checkout(
            CheckoutRequest(
                tenant_id=tenant_id,
                customer=customer,
                key=key,
                mode=CheckoutMode.SETUP,
                locale=locale,
                expires_at=self._clock() + SETUP_LIFETIME,
                description="Communications Credits: a card for auto-recharge",
            )
        )

    async def _update(self, tenant_id: str, change: Callable[[Account], Account]) -> Account:
        for _attempt in range(SAVE_ATTEMPTS):
            current = await self._repo.get_account(tenant_id)
            assert current is not None  # accounts are never deleted
            updated = change(current.value)
            if updated == current.value:
                return updated
            try:
                return (await self._repo.save_account(current, updated)).value
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"account of tenant {tenant_id} kept changing")


def _synced(account: Account, held: list[CardOnFile]) -> Account:
    fresh = {card.id: card for card in (saved_card(c) for c in held)}
    cards = [_refreshed(c, fresh.get(c.id)) for c in account.cards if not c.saved or c.id in fresh]
    cards += [card for card_id, card in fresh.items() if account.card(card_id) is None]
    default = account.default_method_id
    if default.startswith("card-") and not any(c.id == default and c.saved for c in cards):
        default = next((c.id for c in cards if c.saved), "")
    return replace(account, cards=tuple(cards), default_method_id=default)


def _refreshed(kept: SavedCard, fresh: SavedCard | None) -> SavedCard:
    """A kept card as the processor holds it now, still marked failing if it was, unless the
    processor has a new expiry for it (its bank sent the renewed card's)."""
    if fresh is None:
        return kept
    renewed = (fresh.expiry_year, fresh.expiry_month) != (kept.expiry_year, kept.expiry_month)
    if renewed:
        return fresh
    return replace(fresh, failure=kept.failure, failed_on=kept.failed_on)


async def ensure_customer(
    repository: CreditsRepository, gateway: PaymentGateway, tenant_id: str
) -> str:
    """The tenant's processor customer: read from the account, or made and kept there.

    Two instances making it at once get the same customer (the processor's idempotency), and
    whichever saves second finds it saved.
    """
    for _attempt in range(SAVE_ATTEMPTS):
        current = await repository.get_account(tenant_id)
        if current is None:
            raise LookupError(f"tenant {tenant_id} has no account")
        if current.value.payment_customer:
            return current.value.payment_customer
        customer = await gateway.create_customer(tenant_id)
        try:
            await repository.save_account(
                current, replace(current.value, payment_customer=customer)
            )
        except ConcurrencyConflict:
            continue
        logger.info("tenant %s has customer %s at the processor", tenant_id, customer)
        return customer
    raise ConcurrencyConflict(f"account of tenant {tenant_id} kept changing")
