"""The add-funds flow: form → confirmation → order, with the form's nonce as the order key.

The amount and method are validated and kept in dialog state on the server; the confirmation
card carries only the nonce, so a forged submit cannot change what is charged.

No card of this flow asks for a card number: a new card is typed on the card processor's hosted
page. Choosing "a new card" places the order (pending) at once and shows a confirmation whose
button opens the page made for that order; the receipt comes when the processor says it was
paid (bot/checkout_notices.py updates that card and posts the receipt). A saved card or an
Enterprise Agreement is confirmed and charged (or invoiced) in the chat, as before; a bank
that wants the cardholder to confirm a saved card's payment gets the hosted page too.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.dialogs import (
    ComponentDialog,
    Dialog,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.schema import Attachment

from cards import CardRenderer
from credits.accounts import AccountService
from credits.conversations import CheckoutCard, CheckoutCards
from credits.ledger import expiry_of
from credits.model import Account, MethodKind, Order, OrderStatus, PaymentMethod, SavedCard
from credits.money import InvalidAmount, Money, currency_exponent, parse_amount
from credits.orders import OrderOutcome, OrderRejected, OrderService
from credits.repository import CreditsRepository
from dialogs.card_actions import note, say, show
from dialogs.forms import actor_of, amount_error, is_submit, text_of, wait_again
from dialogs.turn import tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

FORM = "add_funds"
# What `uuid.uuid4().hex` makes: the only nonces this flow issues (and order keys it writes).
_NONCE = re.compile(r"[0-9a-f]{32}")
CONFIRM = "add_funds_confirm"
NEW_CARD = "new_card"
# What a checkout confirmation shows: waiting for the page, or paid there.
OPEN = "open"
PAID = "paid"


class AddFundsDialog(ComponentDialog):
    def __init__(
        self,
        accounts: AccountService,
        orders: OrderService,
        repository: CreditsRepository,
        cards: CardRenderer,
        checkout_cards: CheckoutCards,
        *,
        minimum: Callable[[str], Money],
        maximum: Callable[[str], Money],
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(AddFundsDialog.__name__)
        self._accounts = accounts
        self._orders = orders
        self._repo = repository
        self._cards = cards
        self._checkout_cards = checkout_cards
        self._minimum = minimum
        self._maximum = maximum
        self._clock = clock
        self.add_dialog(
            WaterfallDialog(
                WaterfallDialog.__name__,
                [self.form_step, self.validate_step, self.place_step],
            )
        )
        self.initial_dialog_id = WaterfallDialog.__name__

    # --- steps ------------------------------------------------------------------------------

    async def form_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = step.options if isinstance(step.options, dict) else {}
        tenant_id = tenant_id_of(step.context.activity)
        # The saved cards as the processor holds them now (a card removed there is gone).
        account = await self._accounts.sync_cards(tenant_id)
        t = translator_of(step.context)
        values = options.get("values") or {}
        nonce = options.get("nonce") or uuid.uuid4().hex
        step.values["nonce"] = nonce

        argument = options.get("argument") or ""
        if argument and not options.get("errors"):
            # "add funds 500": straight to the confirmation when the amount is valid and a
            # default method is saved; otherwise the form, with the amount filled in.
            values = {"amount": argument, "method": _default_method(account, self._today())}
            if values["method"]:
                errors, order = await self._check(step.context, account, values)
                if not errors:
                    step.values["order"] = order
                    await self._send_confirmation(step.context, account, order, nonce)
                    return await step.next(None)
        await self._send_form(step.context, t, account, nonce, values, options.get("errors") or {})
        return Dialog.end_of_turn

    async def validate_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        if "order" in step.values and step.result is None and step.context.activity.value is None:
            return Dialog.end_of_turn  # arrived through step.next: wait for the confirmation
        value = step.context.activity.value
        if not is_submit(value, FORM, step.values["nonce"]):
            return await self._unexpected(step)
        tenant_id = tenant_id_of(step.context.activity)
        account = await self._accounts.get_or_create(tenant_id)
        fields = {k: value.get(k) for k in ("amount", "method", "po", "save_card")}
        errors, order = await self._check(step.context, account, value)
        if errors:
            return await step.replace_dialog(
                self.initial_dialog_id,
                {"values": _safe(fields), "errors": errors, "nonce": step.values["nonce"]},
            )
        if order["method_kind"] == MethodKind.NEW_CARD.value:
            # The order is placed now, and its hosted page made for it: the confirmation's
            # button opens that page, and the flow ends here (the processor says the rest).
            await self.place(step.context, step.values["nonce"], order)
            return await step.end_dialog()
        step.values["order"] = order
        await self._send_confirmation(step.context, account, order, step.values["nonce"])
        return Dialog.end_of_turn

    async def place_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        value = step.context.activity.value
        nonce = step.values["nonce"]
        if not is_submit(value, CONFIRM, nonce):
            return await self._unexpected(step)
        if value.get("action") == "change":
            return await step.replace_dialog(
                self.initial_dialog_id,
                {"values": _safe(step.values["order"]), "nonce": uuid.uuid4().hex},
            )
        order = step.values["order"]
        await self.place(step.context, nonce, order)
        return await step.end_dialog()

    # --- the order --------------------------------------------------------------------------

    async def place(self, turn_context: TurnContext, nonce: str, order: dict[str, Any]) -> None:
        tenant_id = tenant_id_of(turn_context.activity)
        t = translator_of(turn_context)
        method = _method_from(order)
        try:
            outcome = await self._orders.place(
                tenant_id,
                nonce,
                Money(order["amount_minor"], order["currency"]),
                method,
                actor=actor_of(turn_context),
                locale=t.tag,
            )
        except OrderRejected as rejected:
            logger.warning("order refused for tenant %s: %s", tenant_id, rejected.reason)
            await say(turn_context, t("add_funds.expired_form"))
            return
        if outcome.checkout is not None:
            await self._show_checkout(turn_context, t, outcome, new=method.kind.value == NEW_CARD)
            return
        if method.kind == MethodKind.NEW_CARD and outcome.status == OrderStatus.PENDING:
            await say(turn_context, t("add_funds.page_unavailable"))
            return
        await self._show_outcome(turn_context, t, outcome.account, outcome)

    async def replay_confirmation(self, turn_context: TurnContext, nonce: Any) -> None:
        """A confirmation pressed again after its flow ended: show what that order became.

        `nonce` comes from the card as sent back, so it may be anything (a forged submit): only
        the shape this flow issues is looked up.
        """
        tenant_id = tenant_id_of(turn_context.activity)
        t = translator_of(turn_context)
        issued = isinstance(nonce, str) and _NONCE.fullmatch(nonce) is not None
        existing = await self._repo.get_order(tenant_id, nonce) if issued else None
        if existing is None:
            await say(turn_context, t("add_funds.expired_form"))
            return
        account = await self._accounts.get_or_create(tenant_id)
        await self._show_outcome(
            turn_context, t, account, OrderOutcome(existing.value, account, replayed=True)
        )

    async def _show_checkout(
        self, turn_context: TurnContext, t: Translator, outcome: OrderOutcome, *, new: bool
    ) -> None:
        """The confirmation whose button opens the order's hosted page; remembered, so the
        processor's answer can update it in place."""
        assert outcome.checkout is not None
        tenant_id = tenant_id_of(turn_context.activity)
        account = await self._accounts.get_or_create(tenant_id)
        card = confirmation_attachment(
            self._cards,
            t,
            account,
            outcome.order,
            expires=expiry_of(self._clock()),
            checkout_url=outcome.checkout.url,
            note=t("confirm.checkout_note" if new else "confirm.authenticate_note"),
        )
        # The form (a new card) or the saved card's confirmation becomes the page's.
        activity_id = await show(turn_context, card, final=not new)
        await self._checkout_cards.remember(
            CheckoutCard(
                tenant_id=tenant_id,
                key=outcome.order.key,
                reference=TurnContext.get_conversation_reference(turn_context.activity).serialize(),
                activity_id=activity_id,
                locale=t.tag,
                purpose="order",
            )
        )

    async def _show_outcome(
        self,
        turn_context: TurnContext,
        t: Translator,
        account: Account | None,
        outcome: OrderOutcome,
    ) -> None:
        order = outcome.order
        if order.status == OrderStatus.SUCCEEDED:
            after = outcome.account or account
            if after is None:  # booked by another request that did not return the account
                after = await self._accounts.get_or_create(order.tenant_id)
            card = receipt_attachment(self._cards, t, after, order)
        elif order.status == OrderStatus.FAILED:
            card = failed_attachment(self._cards, t, order)
        else:
            card = self._cards.attachment("add_funds_pending", t, order_id=order_id(order))
        await show(turn_context, card, final=True)

    # --- validation -------------------------------------------------------------------------

    async def _check(
        self, turn_context: TurnContext, account: Account, value: dict[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Errors by field (message ids), and the order to confirm when there are none."""
        t = translator_of(turn_context)
        errors: dict[str, str] = {}
        currency = account.currency
        amount: Money | None = None
        try:
            amount = parse_amount(
                text_of(value.get("amount")),
                currency,
                t.language.babel,
                minimum=self._minimum(currency),
                maximum=self._maximum(currency),
            )
        except InvalidAmount as invalid:
            errors["amount"] = amount_error(
                t,
                f"amount.{invalid.problem.value}",
                minimum=t.minor_money(self._minimum(currency).minor, currency),
                maximum=t.minor_money(self._maximum(currency).minor, currency),
                decimals=currency_exponent(currency),
            )
        method = text_of(value.get("method"))
        po = text_of(value.get("po"))
        order: dict[str, Any] = {}
        if method == NEW_CARD or method.startswith("card:"):
            # A purchase-order number goes on an Enterprise Agreement's invoice; a card payment
            # has none to carry it, so it is refused rather than silently dropped.
            if po:
                errors["po"] = t("error.po_with_card")
        if method == NEW_CARD:
            order.update(
                method_kind=MethodKind.NEW_CARD.value,
                save_card=text_of(value.get("save_card")) == "true",
            )
        elif method.startswith("card:") and (
            card := account.offered_card(method[5:], self._today())
        ):
            order.update(method_kind=MethodKind.CARD.value, card_id=card.id)
        elif method.startswith("agreement:") and method[10:] in account.agreements:
            if len(po) > 64 or not po.isprintable():
                errors["po"] = t("error.po")
            order.update(
                method_kind=MethodKind.AGREEMENT.value, agreement_number=method[10:], po=po
            )
        else:
            if method:
                logger.warning("unknown payment method in a submit for %s", account.tenant_id)
            errors["method"] = t("error.method.unknown")
        if errors or amount is None:
            return errors, {}
        order.update(
            amount_minor=amount.minor,
            currency=currency,
            amount=text_of(value.get("amount")),
            method=method,
        )
        return errors, order

    # --- cards ------------------------------------------------------------------------------

    async def _send_form(
        self,
        turn_context: TurnContext,
        t: Translator,
        account: Account,
        nonce: str,
        values: dict[str, Any],
        errors: dict[str, str],
    ) -> None:
        currency = account.currency
        today = self._today()
        methods = card_choices(t, account, today)
        methods += [
            {"value": f"agreement:{n}", "title": t("add_funds.method_agreement", number=n)}
            for n in account.agreements
        ]
        methods.append({"value": NEW_CARD, "title": t("add_funds.method_new_card")})
        await show(
            turn_context,
            self._cards.attachment(
                "add_funds",
                t,
                nonce=nonce,
                currency=currency,
                limits=t(
                    "add_funds.limits",
                    minimum=t.minor_money(self._minimum(currency).minor, currency),
                    maximum=t.minor_money(self._maximum(currency).minor, currency),
                ),
                methods=methods,
                expired=expired_notes(t, account, today),
                values={
                    "amount": text_of(values.get("amount")),
                    "method": text_of(values.get("method")) or _default_method(account, today),
                    "po": text_of(values.get("po")),
                    "save_card": "false" if text_of(values.get("save_card")) == "false" else "true",
                },
                errors=errors,
            ),
        )

    async def _send_confirmation(
        self, turn_context: TurnContext, account: Account, order: dict[str, Any], nonce: str
    ) -> None:
        t = translator_of(turn_context)
        new_balance = account.balance_minor + order["amount_minor"]
        await show(
            turn_context,
            self._cards.attachment(
                "add_funds_confirm",
                t,
                nonce=nonce,
                amount=t.minor_money(order["amount_minor"], account.currency),
                method=method_label(t, account, _method_from(order)),
                balance_now=t.minor_money(account.balance_minor, account.currency),
                balance_after=t.minor_money(new_balance, account.currency),
                expires=t.date(expiry_of(self._clock())),
                checkout_url="",
                state="",
                note="",
            ),
        )

    async def _unexpected(self, step: WaterfallStepContext) -> DialogTurnResult:
        # Typed text or a stale card while a form is open: say how to go on, keep the form.
        t = translator_of(step.context)
        await note(step.context, t("add_funds.use_the_form"))
        return wait_again(step)

    def _today(self) -> date:
        return self._clock().date()


# --- the cards of an order, also shown when the processor answers later ----------------------


def order_id(order: Order) -> str:
    return order.key[:12].upper()


def confirmation_attachment(
    cards: CardRenderer,
    t: Translator,
    account: Account,
    order: Order,
    *,
    expires: datetime,
    checkout_url: str = "",
    state: str = OPEN,
    note: str = "",
) -> Attachment:
    """An order's confirmation around its hosted page: its button opens the page (`OPEN`), or
    it says the page was paid (`PAID`, `account` being the account after the booking)."""
    before = account.balance_minor - (order.amount_minor if state == PAID else 0)
    return cards.attachment(
        "add_funds_confirm",
        t,
        nonce="",
        amount=t.minor_money(order.amount_minor, order.currency),
        method=method_label(t, account, order.method),
        balance_now=t.minor_money(before, order.currency),
        balance_after=t.minor_money(before + order.amount_minor, order.currency),
        expires=t.date(expires),
        checkout_url=checkout_url if state == OPEN else "",
        state=state,
        note=note,
    )


def receipt_attachment(
    cards: CardRenderer, t: Translator, account: Account, order: Order
) -> Attachment:
    """The receipt of a booked order; `account` is the account after the booking."""
    return cards.attachment(
        "add_funds_receipt",
        t,
        order_id=order_id(order),
        amount=t.minor_money(order.amount_minor, order.currency),
        balance=t.minor_money(account.balance_minor, account.currency),
        expires=t.date(expiry_of(order.updated_at if order.lot_id else order.created_at)),
        method=method_label(t, account, order.method),
        recommend_auto_recharge=not account.auto_recharge.enabled,
    )


def failed_attachment(cards: CardRenderer, t: Translator, order: Order) -> Attachment:
    return cards.attachment(
        "add_funds_failed",
        t,
        reason=t(f"failed.reason.{order.failure_reason or 'declined'}"),
        amount=t.minor_money(order.amount_minor, order.currency),
    )


# --- helpers ----------------------------------------------------------------------------------


def _safe(values: dict[str, Any]) -> dict[str, str]:
    """What may be echoed back into a form (its own fields, as text)."""
    return {k: text_of(values.get(k)) for k in ("amount", "method", "po", "save_card")}


def _default_method(account: Account, today: date) -> str:
    """The card chosen by default: the account's default, else the first card on offer."""
    if account.default_method_id and (
        card := account.offered_card(account.default_method_id, today)
    ):
        return f"card:{card.id}"
    return next((f"card:{c.id}" for c in account.cards if c.offered(today)), "")


def card_choices(t: Translator, account: Account, today: date) -> list[dict[str, str]]:
    """The saved cards a form offers (not those that expired), a failing one marked so."""
    return [
        {"value": f"card:{c.id}", "title": card_label(t, c)}
        for c in account.cards
        if c.offered(today)
    ]


def expired_notes(t: Translator, account: Account, today: date) -> list[str]:
    """A line for each saved card no longer offered because it expired."""
    return [
        t("add_funds.card_expired", card=card_label(t, c, with_failure=False))
        for c in account.cards
        if c.saved and c.expired(today)
    ]


def _method_from(order: dict[str, Any]) -> PaymentMethod:
    kind = order.get("method_kind")
    if kind == MethodKind.CARD.value:
        return PaymentMethod(MethodKind.CARD, card_id=order["card_id"])
    if kind == MethodKind.NEW_CARD.value:
        return PaymentMethod(MethodKind.NEW_CARD, save_card=bool(order.get("save_card")))
    return PaymentMethod(
        MethodKind.AGREEMENT,
        agreement_number=order["agreement_number"],
        purchase_order=order.get("po", ""),
    )


def card_label(t: Translator, card: SavedCard, *, with_failure: bool = True) -> str:
    """ "Visa ending in 4242 (expires 12/2030)"; a card whose last payment failed says so."""
    label = t(
        "add_funds.method_saved",
        brand=t.card_brand(card.brand),
        last4=card.last4,
        month=f"{card.expiry_month:02d}",
        year=str(card.expiry_year),
    )
    if with_failure and card.failure and card.failed_on:
        failed_on = date.fromisoformat(card.failed_on)
        label = t("add_funds.method_failing", card=label, date=t.date(failed_on))
    return label


def method_label(t: Translator, account: Account, method: PaymentMethod) -> str:
    if method.kind in (MethodKind.CARD, MethodKind.NEW_CARD):
        card = account.card(method.card_id) if method.card_id else None
        return card_label(t, card) if card else t("add_funds.method_new_card")
    label = t("add_funds.method_agreement", number=method.agreement_number)
    if method.purchase_order:
        label += " · " + t("add_funds.po_short", po=method.purchase_order)
    return label
