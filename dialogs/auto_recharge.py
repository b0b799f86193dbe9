"""The auto-recharge settings flow: form (pre-filled) → confirmation with warnings → saved.

Like add funds, the values are checked on the server and kept in dialog state; the confirmation
card carries only the nonce, so a forged submit cannot change what is saved. Problems show at
their field with the typed values kept; warnings (a trigger of 0, a recharge too small to lift
the balance above the trigger, turning it off) show on the confirmation and never block.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from babel.numbers import format_currency
from botbuilder.core import MessageFactory, TurnContext
from botbuilder.dialogs import (
    ComponentDialog,
    Dialog,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)

from cards import CardRenderer
from credits import auto_recharge_settings as rules
from credits.accounts import AccountService
from credits.model import Account, AutoRecharge
from credits.money import Money, currency_exponent
from credits.repository import CreditsRepository
from dialogs.add_funds import _default_method, card_label
from dialogs.forms import amount_error, is_submit, replace_card, text_of
from dialogs.turn import tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

FORM = "auto_recharge"
CONFIRM = "auto_recharge_confirm"
FIELDS = ("enabled", "recharge_with", "trigger", "method")
# Typed text kept in dialog state is bounded: the card limits it, a forged submit may not.
MAX_FIELD_CHARS = 64


class AutoRechargeDialog(ComponentDialog):
    def __init__(
        self,
        accounts: AccountService,
        repository: CreditsRepository,
        cards: CardRenderer,
        *,
        minimum: Callable[[str], Money],
        maximum: Callable[[str], Money],
    ) -> None:
        super().__init__(AutoRechargeDialog.__name__)
        self._accounts = accounts
        self._repo = repository
        self._cards = cards
        self._minimum = minimum
        self._maximum = maximum
        self.add_dialog(
            WaterfallDialog(
                WaterfallDialog.__name__,
                [self.form_step, self.validate_step, self.save_step],
            )
        )
        self.initial_dialog_id = WaterfallDialog.__name__

    # --- steps ------------------------------------------------------------------------------

    async def form_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = step.options if isinstance(step.options, dict) else {}
        if options.get("resume"):
            # Back after something unexpected: wait again where the flow was, no new card.
            step.values.update(
                {k: options[k] for k in ("nonce", "fields", "settings") if k in options}
            )
            if options["resume"] == CONFIRM:
                step.values["awaiting_confirmation"] = True
                return await step.next(None)
            return Dialog.end_of_turn
        # The saved cards as the processor holds them now (a card saved or removed there).
        account = await self._accounts.sync_cards(tenant_id_of(step.context.activity))
        t = translator_of(step.context)
        nonce = options.get("nonce") or uuid.uuid4().hex
        step.values["nonce"] = nonce
        values = options.get("values") or _current_values(t, account)
        await self._send_form(step.context, t, account, nonce, values, options.get("errors") or {})
        return Dialog.end_of_turn

    async def validate_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        if step.values.pop("awaiting_confirmation", False):
            return Dialog.end_of_turn  # arrived through step.next: wait for the confirmation
        value = step.context.activity.value
        nonce = step.values["nonce"]
        if not is_submit(value, FORM, nonce):
            return await self._unexpected(step, FORM)
        t = translator_of(step.context)
        account = await self._accounts.get_or_create(tenant_id_of(step.context.activity))
        fields = _safe(value)
        currency = account.currency
        problems, settings = rules.check(
            account,
            enabled=fields["enabled"] == "true",
            recharge_with=fields["recharge_with"],
            trigger=fields["trigger"],
            method=fields["method"],
            locale=t.language.babel,
            limits=rules.Limits(self._minimum(currency), self._maximum(currency)),
        )
        if problems or settings is None:
            errors = {field: self._error(t, code, currency) for field, code in problems.items()}
            return await step.replace_dialog(
                self.initial_dialog_id, {"values": fields, "errors": errors, "nonce": nonce}
            )
        step.values["fields"] = fields
        step.values["settings"] = asdict(settings)
        await self._send_confirmation(step.context, t, account, settings, nonce)
        return Dialog.end_of_turn

    async def save_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        value = step.context.activity.value
        nonce = step.values["nonce"]
        if not is_submit(value, CONFIRM, nonce) or value.get("action") not in ("save", "change"):
            return await self._unexpected(step, CONFIRM)
        if value.get("action") == "change":
            return await step.replace_dialog(
                self.initial_dialog_id,
                {"values": step.values["fields"], "nonce": uuid.uuid4().hex},
            )
        await self.save(step.context, AutoRecharge(**step.values["settings"]))
        return await step.end_dialog()

    # --- saving -----------------------------------------------------------------------------

    async def save(self, turn_context: TurnContext, settings: AutoRecharge) -> None:
        tenant_id = tenant_id_of(turn_context.activity)
        t = translator_of(turn_context)
        try:
            account = await rules.save(self._repo, tenant_id, settings)
        except rules.MethodUnavailable:
            logger.warning("auto-recharge method left the account of tenant %s", tenant_id)
            await turn_context.send_activity(t("auto_recharge.expired_form"))
            return
        saved = account.auto_recharge
        card = self._cards.attachment(
            "auto_recharge_saved",
            t,
            summary=_summary(t, account),
            method=_method_title(t, account, saved.method_id) if saved.enabled else "",
            warnings=[t("auto_recharge.warning.off")] if not saved.enabled else [],
        )
        await replace_card(turn_context, card)

    async def show_saved(self, turn_context: TurnContext) -> None:
        """A Save pressed again after the flow ended: the settings as they are, nothing written."""
        t = translator_of(turn_context)
        account = await self._accounts.get_or_create(tenant_id_of(turn_context.activity))
        saved = account.auto_recharge
        card = self._cards.attachment(
            "auto_recharge_saved",
            t,
            summary=_summary(t, account),
            method=_method_title(t, account, saved.method_id) if saved.enabled else "",
            warnings=[t("auto_recharge.warning.off")] if not saved.enabled else [],
        )
        await replace_card(turn_context, card)

    # --- cards ------------------------------------------------------------------------------

    async def _send_form(
        self,
        turn_context: TurnContext,
        t: Translator,
        account: Account,
        nonce: str,
        values: dict[str, str],
        errors: dict[str, str],
    ) -> None:
        currency = account.currency
        await turn_context.send_activity(
            MessageFactory.attachment(
                self._cards.attachment(
                    "auto_recharge",
                    t,
                    nonce=nonce,
                    currency=currency,
                    balance=t(
                        "auto_recharge.balance",
                        balance=t.minor_money(account.balance_minor, currency),
                    ),
                    limits=t(
                        "auto_recharge.limits",
                        minimum=t.minor_money(self._minimum(currency).minor, currency),
                        maximum=t.minor_money(self._maximum(currency).minor, currency),
                    ),
                    methods=_methods(t, account),
                    values={k: text_of(values.get(k)) for k in FIELDS},
                    errors=errors,
                )
            )
        )

    async def _send_confirmation(
        self,
        turn_context: TurnContext,
        t: Translator,
        account: Account,
        settings: AutoRecharge,
        nonce: str,
    ) -> None:
        currency = account.currency
        facts = [
            {
                "title": t("status.auto_recharge"),
                "value": t("auto_recharge.on" if settings.enabled else "auto_recharge.off"),
            }
        ]
        if settings.enabled:
            facts += [
                {
                    "title": t("auto_recharge.recharge_with"),
                    "value": t.minor_money(settings.recharge_with_minor, currency),
                },
                {
                    "title": t("auto_recharge.trigger"),
                    "value": t.minor_money(settings.trigger_minor, currency),
                },
                {
                    "title": t("confirm.method"),
                    "value": _method_title(t, account, settings.method_id),
                },
            ]
        facts.append(
            {"title": t("status.balance"), "value": t.minor_money(account.balance_minor, currency)}
        )
        warnings = [
            t(
                f"auto_recharge.warning.{warning}",
                amount=t.minor_money(settings.recharge_with_minor, currency),
                trigger=t.minor_money(settings.trigger_minor, currency),
            )
            for warning in rules.warnings_of(settings)
        ]
        await turn_context.send_activity(
            MessageFactory.attachment(
                self._cards.attachment(
                    "auto_recharge_confirm", t, nonce=nonce, facts=facts, warnings=warnings
                )
            )
        )

    def _error(self, t: Translator, code: str, currency: str) -> str:
        return amount_error(
            t,
            code,
            minimum=t.minor_money(self._minimum(currency).minor, currency),
            maximum=t.minor_money(self._maximum(currency).minor, currency),
            decimals=currency_exponent(currency),
        )

    async def _unexpected(self, step: WaterfallStepContext, waiting_for: str) -> DialogTurnResult:
        """Typed text or a stale card while a card is open: say how to go on, and keep waiting
        for that same card (returning end_of_turn here would move the waterfall past it)."""
        t = translator_of(step.context)
        await step.context.send_activity(t("auto_recharge.use_the_form"))
        kept = {k: step.values[k] for k in ("nonce", "fields", "settings") if k in step.values}
        return await step.replace_dialog(self.initial_dialog_id, {"resume": waiting_for, **kept})


# --- helpers ----------------------------------------------------------------------------------


def _safe(value: dict[str, Any]) -> dict[str, str]:
    """The form's own fields, as bounded text: nothing else of a submit enters dialog state."""
    return {k: text_of(value.get(k))[:MAX_FIELD_CHARS] for k in FIELDS}


