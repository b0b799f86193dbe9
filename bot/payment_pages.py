"""The pages a card processor sends the admin back to, in the admin's language: paid (or card
saved), or cancelled. Both say to go back to Teams, where the bot tells the outcome.

    GET /payments/done?lang=<tag>&mode=payment|setup
    GET /payments/cancelled?lang=<tag>&mode=payment|setup

They show nothing of the payment itself: anybody may open them, and what happened is told in
the chat, from the processor's own word (its event), never from a browser's visit.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from locales import Localizer

DONE = "/payments/done"
CANCELLED = "/payments/cancelled"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


class ReturnPages:
    def __init__(self, localizer: Localizer) -> None:
        self._localizer = localizer

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(DONE, self.done)
        app.router.add_get(CANCELLED, self.cancelled)

    async def done(self, request: web.Request) -> web.Response:
        setup = request.query.get("mode") == "setup"
        return self._page(request, "return.saved" if setup else "return.paid")

    async def cancelled(self, request: web.Request) -> web.Response:
        return self._page(request, "return.cancelled")

    def _page(self, request: web.Request, message: str) -> web.Response:
        t = self._localizer.translator(request.query.get("lang", "")[:20])
        title = escape(t(f"{message}_title"))
        text = f"""<!doctype html>
<html lang="{escape(t.tag)}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto}}</style>
</head>
<body><main><h1 id="title">{title}</h1><p id="text">{escape(t(f"{message}_text"))}</p></main></body>
</html>
"""
        return web.Response(text=text, content_type="text/html", headers=_HEADERS)
