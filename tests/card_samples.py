"""Every card the bot can send, filled with realistic data, for validation in every language."""

from __future__ import annotations

from typing import Any

from bot.i18n import LANGUAGES, Translator

_METHODS = [
    {"value": "card:card-1", "title": "Visa ending in 4242 (expires 12/2029)"},
    {"value": "agreement:EA-4471-2210", "title": "Enterprise Agreement EA-4471-2210"},
    {"value": "new_card", "title": "A new card"},
]


def samples(t: Translator) -> list[tuple[str, dict[str, Any]]]:
    """(template name, data) pairs covering each template's branches."""
    money = "$1,250.50"
    lots = [{"text": f"{money} of $2,000.00", "expires": "expires Nov 23, 2027"} for _ in range(10)]
    recent = [{"date": "Nov 23, 2026", "kind": "Purchase", "amount": "+$500.00"} for _ in range(5)]
    errors = {
        "amount": t("error.amount.too_many_decimals", decimals=2),
        "method": t("error.method.unknown"),
        "po": t("error.po"),
        "card": t("error.card.number"),
    }
    form = {
        "nonce": "0" * 32,
        "currency": "USD",
        "limits": t("add_funds.limits", minimum="$50.00", maximum="$100,000.00"),
        "methods": _METHODS,
        "years": [str(2026 + i) for i in range(12)],
    }
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
        "page_text": t("licences.page", page=1, pages=2, total=12),
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
                    "legacy": t("usage.legacy", users="120", initial="$1,000", trigger="$200"),
                    "chart": [{"x": f"Nov {d}, 2026", "y": "123.45"} for d in range(1, 31)],
                }
            },
        ),
        ("usage_report", {"facts": usage_facts, "uncovered": t("usage.uncovered", count=3)}),
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
                    "title": t("licences.confirm_assign", count=7),
                    "who": t("licences.and_more", names="A, B, C, D, E", more=2),
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
                    "summary": t("licences.summary", done=1, total=2),
                    "phone_numbers": flag,
                },
            )
            for flag in (True, False)
        ],
        ("welcome", {}),
        ("menu", {"message": None}),
        ("menu", {"message": t("unknown.hint")}),
        ("language", {"languages": LANGUAGES, "current": t("language.automatic")}),
        ("add_funds", {**form, "values": {"amount": "", "method": "", "po": ""}, "errors": {}}),
        (
            "add_funds",
            {
                **form,
                "values": {"amount": "12.345", "method": "new_card", "po": "PO-1"},
                "errors": errors,
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
            },
        ),
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
                "runway": t("usage.runway_days", days="25"),
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
                },
            )
            for methods, values, errors in (
                (
                    _METHODS[:2],
                    {
                        "enabled": "true",
                        "recharge_with": "1,000.00",
                        "trigger": "200.00",
                        "method": "card:card-1",
                    },
                    {},
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
                        "recharge_with": t("error.amount.too_many_decimals", decimals=2),
                        "trigger": t("error.trigger.above_maximum", maximum="$100,000.00"),
                        "method": t("error.method.unknown"),
                    },
                ),
                (
                    [],
                    {"enabled": "false", "recharge_with": "", "trigger": "", "method": ""},
                    {"method": t("error.method.unknown")},
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
    ]
