"""The auto-recharge settings flow: form (pre-filled) → confirmation with warnings → saved.

Like add funds, the values are checked on the server and kept in dialog state; the confirmation
card carries only the nonce, so a forged submit cannot change what is saved. Problems show at
their field with the typed values kept; warnings (a trigger of 0, a recharge too small to lift
the balance above the trigger, turning it off) show on the confirmation and never block.

While auto-recharge is off, the form is filled in with what the tenant's usage recommends
(`credits.recommendation`: the trigger covers a busy day's spend over the lead time, the
recharge a month at the mean), and says so; "Turn on auto-recharge" on an alert also starts it
switched on. While it is on, the saved values stay and the recommendation is only mentioned.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from babel.numbers import format_currency
from botbuilder.core import TurnContext
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
from credits.audit import AuditAction, AuditTrail, auto_recharge_details
from credits.model import Account, AutoRecharge
from credits.money import Money, currency_exponent
from credits.recommendation import Advice, FundingAdvisor
from credits.repository import CreditsRepository
from dialogs.add_funds import _default_method, card_choices, card_label, expired_notes
from dialogs.card_actions import note, say, show
from dialogs.forms import actor_of, amount_error, is_submit, text_of
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
        advisor: FundingAdvisor,
        clock: Callable[[], datetime],
        audit: AuditTrail,
    ) -> None:
        """`audit` hears who saved which settings (`history` shows them)."""
        super().__init__(AutoRechargeDialog.__name__)
        self._accounts = accounts
        self._repo = repository
        self._cards = cards
        self._minimum = minimum
        self._maximum = maximum
        self._advisor = advisor
        self._clock = clock
        self._audit = audit
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
                {
                    k: options[k]
                    for k in ("nonce", "fields", "settings", "recommendation")
                    if k in options
                }
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
        values = options.get("values")
        recommendation = text_of(options.get("recommendation"))
        if not values:
            values = _current_values(t, account, self._today())
            advice = await self._advisor.advise(account.tenant_id, with_licences=False)
            values, recommendation = _recommended(t, account, advice, values)
            if options.get("turn_on"):
                values["enabled"] = "true"
        step.values["recommendation"] = recommendation
        await self._send_form(
            step.context, t, account, nonce, values, options.get("errors") or {}, recommendation
        )
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
            today=self._today(),
        )
        if problems or settings is None:
            errors = {field: self._error(t, code, currency) for field, code in problems.items()}
            return await step.replace_dialog(
                self.initial_dialog_id,
                {
                    "values": fields,
                    "errors": errors,
                    "nonce": nonce,
                    "recommendation": step.values.get("recommendation", ""),
                },
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
                {
                    "values": step.values["fields"],
                    "nonce": uuid.uuid4().hex,
                    "recommendation": step.values.get("recommendation", ""),
                },
            )
        await self.save(step.context, AutoRecharge(**step.values["settings"]))
        return await step.end_dialog()

    # --- saving -----------------------------------------------------------------------------

    async def save(self, turn_context: TurnContext, settings: AutoRecharge) -> None:
        tenant_id = tenant_id_of(turn_context.activity)
        t = translator_of(turn_context)
        try:
            result = await rules.save(self._repo, tenant_id, settings, self._today())
        except rules.MethodUnavailable:
            logger.warning("auto-recharge method left the account of tenant %s", tenant_id)
            await say(turn_context, t("auto_recharge.expired_form"))
            return
        account = result.account
        if result.changed:
            # Only a change is audited: the same save delivered again (which may run on two
            # turns at once, one losing the dialog state's race afterwards) writes nothing.
            await self._audit.record(
                tenant_id,
                actor_of(turn_context),
                AuditAction.AUTO_RECHARGE,
                auto_recharge_details(account),
            )
        saved = account.auto_recharge
        card = self._cards.attachment(
            "auto_recharge_saved",
            t,
            summary=_summary(t, account),
            method=_method_title(t, account, saved.method_id) if saved.enabled else "",
            warnings=[t("auto_recharge.warning.off")] if not saved.enabled else [],
        )
        await show(turn_context, card, final=True)

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
        await show(turn_context, card, final=True)

    # --- cards ------------------------------------------------------------------------------

    async def _send_form(
        self,
        turn_context: TurnContext,
        t: Translator,
        account: Account,
        nonce: str,
        values: dict[str, str],
        errors: dict[str, str],
        recommendation: str,
    ) -> None:
        currency = account.currency
        today = self._today()
        await show(
            turn_context,
            self._cards.attachment(
                "auto_recharge",
                t,
                nonce=nonce,
                currency=currency,
                balance=t(
                    "auto_recharge.balance",
                    balance=t.minor_money(account.balance_minor, currency),
                ),
                recommendation=recommendation,
                limits=t(
                    "auto_recharge.limits",
                    minimum=t.minor_money(self._minimum(currency).minor, currency),
                    maximum=t.minor_money(self._maximum(currency).minor, currency),
                ),
                methods=_methods(t, account, today),
                expired=expired_notes(t, account, today),
                values={k: text_of(values.get(k)) for k in FIELDS},
                errors=errors,
            ),
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
        await show(
            turn_context,
            self._cards.attachment(
                "auto_recharge_confirm", t, nonce=nonce, facts=facts, warnings=warnings
            ),
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
        await note(step.context, t("auto_recharge.use_the_form"))
        kept = {
            k: step.values[k]
            for k in ("nonce", "fields", "settings", "recommendation")
            if k in step.values
        }
        return await step.replace_dialog(self.initial_dialog_id, {"resume": waiting_for, **kept})

    def _today(self) -> date:
        return self._clock().date()


# --- helpers ----------------------------------------------------------------------------------


def _safe(value: dict[str, Any]) -> dict[str, str]:
    """The form's own fields, as bounded text: nothing else of a submit enters dialog state."""
    return {k: text_of(value.get(k))[:MAX_FIELD_CHARS] for k in FIELDS}


