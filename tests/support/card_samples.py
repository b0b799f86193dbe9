"""Every card the bot can send, filled with realistic data, for validation in every language."""

from __future__ import annotations

from typing import Any

from locales import LANGUAGES, Translator

_METHODS = [
    {"value": "card:card-1", "title": "Visa ending in 4242 (expires 12/2029)"},
    {
        "value": "card:card-2",
        "title": "Mastercard ending in 4444 (expires 01/2031) · last payment failed on Nov 3, 2026",
    },
    {"value": "agreement:EA-4471-2210", "title": "Enterprise Agreement EA-4471-2210"},
    {"value": "new_card", "title": "A new card"},
]


_ALERT_KINDS = (
    "balance_low",
    "balance_zero",
    "recharge_succeeded",
    "recharge_failed",
    "auto_recharge_disabled",
    "funds_expiring",
    "runway_low",
)


def samples(t: Translator) -> list[tuple[str, dict[str, Any]]]:
    """(template name, data) pairs covering each template's branches."""
    money = "$1,250.50"
    lots = [{"text": f"{money} of $2,000.00", "expires": "expires Nov 23, 2027"} for _ in range(10)]
    recent = [{"date": "Nov 23, 2026", "kind": "Purchase", "amount": "+$500.00"} for _ in range(4)]
    calls = t.ngettext("entry.calls", 1284, count="1,284", period="Nov 1 – 3")
    recent.append({"date": "Nov 23, 2026", "kind": calls, "amount": "-$985.66"})
    errors = {
        "amount": t.ngettext("error.amount.too_many_decimals", 2, decimals=2),
        "method": t("error.method.unknown"),
        "po": t("error.po"),
    }
    form = {
        "nonce": "0" * 32,
        "currency": "USD",
        "limits": t("add_funds.limits", minimum="$50.00", maximum="$100,000.00"),
        "methods": _METHODS,
        "expired": [],
    }
    expired = [t("add_funds.card_expired", card="Visa ending in 0069 (expires 01/2025)")]
    recommended = t.ngettext(
        "auto_recharge.recommended",
        7,
        days=7,
        busy="$120.00",
        average="$95.00",
        command=t("command.usage").split("|")[0],
    )
    users = [
        {
            "value": f"user-{i}",
            "title": t(
                "licences.user_line",
                name="Zhang Wei",
                upn=f"zhang{i}@contoso.example",
                standing=t("licences.missing.calling_plan"),
            ),
        }
        for i in range(8)
    ]
    licences = {
        "nonce": "0" * 32,
        "counts": {"licensed": 3, "eligible": 12, "missing": 9, "no_location": 1, "seats": 22},
        "view": {"filter": "eligible", "query": "", "page": 0},
        "filters": ("eligible", "missing", "licensed", "all"),
        "page_text": t.ngettext("licences.page", 12, page=1, pages=2, total=12),
    }
    results = [
        {"name": "Alex Wilber", "text": t("licences.outcome.assigned"), "good": True},
        {
            "name": "Isaiah Langer",
            "text": t("licences.missing.audio_conferencing_or_phone_system"),
            "good": False,
        },
    ]
    usage_facts = [
        {"title": t("usage.rows_read"), "value": "1,000,000"},
        {"title": t("usage.charged"), "value": "12,345"},
        {"title": t("usage.already_charged"), "value": "10"},
        {"title": t("usage.skipped.not_communications_credits"), "value": "987,645"},
        {"title": t("usage.debited"), "value": "$1,234.56"},
        {"title": t("usage.balance_after"), "value": "$0.00"},
    ]
    return [
        ("usage", {"advice": None}),
        (
            "usage",
            {
                "advice": {
                    "facts": usage_facts[:5],
                    "advice": t("usage.advice", recharge="$3,000.00", trigger="$700.00"),
                    "legacy": t.ngettext(
                        "usage.legacy", 120, users="120", initial="$1,000", trigger="$200"
                    ),
                    "chart": [{"x": str(d), "y": "123.45"} for d in range(1, 31)],
                    "chart_range": "Nov 1 – 30, 2026",
                }
            },
        ),
        (
            "usage_report",
            {"facts": usage_facts, "uncovered": t.ngettext("usage.uncovered", 3, count=3)},
        ),
        ("usage_report", {"facts": usage_facts, "uncovered": ""}),
        (
            "licences",
            {**licences, "users": users, "has_previous": False, "has_next": True, "message": ""},
        ),
        (
            "licences",
            {
                **licences,
                "users": [],
                "has_previous": True,
                "has_next": False,
                "message": t("licences.select_someone"),
            },
        ),
        *[
            (
                "licences_confirm",
                {
                    "nonce": "0" * 32,
                    "title": t.ngettext("licences.confirm_assign", 7, count=7),
                    "who": t.ngettext("licences.and_more", 2, names="A, B, C, D, E", more=2),
                    "seats_after": t("licences.seats_after", seats=0),
                    "seats_short": flag,
                    "offer_prerequisite": flag,
                    "prerequisites": [
                        "none",
                        "audio_conferencing",
                        "phone_system_domestic",
                        "phone_system_international",
                    ],
                },
            )
            for flag in (True, False)
        ],
        *[
            (
                "licences_result",
                {
                    "lines": results,
                    "summary": t.ngettext("licences.summary", 1, done=1, total=2),
                    "phone_numbers": flag,
                },
            )
            for flag in (True, False)
        ],
        ("text", {"text": t("cancelled")}),
        ("text", {"text": t("help.text")}),
        ("welcome", {}),
        ("welcome", {"channel": True}),
        ("menu", {"message": None}),
        ("menu", {"message": t("unknown.hint")}),
        ("language", {"languages": LANGUAGES, "current": t("language.automatic")}),
        (
            "add_funds",
            {
                **form,
                "values": {"amount": "", "method": "", "po": "", "save_card": "true"},
                "errors": {},
            },
        ),
        (
            "add_funds",
            {
                **form,
                "values": {
                    "amount": "12.345",
                    "method": "new_card",
                    "po": "PO-1",
                    "save_card": "false",
                },
                "errors": {**errors, "po": t("error.po_with_card")},
                "expired": expired,
            },
        ),
        (
            "add_funds_confirm",
            {
                "nonce": "0" * 32,
                "amount": money,
                "method": _METHODS[0]["title"],
                "balance_now": "$0.00",
                "balance_after": money,
                "expires": "Nov 23, 2027",
                "checkout_url": "",
                "state": "",
                "note": "",
            },
        ),
        # The confirmation around the card processor's hosted page: open, then paid.
        *[
            (
                "add_funds_confirm",
                {
                    "nonce": "",
                    "amount": money,
                    "method": t("add_funds.method_new_card"),
                    "balance_now": "$0.00",
                    "balance_after": money,
                    "expires": "Nov 23, 2027",
                    "checkout_url": url,
                    "state": state,
                    "note": t("confirm.checkout_note"),
                },
            )
            for url, state in (
                ("https://checkout.stripe.com/c/pay/cs_test_a1" + "x" * 300, "open"),
                ("", "paid"),
            )
        ],
        (
            "payment_method",
            {"checkout_url": "http://127.0.0.1:3978/sandbox/pay/t/cs_1", "saved": ""},
        ),
        ("payment_method", {"checkout_url": "", "saved": _METHODS[0]["title"]}),
        *[
            (
                "add_funds_receipt",
                {
                    "order_id": "0123456789AB",
                    "amount": money,
                    "balance": money,
                    "expires": "Nov 23, 2027",
                    "method": _METHODS[1]["title"],
                    "recommend_auto_recharge": recommend,
                },
            )
            for recommend in (True, False)
        ],
        ("add_funds_failed", {"reason": t("failed.reason.expired_card"), "amount": money}),
        ("add_funds_pending", {"order_id": "0123456789AB"}),
        (
            "status",
            {
                "balance": money,
                "currency": "USD",
                "auto_recharge": t("status.auto_recharge_off"),
                "lots": lots,
                "next_expiry": "x",
                "recent": recent,
                "runway": t.ngettext("usage.runway_days", 25, days="25"),
                "forecast": t(
                    "status.forecast_card_expires", date="Dec 25, 2026", recharge="Dec 12, 2026"
                ),
                "owed": "$300.00",
                "refresh_users": [f"29:1a{i:02d}" + "b" * 40 for i in range(60)],
            },
        ),
        (
            "status",
            {
                "balance": "$0.00",
                "currency": "USD",
                "auto_recharge": t("status.auto_recharge_off"),
                "lots": [],
                "next_expiry": "",
                "recent": [],
                "runway": "",
                "forecast": "",
                "owed": "",
                "refresh_users": ["29:1abc"],
            },
        ),
        # auto-recharge: the form empty and with every error, without saved methods, the
        # confirmation on (with each warning) and off, the saved card on and off.
        *[
            (
                "auto_recharge",
                {
                    "nonce": "0" * 32,
                    "currency": "USD",
                    "balance": t("auto_recharge.balance", balance=money),
                    "limits": t("auto_recharge.limits", minimum="$50.00", maximum="$100,000.00"),
                    "methods": methods,
                    "values": values,
                    "errors": errors,
                    "recommendation": recommendation,
                    "expired": expired if recommendation else [],
                },
            )
            for methods, values, errors, recommendation in (
                (
                    _METHODS[:2],
                    {
                        "enabled": "true",
                        "recharge_with": "1,000.00",
                        "trigger": "200.00",
                        "method": "card:card-1",
                    },
                    {},
                    recommended,
                ),
                (
                    _METHODS[:2],
                    {
                        "enabled": "true",
                        "recharge_with": "12.345",
                        "trigger": "-5",
                        "method": "bitcoin",
                    },
                    {
                        "recharge_with": t.ngettext(
                            "error.amount.too_many_decimals", 2, decimals=2
                        ),
                        "trigger": t("error.trigger.above_maximum", maximum="$100,000.00"),
                        "method": t("error.method.unknown"),
                    },
                    t(
                        "auto_recharge.recommendation_hint",
                        recharge="$3,000.00",
                        trigger="$700.00",
                        command="usage",
                    ),
                ),
                (
                    [],
                    {"enabled": "false", "recharge_with": "", "trigger": "", "method": ""},
                    {"method": t("error.method.unknown")},
                    "",
                ),
            )
        ],
        *[
            (
                "auto_recharge_confirm",
                {
                    "nonce": "0" * 32,
                    "facts": [
                        {"title": t("status.auto_recharge"), "value": t("auto_recharge.on")},
                        {"title": t("auto_recharge.recharge_with"), "value": money},
                        {"title": t("auto_recharge.trigger"), "value": trigger},
                        {"title": t("confirm.method"), "value": _METHODS[0]["title"]},
                        {"title": t("status.balance"), "value": "$0.00"},
                    ],
                    "warnings": warnings,
                },
            )
            for trigger, warnings in (
                ("$200.00", []),
                ("$0.00", [t("auto_recharge.warning.trigger_zero")]),
                (
                    "$2,000.00",
                    [t("auto_recharge.warning.no_lift", amount=money, trigger="$2,000.00")],
                ),
            )
        ],
        (
            "auto_recharge_confirm",
            {
                "nonce": "0" * 32,
                "facts": [
                    {"title": t("status.auto_recharge"), "value": t("auto_recharge.off")},
                    {"title": t("status.balance"), "value": money},
                ],
                "warnings": [t("auto_recharge.warning.off")],
            },
        ),
        (
            "auto_recharge_saved",
            {
                "summary": t("status.auto_recharge_on", amount=money, trigger="$200.00"),
                "method": _METHODS[1]["title"],
                "warnings": [],
            },
        ),
        (
            "auto_recharge_saved",
            {
                "summary": t("status.auto_recharge_off"),
                "method": "",
                "warnings": [t("auto_recharge.warning.off")],
            },
        ),
        # alert settings: the form with the defaults and no channel, then with an error, many
        # channels and more than are shown; the saved card with thresholds, and with all off.
        *[
            (
                "alert_settings",
                {
                    "nonce": "0" * 32,
                    "kinds": [
                        {"id": f"kind_{kind}", "title": t(f"alert.kind.{kind}"), "on": on}
                        for kind in _ALERT_KINDS
                    ],
                    "currency": "USD",
                    "thresholds": thresholds,
                    "runway": runway,
                    "runway_help": t(
                        "alert_settings.runway_help",
                        minimum="1",
                        maximum="90",
                        default=t.ngettext("usage.runway_days", 14, days="14"),
                    ),
                    "max_chars": 120,
                    "help": t.ngettext(
                        "alert_settings.thresholds_help", 5, count=5, maximum="$100,000.00"
                    ),
                    "default": default,
                    "channels": channels,
                    "more": more,
                    "errors": errors,
                },
            )
            for on, thresholds, runway, default, channels, more, errors in (
                (True, "", "", t("alert_settings.default_none", percent=20), [], "", {}),
                (
                    False,
                    "500, -100",
                    "30; 0",
                    t("alert_settings.default_purchase", amount="$200.00", percent=20),
                    [f"Finance \u00b7 General {i}" for i in range(15)],
                    t.ngettext("alert_settings.channels_more", 3, count=3),
                    {
                        "thresholds": t(
                            "alert_settings.error.amount",
                            amount="-100",
                            problem=t("error.amount.negative"),
                        ),
                        "runway": t(
                            "alert_settings.error.days", value="0", minimum="1", maximum="90"
                        ),
                    },
                ),
                (
                    True,
                    "1,000",
                    "1; 2; 3; 4; 5; 6",
                    t("alert_settings.default_trigger", amount="$200.00"),
                    ["19:0a1b2c3d4e5f@thread.tacv2"],
                    "",
                    {
                        "thresholds": t.ngettext("alert_settings.error.too_many", 5, count=5),
                        "runway": t.ngettext("alert_settings.error.too_many_days", 5, count=5),
                    },
                ),
            )
        ],
        *[
            (
                "alert_settings_saved",
                {
                    "facts": [
                        {
                            "title": t(f"alert.kind.{kind}"),
                            "value": t("alert_settings.on" if on else "alert_settings.off"),
                        }
                        for kind in _ALERT_KINDS
                    ]
                    + [{"title": t("alert_settings.thresholds"), "value": thresholds}]
                    + [{"title": t("alert_settings.runway"), "value": runway}],
                    "warnings": [] if on else [t("alert_settings.warning.none")],
                },
            )
            for on, thresholds, runway in (
                (True, "$500.00, $100.00", "30 days and 14 days"),
                (
                    False,
                    t("alert_settings.thresholds_default_none"),
                    t("alert_settings.runway_default", default="14 days"),
                ),
            )
        ],
        *_alert_samples(t),
        *_history_samples(t),
    ]


