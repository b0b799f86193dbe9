"""The alert card of each event kind, in the recipient's language.

The card's buttons carry the same `{"command": ...}` data as the menu, so pressing one starts
the same dialog as choosing it from the menu.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botbuilder.schema import Activity, ActivityTypes

from bot.i18n import Localizer, Translator
from cards import CardRenderer
from credits.alerts import Delivery
from credits.model import EventKind
from credits.payments import DeclineReason

_COLORS = {
    EventKind.BALANCE_LOW: "warning",
    EventKind.BALANCE_ZERO: "attention",
    EventKind.RECHARGE_SUCCEEDED: "good",
    EventKind.RECHARGE_FAILED: "attention",
    EventKind.AUTO_RECHARGE_DISABLED: "attention",
    EventKind.FUNDS_EXPIRING: "warning",
    EventKind.FUNDS_EXPIRED: "attention",
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
        kind, data = delivery.kind, delivery.data
        currency = str(data.get("currency") or "USD")

        def money(key: str) -> str:
            return t.minor_money(int(data.get(key) or 0), currency)

        lines: list[str] = []
        facts: list[dict[str, str]] = []
        actions: list[tuple[str, str]] = []
        if kind == EventKind.BALANCE_LOW:
            lines.append(
                t(
                    "alert.balance_low.text",
                    balance=money("balance_minor"),
                    threshold=money("threshold_minor"),
                )
            )
            if isinstance(data.get("runway_days"), int):
                facts.append(
                    {
                        "title": t("status.runway"),
                        "value": t("usage.runway_days", days=t.number(int(data["runway_days"]))),
                    }
                )
            actions.append(("add_funds", t("menu.add_funds")))
            if not data.get("auto_recharge"):
                actions.append(("auto_recharge", t("alert.action.turn_on_auto_recharge")))
        elif kind == EventKind.BALANCE_ZERO:
            lines.append(t("alert.balance_zero.text"))
            actions.append(("add_funds", t("menu.add_funds")))
        elif kind == EventKind.RECHARGE_SUCCEEDED:
            lines.append(t("alert.recharge_succeeded.text", amount=money("amount_minor")))
            facts.append({"title": t("alert.fact.balance"), "value": money("balance_minor")})
            method = _method(t, data)
            if method:
                facts.append({"title": t("alert.fact.method"), "value": method})
            actions.append(("status", t("menu.status")))
        elif kind == EventKind.RECHARGE_FAILED:
            lines.append(_reason(t, str(data.get("reason") or "")))
            facts.append(
                {
                    "title": t("alert.fact.attempt"),
                    "value": t(
                        "alert.attempt_of",
                        attempt=t.number(int(data.get("attempt") or 1)),
                        of=t.number(int(data.get("of") or 1)),
                    ),
                }
            )
            next_at = _time(data.get("next_attempt_at"))
            if next_at is not None:
                facts.append({"title": t("alert.fact.next_attempt"), "value": t.datetime(next_at)})
            actions.append(("auto_recharge", t("alert.action.update_method")))
            actions.append(("add_funds", t("menu.add_funds")))
        elif kind == EventKind.AUTO_RECHARGE_DISABLED:
            lines.append(t("alert.auto_recharge_disabled.text"))
            lines.append(_reason(t, str(data.get("reason") or "")))
            actions.append(("auto_recharge", t("alert.action.auto_recharge_settings")))
        elif kind == EventKind.FUNDS_EXPIRING:
            expires = _time(data.get("expires_at"))
            lines.append(
                t(
                    "alert.funds_expiring.text",
                    amount=money("amount_minor"),
                    date=t.date(expires) if expires else "",
                )
            )
            actions.append(("status", t("menu.status")))
        elif kind == EventKind.FUNDS_EXPIRED:
            expired = _time(data.get("expired_at"))
            lines.append(
                t(
                    "alert.funds_expired.text",
                    amount=money("amount_minor"),
                    date=t.date(expired) if expired else "",
                )
            )
            actions.append(("status", t("menu.status")))
        return {
            "title": t(f"alert.{kind.value}.title"),
            "color": _COLORS[kind],
            "lines": lines,
            "facts": facts,
            "when": t.datetime(delivery.event_at),
            "actions": [{"command": c, "title": title} for c, title in actions],
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
            brand=str(data.get("method_brand") or ""),
            last4=str(data["method_last4"]),
            month=f"{int(data.get('method_month') or 0):02d}",
            year=str(data.get("method_year") or ""),
        )
    return ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
