"""The sandbox's hosted page: where a test card is typed, like on Stripe Checkout, served by the
bot on its own (loopback) address, so the local stack pays the same way production does.

    GET  /sandbox/pay/{tenant}/{session}   the page, in the admin's language
    POST /sandbox/pay/{tenant}/{session}   the cardholder presses Pay (or Save card)

The fields carry the ids of Stripe Checkout's own (cardNumber, cardExpiry, cardCvc,
billingName), so a browser script reads the same as one for Stripe's page. Completing the page
gives the same domain event a Stripe webhook does, handed to the same booking path (`apply`),
then sends the browser to the bot's success page; a decline shows the page again with the
bank's answer and leaves it open. The sandbox processor itself (its records in Tables, shared by
every instance) is `storage/sandbox_gateway.py`; this module only speaks HTTP.

The card number and CVC live for one request: never stored, logged or echoed back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, Protocol

from aiohttp import web

from credits.payments import CheckoutMode, PaymentError, PaymentEvent, PaymentState

logger = logging.getLogger(__name__)

PATH = "/sandbox/pay/{tenant}/{session}"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*$")


class Translate(Protocol):
    """A translator of the product's catalogues (locales.Translator), for one language."""

    tag: str

    def __call__(self, msgid: str, **kwargs: Any) -> str: ...

    def minor_money(self, minor: int, currency: str) -> str: ...


class Page(Protocol):
    mode: CheckoutMode
    amount_minor: int
    currency: str
    locale: str
    state: PaymentState
    success_url: str
    cancel_url: str


class Result(Protocol):
    page: Page
    problem: str
    event: PaymentEvent | None


class SandboxCheckouts(Protocol):
    """The sandbox processor's side of its hosted page (storage.sandbox_gateway)."""

    async def page(self, tenant_id: str, session_id: str) -> Page | None: ...

    async def complete(
        self,
        tenant_id: str,
        session_id: str,
        *,
        number: str,
        expiry_month: int,
        expiry_year: int,
        cvc: str,
        holder_name: str,
    ) -> Result: ...


class SandboxPage:
    def __init__(
        self,
        checkouts: SandboxCheckouts,
        *,
        apply: Callable[[PaymentEvent], Awaitable[object]],
        translator: Callable[[str], Translate],
        errors: tuple[type[Exception], ...],
    ) -> None:
        """`apply` books an event as a webhook's would be; `errors` are the failures it may
        meet (storage): the payment stays recorded and the recovery job books it later."""
        self._checkouts = checkouts
        self._apply = apply
        self._translator = translator
        self._errors = errors

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.show)
        app.router.add_post(PATH, self.submit)

    async def show(self, request: web.Request) -> web.Response:
        tenant, session = request.match_info["tenant"], request.match_info["session"]
        try:
            page = await self._checkouts.page(tenant, session)
        except PaymentError as error:
            raise _unavailable() from error
        if page is None:
            raise web.HTTPNotFound(text="No such payment page.")
        return self._render(page)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        tenant, session = request.match_info["tenant"], request.match_info["session"]
        form = await request.post()
        month, year = _expiry(str(form.get("cardExpiry", "")))
        try:
            result = await self._checkouts.complete(
                tenant,
                session,
                number=str(form.get("cardNumber", "")),
                expiry_month=month,
                expiry_year=year,
                cvc=str(form.get("cardCvc", "")).strip(),
                holder_name=str(form.get("billingName", "")),
            )
        except LookupError as error:
            raise web.HTTPNotFound(text="No such payment page.") from error
        except PaymentError as error:
            # Nothing was recorded (or a retry of the same page finds it): try again.
            raise _unavailable() from error
        if result.problem:
            return self._render(result.page, problem=result.problem)
        if result.event is not None:
            try:
                await self._apply(result.event)
            except self._errors:
                # Paid and recorded: the recovery job asks the sandbox and books it.
                logger.exception("sandbox page %s paid, booking deferred to recovery", session)
        raise web.HTTPSeeOther(result.page.success_url, headers=_HEADERS)

    def _render(self, page: Page, *, problem: str = "") -> web.Response:
        t = self._translator(page.locale)
        if page.state != PaymentState.OPEN:
            body = f"<p id='status'>{escape(t('hosted.closed'))}</p>"
            return _html(t, body)
        paying = page.mode == CheckoutMode.PAYMENT
        summary = (
            t("hosted.pay", amount=t.minor_money(page.amount_minor, page.currency))
            if paying
            else t("hosted.save_intro")
        )
        alert = ""
        if problem and problem != "closed":
            message = (
                t(f"error.card.{problem}") if problem in _FIELDS else t(f"failed.reason.{problem}")
            )
            alert = f"<p role='alert' id='error'>{escape(message)}</p>"
        button = t("hosted.pay_button") if paying else t("hosted.save_button")
        body = f"""<p id='summary'><strong>{escape(summary)}</strong></p>
<p><small>{escape(t("hosted.test_mode"))}</small></p>
{alert}
<form method="post" autocomplete="off">
<p><label for="cardNumber">{escape(t("hosted.card_number"))}</label><br>
<input id="cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number"
 placeholder="1234 1234 1234 1234" required></p>
<p><label for="cardExpiry">{escape(t("hosted.card_expiry"))}</label><br>
<input id="cardExpiry" name="cardExpiry" autocomplete="cc-exp" placeholder="MM / YY" required></p>
<p><label for="cardCvc">{escape(t("hosted.card_cvc"))}</label><br>
<input id="cardCvc" name="cardCvc" inputmode="numeric" autocomplete="cc-csc" required></p>
<p><label for="billingName">{escape(t("hosted.card_name"))}</label><br>
<input id="billingName" name="billingName" autocomplete="cc-name" required></p>
<p><button type="submit" id="submit">{escape(button)}</button></p>
</form>
<p><a id="cancel" href="{escape(page.cancel_url)}">{escape(t("hosted.back"))}</a></p>"""
        return _html(t, body)


_FIELDS = {"number", "expiry", "cvc", "name"}


def _unavailable() -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(
        text="The sandbox is not answering. Try again in a moment.", headers={"Retry-After": "5"}
    )


def _expiry(value: str) -> tuple[int, int]:
    """ "MM / YY", "MM/YYYY" or "MMYY" as (month, year); (0, 0) when unreadable."""
    match = _EXPIRY.match(value)
    if match is None:
        return 0, 0
    return int(match.group(1)), int(match.group(2))


def _html(t: Translate, body: str) -> web.Response:
    title = escape(t("hosted.title"))
    text = f"""<!doctype html>
<html lang="{escape(t.tag)}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}
input{{width:100%;padding:.4rem;font-size:1rem}}[role=alert]{{color:#a4262c}}</style></head>
<body><main><h1>{title}</h1>
{body}
</main></body></html>
"""
    return web.Response(text=text, content_type="text/html", headers=_HEADERS)