def _alert_samples(t: Translator) -> list[tuple[str, dict[str, Any]]]:
    """Each kind's alert card as the dispatcher builds it, and the alert history."""
    from datetime import UTC, datetime

    from cards import CardRenderer
    from cards.alert_cards import AlertCards
    from credits.alerts import Delivery, DeliveryState
    from credits.model import EventKind
    from dialogs.alert_commands import history_of
    from locales import Localizer

    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    data: dict[EventKind, dict[str, Any]] = {
        EventKind.BALANCE_LOW: {"threshold_minor": 10_000, "balance_minor": 9_512,
                                "currency": "USD", "runway_days": 12, "auto_recharge": False},
        EventKind.BALANCE_ZERO: {"currency": "USD"},
        EventKind.RECHARGE_SUCCEEDED: {"amount_minor": 50_000, "balance_minor": 59_000,
                                       "currency": "USD", "method_brand": "Visa",
                                       "method_last4": "4242", "method_month": 12,
                                       "method_year": 2029},
        EventKind.RECHARGE_FAILED: {"reason": "insufficient_funds", "attempt": 2, "of": 3,
                                    "next_attempt_at": "2026-11-24T12:00:00+00:00"},
        EventKind.AUTO_RECHARGE_DISABLED: {"reason": "method_unknown"},
        EventKind.FUNDS_EXPIRING: {"amount_minor": 20_000, "currency": "EUR",
                                   "expires_at": "2026-12-23T00:00:00+00:00", "days": 30},
        EventKind.FUNDS_EXPIRED: {"amount_minor": 20_000,
                                  "expired_at": "2026-11-20T00:00:00+00:00"},
        EventKind.PAYMENT_REVERSED: {"reason": "dispute", "amount_minor": 50_000,
                                     "taken_minor": 20_000, "owed_minor": 30_000,
                                     "owed_total_minor": 30_000, "balance_minor": 0,
                                     "order": "0123456789AB", "currency": "USD"},
        EventKind.RUNWAY_LOW: {"threshold_days": 14, "days_left": 9, "runs_out": "2026-12-02",
                               "cause": "expiry", "mean_minor": 4_250, "balance_minor": 120_000,
                               "expiring_minor": 80_000, "expiring_on": "2026-11-25",
                               "currency": "USD", "auto_recharge": False},
    }  # fmt: skip
    builder = AlertCards(CardRenderer(), Localizer.from_directory())
    deliveries = [
        Delivery("t", f"{kind.value}-1", kind, at, values, "a:1", "personal", t.tag, "Alex Wilber")
        for kind, values in data.items()
    ]
    history = [
        *deliveries,
        Delivery("t", "balance_low-1", EventKind.BALANCE_LOW, at, {}, "19:x", "channel", "fr",
                 "Billing", state=DeliveryState.DEAD, attempts=5),
    ]  # fmt: skip
    states = list(DeliveryState)
    history = [
        d if i >= len(states) else Delivery(**{**d.__dict__, "state": states[i], "attempts": i})
        for i, d in enumerate(history)
    ]
    # The runway alert's other branches: about auto-recharge's card, and today.
    card = {"card_brand": "visa", "card_last4": "4242", "card_month": 12, "card_year": 2026}
    for index, values in enumerate(
        (
            {"cause": "card_expires", "recharge_on": "2026-12-20", **card},
            {"cause": "card_failing", "recharge_on": "2026-11-24", "card_failed_on": "2026-11-20",
             **card},
            {"cause": "no_method", "recharge_on": "2026-11-24", "days_left": 0},
        )
    ):  # fmt: skip
        runway = {**data[EventKind.RUNWAY_LOW], "auto_recharge": True, "expiring_minor": 0}
        deliveries.append(
            Delivery("t", f"runway_low-14-{index}", EventKind.RUNWAY_LOW, at, runway | values,
                     "a:1", "personal", t.tag, "Alex Wilber")
        )  # fmt: skip
    return [
        *(("alert", builder.content(d, t)) for d in deliveries),
        ("alert_history", {"alerts": []}),
        ("alert_history", {"alerts": history_of(t, history)}),
    ]


