"""The alert settings flow: one form (pre-filled with the admin's saved choices) → saved.

Each admin chooses for themself which kinds of alert they receive, at which balances they
hear that it is low, and how many days before the forecast runs out they hear that it will
(runway thresholds); the form also lists the channels that receive every alert. The typed values
are checked on the server: a problem shows at the field with the typed values kept, and nothing
is saved. A submit the card could not have sent (another nonce, a toggle that is not
"true"/"false", a value that is not text or longer than the card allows) changes nothing.

Saving stores the admin's preferences, then sets the account's low-balance and runway thresholds
to every admin's (see `credits.alert_settings.sync_account_thresholds`), so the ledger raises a
low-balance alert, and the forecast a runway alert, at each of them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from babel.lists import format_list
from babel.numbers import format_decimal
from botbuilder.core import TurnContext
from botbuilder.dialogs import (
    ComponentDialog,
    Dialog,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)

from cards import CardRenderer
from credits import alert_settings as rules
from credits.accounts import AccountService
from credits.alerts import (
    CHOOSABLE_KINDS,
    DEFAULT_RUNWAY_DAYS,
    DEFAULT_THRESHOLD_PERCENT,
    AlertPreferences,
    AlertStore,
    default_thresholds,
)
from credits.audit import AuditAction, AuditTrail, alert_settings_details
from credits.conversations import Conversations
from credits.model import Account, EventKind
from credits.money import Money, currency_exponent
from credits.repository import CreditsRepository
from dialogs.card_actions import note, show
from dialogs.channels import display_name
from dialogs.forms import actor_of, amount_error, is_submit, text_of, wait_again
from dialogs.turn import tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

FORM = "alert_settings"
THRESHOLDS = "thresholds"
RUNWAY = "runway"
KIND_FIELDS = {kind: f"kind_{kind.value}" for kind in CHOOSABLE_KINDS}
FIELDS = (*KIND_FIELDS.values(), THRESHOLDS, RUNWAY)
# The card lets an admin type this much; a longer value was not typed into the card.
THRESHOLDS_MAX_CHARS = 120
# Channels listed on the form; more are counted, so the card stays far below Teams' limit.
MAX_CHANNELS_SHOWN = 15


class AlertSettingsDialog(ComponentDialog):
    def __init__(
        self,
        accounts: AccountService,
        repository: CreditsRepository,
        alerts: AlertStore,
        conversations: Conversations,
        cards: CardRenderer,
        *,
        maximum: Callable[[str], Money],
        audit: AuditTrail,
    ) -> None:
        """`audit` hears who saved which alert settings (`history` shows them)."""
        super().__init__(AlertSettingsDialog.__name__)
        self._accounts = accounts
        self._repo = repository
        self._alerts = alerts
        self._conversations = conversations
        self._cards = cards
        self._maximum = maximum
        self._audit = audit
        self.add_dialog(WaterfallDialog(WaterfallDialog.__name__, [self.form_step, self.save_step]))
        self.initial_dialog_id = WaterfallDialog.__name__

    # --- steps ------------------------------------------------------------------------------

    async def form_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = step.options if isinstance(step.options, dict) else {}
        tenant_id = tenant_id_of(step.context.activity) or ""
        account = await self._accounts.get_or_create(tenant_id)
        t = translator_of(step.context)
        nonce = options.get("nonce") or uuid.uuid4().hex
        step.values["nonce"] = nonce
        values = options.get("values")
        if not values:
            saved = await self._alerts.preferences(tenant_id, actor_of(step.context))
            values = _values_of(t, account, saved or AlertPreferences())
        await self._send_form(step.context, t, account, nonce, values, options.get("errors") or {})
        return Dialog.end_of_turn

    async def save_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        value = step.context.activity.value
        nonce = step.values["nonce"]
        if not is_submit(value, FORM, nonce) or not _well_formed(value):
            return await self._unexpected(step)
        t = translator_of(step.context)
        account = await self._accounts.get_or_create(tenant_id_of(step.context.activity) or "")
        fields = _safe(value)
        currency = account.currency
        problem, thresholds = rules.parse_thresholds(
            fields[THRESHOLDS], currency, t.language.babel, maximum=self._maximum(currency)
        )
        errors = {THRESHOLDS: self._error(t, problem, currency)} if problem is not None else {}
        runway_problem, runway_days = rules.parse_runway_days(fields[RUNWAY])
        if runway_problem is not None:
            errors[RUNWAY] = _runway_error(t, runway_problem)
        if errors:
            return await step.replace_dialog(
                self.initial_dialog_id, {"values": fields, "errors": errors, "nonce": nonce}
            )
        kinds = frozenset(kind for kind, name in KIND_FIELDS.items() if fields[name] == "true")
        await self.save(step.context, AlertPreferences(kinds, thresholds, runway_days))
        return await step.end_dialog()

    # --- saving -----------------------------------------------------------------------------

    async def save(self, turn_context: TurnContext, preferences: AlertPreferences) -> None:
        tenant_id = tenant_id_of(turn_context.activity) or ""
        admin = actor_of(turn_context)
        before = await self._alerts.preferences(tenant_id, admin)
        await self._alerts.save_preferences(tenant_id, admin, preferences)
        account = await rules.sync_account_thresholds(
            self._repo, tenant_id, self._alerts.all_preferences
        )
        if preferences != before:
            # Only a change is audited: the same save pressed or delivered again is not one.
            await self._audit.record(
                tenant_id,
                admin,
                AuditAction.ALERT_SETTINGS,
                alert_settings_details(preferences, account.currency),
            )
        logger.info("alert preferences saved for an admin of tenant %s", tenant_id)
        await show(
            turn_context,
            self._saved_card(translator_of(turn_context), account, preferences),
            final=True,
        )

    async def show_saved(self, turn_context: TurnContext) -> None:
        """Save pressed on a form whose flow has ended: the settings as saved, nothing written."""
        tenant_id = tenant_id_of(turn_context.activity) or ""
        account = await self._accounts.get_or_create(tenant_id)
        saved = await self._alerts.preferences(tenant_id, actor_of(turn_context))
        card = self._saved_card(translator_of(turn_context), account, saved or AlertPreferences())
        await show(turn_context, card, final=True)

    def _saved_card(self, t: Translator, account: Account, preferences: AlertPreferences):
        currency = account.currency
        facts = [
            {
                "title": t(f"alert.kind.{kind.value}"),
                "value": t(
                    "alert_settings.on" if kind in preferences.kinds else "alert_settings.off"
                ),
            }
            for kind in CHOOSABLE_KINDS
        ]
        if preferences.thresholds_minor:
            thresholds = format_list(
                [t.minor_money(minor, currency) for minor in preferences.thresholds_minor],
                locale=t.language.babel,
            )
        else:
            defaults = default_thresholds(account)
            thresholds = (
                t("alert_settings.thresholds_default", amount=t.minor_money(defaults[0], currency))
                if defaults
                else t("alert_settings.thresholds_default_none")
            )
        facts.append({"title": t("alert_settings.thresholds"), "value": thresholds})
        facts.append({"title": t("alert_settings.runway"), "value": _runway_text(t, preferences)})
        none_on = not any(kind in preferences.kinds for kind in CHOOSABLE_KINDS)
        return self._cards.attachment(
            "alert_settings_saved",
            t,
            facts=facts,
            warnings=[t("alert_settings.warning.none")] if none_on else [],
        )

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
        channels = await self._channels(t, account.tenant_id)
        shown = channels[:MAX_CHANNELS_SHOWN]
        await show(
            turn_context,
            self._cards.attachment(
                "alert_settings",
                t,
                nonce=nonce,
                kinds=[
                    {
                        "id": name,
                        "title": t(f"alert.kind.{kind.value}"),
                        "on": text_of(values.get(name)) != "false",
                    }
                    for kind, name in KIND_FIELDS.items()
                ],
                currency=currency,
                thresholds=text_of(values.get(THRESHOLDS))[:THRESHOLDS_MAX_CHARS],
                runway=text_of(values.get(RUNWAY))[:THRESHOLDS_MAX_CHARS],
                runway_help=t(
                    "alert_settings.runway_help",
                    minimum=t.number(rules.MIN_RUNWAY_DAYS),
                    maximum=t.number(rules.MAX_RUNWAY_DAYS),
                    default=_days(t, DEFAULT_RUNWAY_DAYS),
                ),
                max_chars=THRESHOLDS_MAX_CHARS,
                help=t.ngettext(
                    "alert_settings.thresholds_help",
                    rules.MAX_THRESHOLDS,
                    count=t.number(rules.MAX_THRESHOLDS),
                    maximum=t.minor_money(self._maximum(currency).minor, currency),
                ),
                default=_default_text(t, account),
                channels=shown,
                more=(
                    t.ngettext(
                        "alert_settings.channels_more",
                        len(channels) - len(shown),
                        count=t.number(len(channels) - len(shown)),
                    )
                    if len(channels) > len(shown)
                    else ""
                ),
                errors=errors,
            ),
        )

    async def _channels(self, t: Translator, tenant_id: str) -> list[str]:
        """The channels and group chats subscribed to alerts, by name ("Team › Channel"), in a
        stable order; one Teams never named is shown as "Channel", never by its raw id."""
        names = [
            display_name(t, c)
            or t(f"alert_history.recipient.{'groupChat' if c.kind == 'groupChat' else 'channel'}")
            for c in await self._conversations.list_active(tenant_id)
            if c.subscribed and c.kind != "personal"
        ]
        return sorted(names, key=str.casefold)

    def _error(self, t: Translator, problem: rules.ThresholdProblem, currency: str) -> str:
        if problem.code == rules.SEPARATOR:
            return t(
                "alert_settings.error.amount",
                amount=problem.amount[:24],
                problem=t("alert_settings.error.separator"),
            )
        if problem.code == rules.TOO_MANY:
            return t.ngettext(
                "alert_settings.error.too_many",
                rules.MAX_THRESHOLDS,
                count=t.number(rules.MAX_THRESHOLDS),
            )
        message = amount_error(
            t,
            problem.code,
            maximum=t.minor_money(self._maximum(currency).minor, currency),
            decimals=currency_exponent(currency),
        )
        if not problem.amount:
            return message
        return t("alert_settings.error.amount", amount=problem.amount[:24], problem=message)

    async def _unexpected(self, step: WaterfallStepContext) -> DialogTurnResult:
        """Typed text, a stale or forged card while the form is open: say how to go on, and
        keep waiting for the same form."""
        t = translator_of(step.context)
        await note(step.context, t("alert_settings.use_the_form"))
        return wait_again(step)


# --- helpers ----------------------------------------------------------------------------------


# A form shown before the runway alert existed has no toggle for it: left on, as by default.
_LATER_TOGGLES = {KIND_FIELDS[EventKind.RUNWAY_LOW]: "true"}


def _well_formed(value: dict[str, Any]) -> bool:
    """What the card sends: every toggle "true" or "false", the thresholds text within bounds
    (Teams may leave an empty text input out)."""
    toggles = {**_LATER_TOGGLES, **value}
    if any(toggles.get(name) not in ("true", "false") for name in KIND_FIELDS.values()):
        return False
    return all(
        isinstance(text := value.get(name, ""), str) and len(text) <= THRESHOLDS_MAX_CHARS
        for name in (THRESHOLDS, RUNWAY)
    )


def _safe(value: dict[str, Any]) -> dict[str, str]:
    """The form's own fields, as bounded text: nothing else of a submit enters dialog state."""
    value = {**_LATER_TOGGLES, **value}
    return {k: text_of(value.get(k))[:THRESHOLDS_MAX_CHARS] for k in FIELDS}


