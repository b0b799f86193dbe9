"""The alert card of each event kind, in the recipient's language.

The card's buttons carry the same `{"command": ...}` data as the menu, so pressing one starts
the same dialog as choosing it from the menu; the alert stays as it was sent, and the flow opens
below it. "Turn on auto-recharge" also asks the form to start switched on (`turn_on`), filled in
with what the tenant's usage recommends.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from botbuilder.schema import Activity, ActivityTypes

from cards import CardRenderer
from credits.alerts import Delivery
from credits.forecast import Cause
from credits.model import EventKind
from credits.payments import DeclineReason
from locales import Localizer, Translator

_COLORS = {
    EventKind.BALANCE_LOW: "warning",
    EventKind.BALANCE_ZERO: "attention",
    EventKind.RECHARGE_SUCCEEDED: "good",
    EventKind.RECHARGE_FAILED: "attention",
    EventKind.AUTO_RECHARGE_DISABLED: "attention",
    EventKind.FUNDS_EXPIRING: "warning",
    EventKind.FUNDS_EXPIRED: "attention",
    EventKind.PAYMENT_REVERSED: "attention",
    EventKind.RUNWAY_LOW: "warning",
}
_DECLINES = {reason.value for reason in DeclineReason}


class AlertCards:
    def __init__(self, cards: CardRenderer, localizer: Localizer) -> None:
        self._cards = cards
        self._localizer = localizer

    def activity(self, delivery: Delivery) -> Activity:
        t = self._localizer.translator(delivery.locale)
        content = self.content(delivery, t)
        card = self._cards.render("alert", t, **content)
        return Activity(
            type=ActivityTypes.message,
            id=delivery.message_id,
            summary=content["title"],
            text=None,
            locale=t.tag,
            attachments=[
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
            # Teams shows alert-flagged messages in the activity feed, not only in the chat.
            channel_data={"notification": {"alert": True}},
        )

    def content(self, delivery: Delivery, t: Translator) -> dict[str, Any]:
        kind = delivery.kind
        body = _Body(t, delivery.data)
        _WRITERS[kind](body)
        return {
            "title": body.title or t(f"alert.{kind.value}.title"),
            "color": _COLORS[kind],
            "lines": body.lines,
            "facts": body.facts,
            "when": t.datetime(delivery.event_at),
            "actions": [{"data": data, "title": title} for data, title in body.actions],
        }


class _Body:
    """What an alert card says: its lines, its facts and its buttons, filled per kind."""

    def __init__(self, t: Translator, data: dict[str, Any]) -> None:
        self.t = t
        self.data = data
        self.currency = str(data.get("currency") or "USD")
        self.title = ""
        """Set when the kind's title says more than its name (the history shows the name)."""
        self.lines: list[str] = []
        self.facts: list[dict[str, str]] = []
        self.actions: list[tuple[dict[str, str], str]] = []

    def money(self, key: str) -> str:
        return self.t.minor_money(int(self.data.get(key) or 0), self.currency)

    def fact(self, title: str, value: str) -> None:
        self.facts.append({"title": title, "value": value})

    def button(self, command: str, title: str, **extra: str) -> None:
        self.actions.append(({"command": command, **extra}, title))


def _balance_low(body: _Body) -> None:
    t, data = body.t, body.data
    body.lines.append(
        t(
            "alert.balance_low.text",
            balance=body.money("balance_minor"),
            threshold=body.money("threshold_minor"),
        )
    )
    if isinstance(data.get("runway_days"), int):
        days = data["runway_days"]
        body.fact(t("status.runway"), t.ngettext("usage.runway_days", days, days=t.number(days)))
    body.button("add_funds", t("menu.add_funds"))
    if not data.get("auto_recharge"):
        body.button("auto_recharge", t("alert.action.turn_on_auto_recharge"), turn_on="true")


def _balance_zero(body: _Body) -> None:
    body.lines.append(body.t("alert.balance_zero.text"))
    body.button("add_funds", body.t("menu.add_funds"))


def _recharge_succeeded(body: _Body) -> None:
    t = body.t
    body.lines.append(t("alert.recharge_succeeded.text", amount=body.money("amount_minor")))
    body.fact(t("alert.fact.balance"), body.money("balance_minor"))
    method = _method(t, body.data)
    if method:
        body.fact(t("alert.fact.method"), method)
    body.button("status", t("menu.status"))


def _recharge_failed(body: _Body) -> None:
    t, data = body.t, body.data
    body.lines.append(_reason(t, str(data.get("reason") or "")))
    if isinstance(data.get("balance_minor"), int):
        # The crossing that caused this recharge raised no low-balance alert: say it here.
        body.fact(t("alert.fact.balance"), body.money("balance_minor"))
    attempt = t.number(int(data.get("attempt") or 1))
    body.fact(
        t("alert.fact.attempt"),
        t("alert.attempt_of", attempt=attempt, of=t.number(int(data.get("of") or 1))),
    )
    next_at = _time(data.get("next_attempt_at"))
    if next_at is not None:
        body.fact(t("alert.fact.next_attempt"), t.datetime(next_at))
    # Opens the card processor's hosted page to save another card (dialogs/payment_method.py).
    body.button("update_payment_method", t("alert.action.update_method"))
    body.button("add_funds", t("menu.add_funds"))


