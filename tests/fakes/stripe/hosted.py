"""The hosted Checkout page a session's `url` opens: a plain HTML form standing for Stripe
Checkout, where a person (or a test's browser) types a test card and presses Pay.

The fields carry the ids of Stripe Checkout's own (cardNumber, cardExpiry, cardCvc,
billingName, email), so a browser script reads the same as one for the real page. Submitting
pays (or, in setup mode, saves the card) exactly as `FakeStripe.complete_checkout_session`;
success redirects (303) to the session's `success_url` with `{CHECKOUT_SESSION_ID}` filled in,
a decline shows the form again with the bank's message and leaves the session open.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.stripe.checkout import CardEntry

if TYPE_CHECKING:
    from tests.fakes.stripe.account import Account

ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "pyg", "ugx", "xaf", "xof"}


def money(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return f"{currency.upper()} {amount}"
    return f"{currency.upper()} {amount // 100}.{amount % 100:02d}"


def checkout_page(
    session: dict[str, Any], items: list[dict[str, Any]], *, error: str | None = None
) -> str:
    paying = session["mode"] == "payment"
    lines = "".join(
        f"<li>{escape(item['description'])} × {item['quantity']}: "
        f"{money(item['amount_total'], item['currency'])}</li>"
        for item in items
    )
    summary = (
        f"<ul>{lines}</ul><p>Total <strong id='total'>"
        f"{money(session['amount_total'], session['currency'])}</strong></p>"
        if paying
        else "<p>Save a card for future payments. You will not be charged now.</p>"
    )
    alert = f"<p role='alert' id='error'>{escape(error)}</p>" if error else ""
    cancel = (
        f"<p><a id='cancel' href='{escape(session['cancel_url'])}'>Back</a></p>"
        if session.get("cancel_url")
        else ""
    )
    email = escape(session.get("customer_email") or "")
    button = "Pay" if paying else "Save card"
    return f"""<!doctype html>
<html lang="{escape(session.get("locale") or "en")}">
<head><meta charset="utf-8"><title>Fake Stripe Checkout</title></head>
<body>
<main>
<h1>Fake Stripe Checkout (test mode)</h1>
{summary}
{alert}
<form method="post">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" value="{email}">
<label for="cardNumber">Card number</label>
<input id="cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number"
 placeholder="1234 1234 1234 1234" required>
<label for="cardExpiry">Expiration (MM / YY)</label>
<input id="cardExpiry" name="cardExpiry" autocomplete="cc-exp" placeholder="MM / YY" required>
<label for="cardCvc">CVC</label>
<input id="cardCvc" name="cardCvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC"
 required>
<label for="billingName">Cardholder name</label>
<input id="billingName" name="billingName" autocomplete="cc-name">
<fieldset><legend>3D Secure challenge (test mode), for cards that ask for it</legend>
<label><input type="radio" name="threeDSecure" value="complete" checked> Complete</label>
<label><input type="radio" name="threeDSecure" value="fail"> Fail</label>
</fieldset>
<button type="submit" id="submit">{button}</button>
</form>
{cancel}
</main>
</body>
</html>
"""


def closed_page(session: dict[str, Any]) -> str:
    message = {
        "complete": "This Checkout Session is complete.",
        "expired": "This Checkout Session is no longer active.",
    }.get(session["status"], "This Checkout Session is not available.")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake Stripe Checkout</title></head>
<body><main><h1>Fake Stripe Checkout (test mode)</h1>
<p id="status">{escape(message)}</p></main></body></html>
"""


def expiry(value: str) -> tuple[str, str]:
    """The expiry as typed ("MM / YY", "MM/YYYY" or "MMYY") as (month, year) strings."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if "/" in value:
        month, _, year = value.partition("/")
        return month.strip(), year.strip()
    return digits[:2], digits[2:]


def success_redirect(session: dict[str, Any]) -> str | None:
    url = session.get("success_url")
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


class HostedPages:
    """GET shows a session's page; POST is the cardholder pressing Pay."""

    def __init__(self, account: Account) -> None:
        self.store = account.store
        self.checkout = account.checkout

    async def show(self, request: web.Request) -> web.Response:
        session = self._page_session(request)
        if session["status"] != "open":
            return web.Response(text=closed_page(session), content_type="text/html")
        items = self._items(session["id"])
        return web.Response(text=checkout_page(session, items), content_type="text/html")

    async def submit(self, request: web.Request) -> web.Response:
        session = self._page_session(request)
        form = await request.post()
        month, year = expiry(str(form.get("cardExpiry", "")))
        entry = CardEntry(
            number=str(form.get("cardNumber", "")).replace(" ", ""),
            exp_month=month,
            exp_year=year,
            cvc=str(form.get("cardCvc", "")).strip(),
            name=str(form.get("billingName", "")).strip() or None,
            email=str(form.get("email", "")).strip() or None,
            authenticate=form.get("threeDSecure", "complete") != "fail",
        )
        attempt = self.checkout.pay(session["id"], entry)
        if attempt.succeeded:
            target = success_redirect(attempt.session)
            if target:
                raise web.HTTPSeeOther(target)
            return web.Response(text=closed_page(attempt.session), content_type="text/html")
        if attempt.session["status"] != "open":
            return web.Response(text=closed_page(attempt.session), content_type="text/html")
        items = self._items(session["id"])
        html = checkout_page(attempt.session, items, error=attempt.error)
        return web.Response(text=html, content_type="text/html")

    def _items(self, session_id: str) -> list[dict[str, Any]]:
        return self.store.line_items[session_id]

    def _page_session(self, request: web.Request) -> dict[str, Any]:
        session = self.store.objects.get(request.match_info["session"])
        if session is None or session.get("object") != "checkout.session":
            raise web.HTTPNotFound(text="No such Checkout Session.")
        self.checkout.expire_due()
        return session