def _current_values(t: Translator, account: Account) -> dict[str, str]:
    """The saved settings as the form shows them, amounts written in the admin's locale."""
    saved = account.auto_recharge
    configured = saved.enabled or saved.recharge_with_minor > 0
    return {
        "enabled": "true" if saved.enabled else "false",
        "recharge_with": _plain(t, saved.recharge_with_minor, account.currency)
        if saved.recharge_with_minor
        else "",
        "trigger": _plain(t, saved.trigger_minor, account.currency) if configured else "",
        "method": rules.choice_of(account, saved.method_id) or _default_method(account),
    }


def _plain(t: Translator, minor: int, currency: str) -> str:
    """An amount without its currency symbol, as parse_amount reads it back ("1.250,50")."""
    amount = Money(minor, currency).to_decimal()
    return format_currency(
        amount, currency, format="#,##0.00", locale=t.language.babel, currency_digits=True
    )


def _methods(t: Translator, account: Account) -> list[dict[str, str]]:
    """Saved cards and agreement numbers, labelled as on the add-funds form."""
    methods = [
        {"value": f"{rules.CARD_CHOICE}{c.id}", "title": card_label(t, c)}
        for c in account.cards
        if c.saved
    ]
    methods += [
        {"value": f"{rules.AGREEMENT}{n}", "title": t("add_funds.method_agreement", number=n)}
        for n in account.agreements
    ]
    return methods


def _method_title(t: Translator, account: Account, method_id: str) -> str:
    choice = rules.choice_of(account, method_id)
    return next((m["title"] for m in _methods(t, account) if m["value"] == choice), "")


def _summary(t: Translator, account: Account) -> str:
    """The same words the status card uses."""
    saved = account.auto_recharge
    if not saved.enabled:
        return t("status.auto_recharge_off")
    return t(
        "status.auto_recharge_on",
        amount=t.minor_money(saved.recharge_with_minor, account.currency),
        trigger=t.minor_money(saved.trigger_minor, account.currency),
    )