def _current_values(t: Translator, account: Account, today: date) -> dict[str, str]:
    """The saved settings as the form shows them, amounts written in the admin's locale."""
    saved = account.auto_recharge
    configured = saved.enabled or saved.recharge_with_minor > 0
    choice = rules.choice_of(account, saved.method_id)
    if rules.method_id_of(account, choice, today) is None:
        choice = ""  # an expired card is not offered
    return {
        "enabled": "true" if saved.enabled else "false",
        "recharge_with": _plain(t, saved.recharge_with_minor, account.currency)
        if saved.recharge_with_minor
        else "",
        "trigger": _plain(t, saved.trigger_minor, account.currency) if configured else "",
        "method": choice or _default_method(account, today),
    }


def _recommended(
    t: Translator, account: Account, advice: Advice | None, values: dict[str, str]
) -> tuple[dict[str, str], str]:
    """The form's values with the usage's recommendation, and the line that says where its
    numbers come from; unchanged with no usage yet. With auto-recharge on, the saved values
    stay and the line only mentions the recommendation."""
    if advice is None or not any(amount for _, amount in advice.recommendation.series):
        return values, ""
    r = advice.recommendation
    currency = account.currency
    command = t("command.usage").split("|")[0]
    if account.auto_recharge.enabled:
        return values, t(
            "auto_recharge.recommendation_hint",
            recharge=t.minor_money(r.recharge_minor, currency),
            trigger=t.minor_money(r.trigger_minor, currency),
            command=command,
        )
    filled = {
        **values,
        "recharge_with": _plain(t, r.recharge_minor, currency),
        "trigger": _plain(t, r.trigger_minor, currency),
    }
    lead_days = r.lead_days
    return filled, t.ngettext(
        "auto_recharge.recommended",
        lead_days,
        days=t.number(lead_days),
        busy=t.minor_money(r.p95_minor, currency),
        average=t.minor_money(r.mean_30_minor, currency),
        command=command,
    )


def _plain(t: Translator, minor: int, currency: str) -> str:
    """An amount without its currency symbol, as parse_amount reads it back ("1.250,50")."""
    amount = Money(minor, currency).to_decimal()
    return format_currency(
        amount, currency, format="#,##0.00", locale=t.language.babel, currency_digits=True
    )


def _methods(t: Translator, account: Account, today: date) -> list[dict[str, str]]:
    """Saved cards on offer and agreement numbers, labelled as on the add-funds form."""
    methods = card_choices(t, account, today)
    methods += [
        {"value": f"{rules.AGREEMENT}{n}", "title": t("add_funds.method_agreement", number=n)}
        for n in account.agreements
    ]
    return methods


def _method_title(t: Translator, account: Account, method_id: str) -> str:
    if method_id.startswith(rules.AGREEMENT):
        return t("add_funds.method_agreement", number=method_id[len(rules.AGREEMENT) :])
    card = account.card(method_id) if method_id else None
    return card_label(t, card) if card is not None else ""


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
