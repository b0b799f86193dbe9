"""Auto-recharge settings: checking what an admin typed, and saving it under the account's ETag.

Pure rules first (no I/O): amounts are parsed in the admin's locale like a purchase; "recharge
with" is a purchase, so it lies between the purchase minimum and maximum; the trigger may be 0
(nothing stops an admin from choosing it, but it is warned about) and at most the maximum. The
payment method must be one of the account's own agreement numbers or saved cards that have not
expired (`SavedCard.offered`).

Problems and warnings are codes, not text: the dialog turns them into messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date

from credits.model import Account, AutoRecharge, RechargeState
from credits.money import AmountProblem, InvalidAmount, Money, parse_amount
from credits.repository import ConcurrencyConflict, CreditsRepository

logger = logging.getLogger(__name__)

# Form fields, also the keys of the problems returned by `check`.
RECHARGE_WITH = "recharge_with"
TRIGGER = "trigger"
METHOD = "method"

# Choice values in the form, the same as the add-funds form's. Stored method ids differ: a
# card is stored as its id ("card-…"), an agreement as "agreement:<number>" (see
# credits/auto_recharge.py, which reads them).
CARD_CHOICE = "card:"
AGREEMENT = "agreement:"

WARNING_OFF = "off"
WARNING_TRIGGER_ZERO = "trigger_zero"
WARNING_NO_LIFT = "no_lift"

SAVE_ATTEMPTS = 10


class MethodUnavailable(ValueError):
    """The chosen payment method is no longer on the account."""


@dataclass(frozen=True)
class Limits:
    minimum: Money
    maximum: Money


# --- payment methods ------------------------------------------------------------------------


def method_id_of(account: Account, choice: str, today: date) -> str | None:
    """The stored method id for a form choice, or None when it is not this account's (or is
    a card that has expired)."""
    if choice.startswith(CARD_CHOICE):
        card = account.offered_card(choice[len(CARD_CHOICE) :], today)
        return card.id if card is not None else None
    if choice.startswith(AGREEMENT) and choice[len(AGREEMENT) :] in account.agreements:
        return choice
    return None


def choice_of(account: Account, method_id: str) -> str:
    """The form choice for a stored method id; "" when it is gone from the account."""
    if method_id.startswith(AGREEMENT):
        return method_id if method_id[len(AGREEMENT) :] in account.agreements else ""
    card = account.card(method_id) if method_id else None
    return f"{CARD_CHOICE}{card.id}" if card is not None and card.saved else ""


def method_available(account: Account, method_id: str, today: date) -> bool:
    choice = choice_of(account, method_id)
    return bool(method_id) and method_id_of(account, choice, today) is not None


# --- checking -------------------------------------------------------------------------------


def check(
    account: Account,
    *,
    enabled: bool,
    recharge_with: str,
    trigger: str,
    method: str,
    locale: str,
    limits: Limits,
    today: date,
) -> tuple[dict[str, str], AutoRecharge | None]:
    """Problems by field (codes such as `amount.below_minimum`), and the settings when none.

    Turning auto-recharge off checks nothing: the amounts and method stay as they were saved,
    ready for the day it is turned on again, whatever the form held.
    """
    if not enabled:
        return {}, AutoRecharge(enabled=False)
    currency = account.currency
    problems: dict[str, str] = {}
    amount: Money | None = None
    try:
        amount = parse_amount(
            recharge_with, currency, locale, minimum=limits.minimum, maximum=limits.maximum
        )
    except InvalidAmount as invalid:
        problems[RECHARGE_WITH] = f"amount.{invalid.problem.value}"
    threshold: Money | None = None
    try:
        threshold = parse_amount(trigger, currency, locale)
    except InvalidAmount as invalid:
        if invalid.problem == AmountProblem.ZERO:
            threshold = Money.zero(currency)
        elif invalid.problem == AmountProblem.ABOVE_MAXIMUM:  # too many digits to be money
            problems[TRIGGER] = "trigger.above_maximum"
        else:
            problems[TRIGGER] = f"amount.{invalid.problem.value}"
    if threshold is not None and threshold > limits.maximum:
        problems[TRIGGER] = "trigger.above_maximum"
    method_id = method_id_of(account, method, today)
    if method_id is None:
        if method:
            logger.warning("unknown payment method in auto-recharge for %s", account.tenant_id)
        problems[METHOD] = "method.unknown"
    if problems or amount is None or threshold is None or method_id is None:
        return problems, None
    return {}, AutoRecharge(
        enabled=True,
        recharge_with_minor=amount.minor,
        trigger_minor=threshold.minor,
        method_id=method_id,
    )


def warnings_of(settings: AutoRecharge) -> list[str]:
    """What the admin should know before saving; none of it blocks the save."""
    if not settings.enabled:
        return [WARNING_OFF]
    warnings = []
    if settings.trigger_minor == 0:
        # The engine recharges when the balance is below the trigger, and it never goes below 0.
        warnings.append(WARNING_TRIGGER_ZERO)
    elif settings.recharge_with_minor <= settings.trigger_minor:
        warnings.append(WARNING_NO_LIFT)
    return warnings


# --- saving ---------------------------------------------------------------------------------


def apply(account: Account, settings: AutoRecharge) -> Account:
    """The account with these settings.

    Off keeps the saved amounts and method. Turning it on, or choosing another method, clears
    the record of failed recharges so the next one is tried at once with a fresh count; the
    crossing that awaits a recharge (`due_key`) is kept.
    """
    current = account.auto_recharge
    if not settings.enabled:
        return replace(account, auto_recharge=replace(current, enabled=False))
    recharge = account.recharge
    if not current.enabled or current.method_id != settings.method_id:
        recharge = RechargeState(due_key=recharge.due_key)
    return replace(account, auto_recharge=settings, recharge=recharge)


@dataclass(frozen=True)
class Saved:
    account: Account
    changed: bool
    """False when the account already had these settings (a double press, or the same save
    delivered twice at once): nothing was written, and there is nothing to audit."""


async def save(
    repository: CreditsRepository, tenant_id: str, settings: AutoRecharge, today: date
) -> Saved:
    """Save the settings on a fresh read of the account, retrying when it changed meanwhile.

    Saving the same settings again (a double press) writes nothing and changes nothing.
    Raises MethodUnavailable when the method left the account since the form was checked.
    """
    for _attempt in range(SAVE_ATTEMPTS):
        current = await repository.get_account(tenant_id)
        if current is None:
            raise LookupError(f"no account for tenant {tenant_id}")
        account = current.value
        if settings.enabled and not method_available(account, settings.method_id, today):
            raise MethodUnavailable(settings.method_id)
        updated = apply(account, settings)
        if updated == account:
            return Saved(account, changed=False)
        try:
            saved = await repository.save_account(current, updated)
        except ConcurrencyConflict:
            continue
        logger.info(
            "auto-recharge %s for tenant %s", "on" if settings.enabled else "off", tenant_id
        )
        return Saved(saved.value, changed=True)
    raise ConcurrencyConflict(f"account of tenant {tenant_id} kept changing")
