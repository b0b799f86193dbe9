"""Stripe's test cards: the card number decides the outcome, as in Stripe test mode.

Numbers are the ones Stripe documents under "Testing"; `pm_card_*` are its test PaymentMethod
shortcuts, each of which stands for one of these cards. A number that is not a test card is
refused the way test mode refuses a real card (`test_mode_live_card`), so no real card number
is ever kept by the fake.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tests.fakes.stripe.errors import DOCS, StripeFailure


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str | None
    message: str
    param: str | None = None


GENERIC_DECLINE = Decline("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT_FUNDS = Decline(
    "card_declined", "insufficient_funds", "Your card has insufficient funds."
)
EXPIRED_CARD = Decline("expired_card", None, "Your card has expired.", "exp_month")
INCORRECT_CVC = Decline("incorrect_cvc", None, "Your card's security code is incorrect.", "cvc")
PROCESSING_ERROR = Decline(
    "processing_error",
    None,
    "An error occurred while processing your card. Try again in a little bit.",
)
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)
AUTHENTICATION_FAILED = Decline(
    "payment_intent_authentication_failure",
    None,
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again.",
)
LIVE_CARD = Decline(
    "card_declined",
    "test_mode_live_card",
    "Your card was declined. Your request was in test mode, but used a non test (live) card. "
    "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
)


@dataclass(frozen=True)
class TestCard:
    number: str
    brand: str
    charge_decline: Decline | None = None
    """Why every charge of this card fails (on the page and off session)."""
    setup_decline: Decline | None = None
    """Why saving this card (setup mode, attach) fails."""
    always_authenticate: bool = False
    """3D Secure on every payment: the cardholder passes it on the hosted page; off session
    the bank declines with `authentication_required`."""
    disputed: bool = False
    """A successful charge is disputed at once (`charge.dispute.created`)."""
    funding: str = "credit"
    country: str = "US"

    __test__ = False  # not a pytest test class, despite the name

    @property
    def last4(self) -> str:
        return self.number[-4:]


TEST_CARDS = {
    card.number: card
    for card in (
        TestCard("4242424242424242", "visa"),
        TestCard("5555555555554444", "mastercard"),
        TestCard("4000000000000002", "visa", GENERIC_DECLINE, GENERIC_DECLINE),
        # Funds matter to a charge, not to saving the card: an auto-recharge of a saved card
        # can then fail for insufficient funds.
        TestCard("4000000000009995", "visa", INSUFFICIENT_FUNDS),
        TestCard("4000000000000069", "visa", EXPIRED_CARD, EXPIRED_CARD),
        TestCard("4000000000000127", "visa", INCORRECT_CVC, INCORRECT_CVC),
        TestCard("4000000000000119", "visa", PROCESSING_ERROR, PROCESSING_ERROR),
        # Attaching succeeds, charging fails.
        TestCard("4000000000000341", "visa", GENERIC_DECLINE),
        TestCard("4000002760003184", "visa", always_authenticate=True),
        TestCard("4000000000000259", "visa", disputed=True),
    )
}

SHORTCUTS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_createDispute": "4000000000000259",
}


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def entry_problem(
    number: str, exp_month: str, exp_year: str, cvc: str, *, year: int, month: int
) -> str | None:
    """What the hosted page's card fields say before anything is sent (Stripe.js checks)."""
    if not number.isdigit() or not 12 <= len(number) <= 19 or not luhn_valid(number):
        return "Your card number is invalid."
    if not exp_month.isdigit() or not 1 <= int(exp_month) <= 12:
        return "Your card's expiration month is invalid."
    if not exp_year.isdigit():
        return "Your card's expiration year is invalid."
    full_year = int(exp_year) + (2000 if len(exp_year) == 2 else 0)
    if full_year < year or (full_year == year and int(exp_month) < month):
        return "Your card's expiration date is in the past."
    if not cvc.isdigit() or len(cvc) not in (3, 4):
        return "Your card's security code is incomplete."
    return None


def error_object(
    decline: Decline, method: dict[str, Any], charge: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A card error as an intent keeps it (`last_payment_error`, `last_setup_error`)."""
    error: dict[str, Any] = {}
    if charge is not None:
        error["charge"] = charge["id"]
    error["code"] = decline.code
    if decline.decline_code:
        error["decline_code"] = decline.decline_code
    error["doc_url"] = f"{DOCS}/{decline.code.replace('_', '-')}"
    error["message"] = decline.message
    if decline.param:
        error["param"] = decline.param
    error["payment_method"] = copy.deepcopy(method)
    error["type"] = "card_error"
    return error


def card_failure(decline: Decline, error: dict[str, Any], **more: Any) -> StripeFailure:
    """The 402 answer to a declined request; the idempotency layer saves it (it executed)."""
    extra = {k: v for k, v in error.items() if k in ("charge", "payment_method")}
    extra.update(more)
    return StripeFailure(
        402,
        "card_error",
        decline.message,
        code=decline.code,
        decline_code=decline.decline_code,
        param=decline.param,
        saved=True,
        extra=extra,
    )