def _values_of(t: Translator, account: Account, preferences: AlertPreferences) -> dict[str, str]:
    """Saved preferences as the form shows them, amounts written in the admin's locale."""
    values = {
        name: "true" if kind in preferences.kinds else "false" for kind, name in KIND_FIELDS.items()
    }
    locale = t.language.babel
    # The separator the field reads in every language (credits.alert_settings).
    values[THRESHOLDS] = "; ".join(
        _plain(locale, minor, account.currency) for minor in preferences.thresholds_minor
    )
    values[RUNWAY] = "; ".join(str(days) for days in preferences.runway_days)
    return values


def _days(t: Translator, days: int) -> str:
    return t.ngettext("usage.runway_days", days, days=t.number(days))


def _runway_text(t: Translator, preferences: AlertPreferences) -> str:
    if preferences.runway_days:
        return format_list([_days(t, d) for d in preferences.runway_days], locale=t.language.babel)
    return t("alert_settings.runway_default", default=_days(t, DEFAULT_RUNWAY_DAYS))


def _runway_error(t: Translator, problem: rules.ThresholdProblem) -> str:
    if problem.code == rules.TOO_MANY:
        return t.ngettext(
            "alert_settings.error.too_many_days",
            rules.MAX_THRESHOLDS,
            count=t.number(rules.MAX_THRESHOLDS),
        )
    return t(
        "alert_settings.error.days",
        value=problem.amount[:24],
        minimum=t.number(rules.MIN_RUNWAY_DAYS),
        maximum=t.number(rules.MAX_RUNWAY_DAYS),
    )


def _plain(locale: str, minor: int, currency: str) -> str:
    """An amount without its currency, as parse_amount reads it back ("500", "1.250,50")."""
    amount = Money(minor, currency).to_decimal()
    exponent = currency_exponent(currency)
    whole = minor % (10**exponent) == 0
    pattern = "#,##0" if whole else "#,##0." + "0" * exponent
    return format_decimal(amount, format=pattern, locale=locale)


def _default_text(t: Translator, account: Account) -> str:
    """What applies when the field is left empty, and why."""
    defaults = default_thresholds(account)
    if not defaults:
        return t("alert_settings.default_none", percent=DEFAULT_THRESHOLD_PERCENT)
    amount = t.minor_money(defaults[0], account.currency)
    if account.auto_recharge.enabled and account.auto_recharge.trigger_minor > 0:
        return t("alert_settings.default_trigger", amount=amount)
    return t("alert_settings.default_purchase", amount=amount, percent=DEFAULT_THRESHOLD_PERCENT)