def _history_samples(t: Translator) -> list[tuple[str, dict[str, Any]]]:
    """The history card as `dialogs/history.py` fills it (each list full, and empty), with
    errors at both dates, and the export card."""
    from datetime import UTC, date, datetime

    from credits.audit import AuditEntry
    from credits.history import LedgerSpan, Period
    from credits.model import (
        Account,
        EntryKind,
        LedgerEntry,
        MethodKind,
        Order,
        OrderStatus,
        PaymentMethod,
        SavedCard,
    )
    from dialogs.history import _facts, change_line, ledger_line, period_text

    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    card = SavedCard("card-1", "pm_1", "mastercard", "4444", 1, 2031)
    account = Account("t", "USD", cards=(card,), agreements=("EA-4471-2210",))
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    span = LedgerSpan(period, 1, 143, 123_456_789, 987_654_321)
    method = PaymentMethod(
        MethodKind.AGREEMENT,
        agreement_number="EA-4471-2210",
        purchase_order="PO-2026-000000000000000000000000000000000000000000000001",
    )
    order = Order(
        "t",
        "k" * 32,
        10_000_000,
        "USD",
        method,
        EntryKind.PURCHASE,
        "a",
        OrderStatus.SUCCEEDED,
        at,
        at,
    )
    entries = [
        (LedgerEntry(i, EntryKind.PURCHASE, 10**7, 99_999_999, "lot", "a", "k" * 32, at), order)
        for i in range(5)
    ] + [
        (LedgerEntry(i, EntryKind.USAGE, -98_566, 99_999_999, "lot", "chat", "r", at, 1284, at, at),
         None)
        for i in range(5)
    ]  # fmt: skip
    ledger = [ledger_line(t, account, entry, order) for entry, order in entries]
    changes = [
        AuditEntry(
            at,
            "a",
            "licence.assign",
            {
                "results": [
                    {"display_name": "Isaiah Langer Montgomery-Smythe", "outcome": "assigned"}
                ]
                * 50
            },
        ),
        AuditEntry(
            at,
            "a",
            "auto_recharge",
            {
                "enabled": True,
                "currency": "USD",
                "recharge_with_minor": 50_000,
                "trigger_minor": 10_000,
                "card_brand": "visa",
                "card_last4": "4242",
            },
        ),
        AuditEntry(at, "a", "auto_recharge", {"enabled": False}),
        AuditEntry(
            at,
            "a",
            "alert_settings",
            {
                "kinds_off": ["recharge_succeeded", "funds_expiring"],
                "thresholds_minor": [50_000, 10_000],
                "currency": "USD",
            },
        ),
        AuditEntry(at, "a", "alerts_here", {"conversation_id": "19:x"}),
        AuditEntry(at, "a", "licence.remove", {"results": [{"outcome": "failed"}]}),
    ] * 2
    names = {"a": "Megan Bowen-Featherstonehaugh"}
    channels = {"19:x": "Finance and Accounting › Communications Credits Alerts"}
    lines = [change_line(t, account, c, names, channels) for c in changes[:10]]
    view = {"view": "history", "first": "2026-11-01", "last": "2026-11-30", "list": "ledger"}
    base = {
        "view": view,
        "period": period_text(t, period),
        "facts": _facts(t, account, span),
        "inputs": {"from": "2026-11-01", "to": "2026-11-30"},
        "errors": {},
        "page": 1,
        "page_text": t.ngettext("history.page", 143, page=2, pages=15, total=143),
        "has_previous": True,
        "has_next": True,
        "can_export": True,
    }
    errors = {"from": t("history.error.not_a_date"), "to": t("history.error.reversed")}
    return [
        ("history", {**base, "list_name": "ledger", "lines": ledger}),
        ("history", {**base, "list_name": "changes", "lines": lines, "errors": errors}),
        ("history", {**base, "list_name": "ledger", "lines": [], "has_previous": False,
                     "has_next": False, "can_export": False}),
        ("history_export", {
            "period": period_text(t, period),
            "facts": _facts(t, account, span),
            "url": "https://ccbot.example/api/tenants/t/history.csv?from=2026-11-01&sig=x",
            "expiry": t.ngettext("history.export_expiry", 15, minutes="15", time="14:45"),
        }),
    ]  # fmt: skip
