"""The card processor's webhook (`POST /api/payments/stripe`), and the one path every processor
event takes: apply it to the books, then tell the chat.

The endpoint verifies the signature on the raw bytes, before anything is parsed (the gateway's
`event_from`, the SDK's `construct_event` with its 300-second tolerance): a forged or stale
event is a 400 and changes nothing. An event the product does not use, or one that changes
nothing (an unknown tenant or order, another amount, a repeat), is a 200, so the processor stops
sending it. A failure on our side (storage, the processor's API, Teams) is a 5xx: the processor
sends the event again later, and applying it again is harmless.

The sandbox's hosted page and the order recovery job go through the same `PaymentEventProcessor`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.checkout_notices import CheckoutNotices, NoticeFailed
from credits.orders import OrderOutcome
from credits.payment_events import PaymentEvents, Settled, Settlement
from credits.payments import InvalidEvent, PaymentError, PaymentEvent, PaymentGateway

logger = logging.getLogger(__name__)

PATH = "/api/payments/stripe"


class PaymentEventProcessor:
    def __init__(self, events: PaymentEvents, notices: CheckoutNotices) -> None:
        self._events = events
        self._notices = notices

    async def __call__(self, event: PaymentEvent) -> Settlement:
        """Apply an event and tell its chat; raises NoticeFailed when the chat must be told
        later (the books are already right)."""
        settlement = await self._events.apply(event)
        await self._notices.tell(settlement)
        return settlement

    async def recovered(self, outcomes: list[OrderOutcome]) -> None:
        """Tell the chats of orders the recovery job finished (their events were lost)."""
        for outcome in outcomes:
            order = outcome.order
            result = {"succeeded": Settled.BOOKED, "failed": Settled.FAILED}.get(order.status)
            if result is None:
                continue
            settlement = Settlement(result, order.tenant_id, order.key, order, outcome.account)
            try:
                await self._notices.tell(settlement)
            except NoticeFailed:
                # The books are right and the status card shows it; only the message is lost.
                logger.warning("order %s recovered, but its chat could not be told", order.key)


def webhook_handler(
    gateway: PaymentGateway,
    process: Callable[[PaymentEvent], Awaitable[Settlement]],
    errors: tuple[type[Exception], ...],
):
    """`errors` are the failures of our side (storage) that make the processor try again."""

    async def handle(request: web.Request) -> web.Response:
        payload = await request.read()
        signature = request.headers.get("Stripe-Signature", "")
        try:
            event = await gateway.event_from(payload, signature)
        except InvalidEvent as error:
            logger.warning("payment webhook refused: %s", error)
            return web.json_response({"error": "the signature does not verify"}, status=400)
        except PaymentError:
            logger.warning("payment webhook: the processor did not answer; retried later")
            return web.json_response({"error": "try again"}, status=503)
        if event is None:
            return web.json_response({"result": "not used"})
        try:
            settlement = await process(event)
        except NoticeFailed:
            return web.json_response({"error": "the chat could not be told"}, status=503)
        except (PaymentError, *errors):
            logger.exception("payment event %s could not be applied; retried later", event.event_id)
            return web.json_response({"error": "try again"}, status=500)
        return web.json_response({"result": settlement.result.value})

    return handle