def _auto_recharge_disabled(body: _Body) -> None:
    t = body.t
    body.lines.append(t("alert.auto_recharge_disabled.text"))
    body.lines.append(_reason(t, str(body.data.get("reason") or "")))
    body.button("auto_recharge", t("alert.action.auto_recharge_settings"))


def _funds_expiring(body: _Body) -> None:
    t = body.t
    expires = _time(body.data.get("expires_at"))
    body.lines.append(
        t(
            "alert.funds_expiring.text",
            amount=body.money("amount_minor"),
            date=t.date(expires) if expires else "",
        )
    )
    body.button("status", t("menu.status"))


def _funds_expired(body: _Body) -> None:
    t = body.t
    expired = _time(body.data.get("expired_at"))
    body.lines.append(
        t(
            "alert.funds_expired.text",
            amount=body.money("amount_minor"),
            date=t.date(expired) if expired else "",
        )
    )
    body.button("status", t("menu.status"))


def _payment_reversed(body: _Body) -> None:
    t, data = body.t, body.data
    refund = data.get("reason") == "refund"
    body.lines.append(
        t(
            "alert.payment_reversed.refund" if refund else "alert.payment_reversed.dispute",
            amount=body.money("amount_minor"),
            order=str(data.get("order") or ""),
        )
    )
    body.fact(t("alert.fact.taken_back"), body.money("taken_minor"))
    if int(data.get("owed_minor") or 0):
        body.lines.append(t("alert.payment_reversed.owed", owed=body.money("owed_minor")))
        body.fact(t("alert.fact.owed"), body.money("owed_total_minor"))
    body.fact(t("alert.fact.balance"), body.money("balance_minor"))
    body.button("status", t("menu.status"))


def _runway_low(body: _Body) -> None:
    t, data = body.t, body.data
    days = int(data.get("days_left") or 0)
    runs_out = _day(data.get("runs_out"))
    when = t.date(runs_out) if runs_out else ""
    body.title = (
        t.ngettext("alert.runway_low.title_days", days, days=t.number(days))
        if days > 0
        else t("alert.runway_low.title_today")
    )
    cause = str(data.get("cause") or "")
    recharge_on = _day(data.get("recharge_on"))
    recharge = t.date(recharge_on) if recharge_on else ""
    if cause in (Cause.CARD_EXPIRES, Cause.CARD_FAILING):
        card = _method(t, {f"method_{k[5:]}": v for k, v in data.items() if k.startswith("card_")})
        failed_on = _day(data.get("card_failed_on"))
        body.lines.append(
            t(
                f"alert.runway_low.{cause}",
                card=card,
                recharge=recharge,
                failed=t.date(failed_on) if failed_on else "",
                date=when,
            )
        )
    elif cause == Cause.NO_METHOD:
        body.lines.append(t("alert.runway_low.no_method", recharge=recharge, date=when))
    else:
        body.lines.append(t("alert.runway_low.text", mean=body.money("mean_minor"), date=when))
    if int(data.get("expiring_minor") or 0):
        expiring_on = _day(data.get("expiring_on"))
        body.lines.append(
            t(
                "alert.runway_low.expiring",
                amount=body.money("expiring_minor"),
                date=t.date(expiring_on) if expiring_on else "",
            )
        )
    body.fact(t("alert.fact.runs_out"), when)
    body.fact(t("alert.fact.mean_daily"), body.money("mean_minor"))
    body.fact(t("status.balance"), body.money("balance_minor"))
    body.button("add_funds", t("menu.add_funds"))
    if not data.get("auto_recharge"):
        # Opens the auto-recharge form switched on, filled in with what the usage recommends.
        body.button("auto_recharge", t("alert.action.turn_on_auto_recharge"), turn_on="true")
    elif cause in (Cause.CARD_EXPIRES, Cause.CARD_FAILING, Cause.NO_METHOD):
        body.button("update_payment_method", t("alert.action.update_method"))


_WRITERS = {
    EventKind.BALANCE_LOW: _balance_low,
    EventKind.BALANCE_ZERO: _balance_zero,
    EventKind.RECHARGE_SUCCEEDED: _recharge_succeeded,
    EventKind.RECHARGE_FAILED: _recharge_failed,
    EventKind.AUTO_RECHARGE_DISABLED: _auto_recharge_disabled,
    EventKind.FUNDS_EXPIRING: _funds_expiring,
    EventKind.FUNDS_EXPIRED: _funds_expired,
    EventKind.PAYMENT_REVERSED: _payment_reversed,
    EventKind.RUNWAY_LOW: _runway_low,
}


def _reason(t: Translator, reason: str) -> str:
    if reason in _DECLINES:
        return t(f"failed.reason.{reason}")
    if reason.startswith("method_"):
        return t("alert.reason.method")
    return t("failed.reason.processing_error")


def _method(t: Translator, data: dict[str, Any]) -> str:
    if data.get("method_agreement"):
        return t("add_funds.method_agreement", number=str(data["method_agreement"]))
    if data.get("method_last4"):
        return t(
            "add_funds.method_saved",
            brand=t.card_brand(str(data.get("method_brand") or "")),
            last4=str(data["method_last4"]),
            month=f"{int(data.get('method_month') or 0):02d}",
            year=str(data.get("method_year") or ""),
        )
    return ""


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
