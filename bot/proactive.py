"""Proactive sends through the Bot Connector, with every failure sorted by what to do next.

The connector client comes from CloudAdapter's own connector factory, so production uses the
app's credentials and the local stack (unauthenticated) posts to the Playground's connector as
is. The message is posted to the conversation itself, not as a reply: a stored reference names
the activity that installed the bot, and a reply to it would land in an old thread of a channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from botbuilder.core import CloudAdapterBase
from botbuilder.schema import Activity, ConversationReference, ErrorResponseException
from botframework.connector import ConnectorClient
from msrest.exceptions import ClientRequestError

from credits.retry_after import retry_after_seconds

logger = logging.getLogger(__name__)

# Teams answers a send within a few seconds; one slower than this is treated like a 5xx.
SEND_TIMEOUT = timedelta(seconds=15)
# Microsoft lists these as the responses to retry (besides 429 and 5xx).
RETRYABLE_STATUS = frozenset({408, 412, 429})
GONE_STATUS = frozenset({403, 404})
# A Retry-After beyond this is taken as this: the back-off schedule still applies on top.
MAX_RETRY_AFTER = timedelta(hours=1)


class Outcome(StrEnum):
    SENT = "sent"
    NOT_CLAIMED = "not_claimed"
    """`claim` said no (another dispatcher has the message): nothing was sent."""
    RETRY = "retry"
    """Throttled or a transient fault: send again later."""
    GONE = "gone"
    """The bot was removed or blocked, or the conversation no longer exists."""
    REJECTED = "rejected"
    """The connector refused the message itself (a 400): sending it again cannot help."""


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    activity_id: str = ""
    retry_after: timedelta | None = None
    error: str = ""


class ProactiveSender:
    """Sends with a connector client per service URL, made by the adapter's connector factory.

    `continue_conversation` would build a new connector client (and a user-token client) for
    every message: at alert-storm rates that is most of the CPU and a new TLS connection per
    alert. The factory is the one CloudAdapter itself uses, so the app's credentials, token
    refresh and audience are the same; the client and its connection pool are simply kept.
    """

    def __init__(
        self, adapter: CloudAdapterBase, app_id: str, timeout: timedelta = SEND_TIMEOUT
    ) -> None:
        self._adapter = adapter
        self._app_id = app_id
        self._timeout = timeout.total_seconds()
        self._clients: dict[str, ConnectorClient] = {}
        self._creating: dict[str, asyncio.Lock] = {}

    async def send(
        self,
        reference: ConversationReference,
        activity: Activity,
        claim: Callable[[], Awaitable[bool]] | None = None,
    ) -> SendResult:
        """Post `activity` to the conversation; `claim()` runs right before the POST.

        The claim is the durable "this message is on its way" mark. Taking it once the
        connector client (and in production its token) is ready leaves no awaited work between
        the mark and the request: a crash between the two is as unlikely as it can be made.
        """
        client = await self._client(reference.service_url)
        if claim is not None and not await claim():
            return SendResult(Outcome.NOT_CLAIMED)
        activity.conversation = reference.conversation
        activity.service_url = reference.service_url
        activity.channel_id = reference.channel_id
        activity.from_property = reference.bot
        activity.recipient = reference.user
        try:
            async with asyncio.timeout(self._timeout):
                response = await client.conversations.send_to_conversation(
                    reference.conversation.id, activity
                )
        except ErrorResponseException as error:
            return classify(error.response.status_code, error.response.headers, str(error))
        except TimeoutError:
            return SendResult(Outcome.RETRY, error="timed out")
        except ClientRequestError as error:
            return SendResult(Outcome.RETRY, error=f"connection: {type(error).__name__}")
        return SendResult(Outcome.SENT, activity_id=getattr(response, "id", "") or "")

    async def update(
        self, reference: ConversationReference, activity_id: str, activity: Activity
    ) -> SendResult:
        """Replace a message the bot sent earlier (a card, in place), as `update_activity`."""
        client = await self._client(reference.service_url)
        activity.id = activity_id
        activity.conversation = reference.conversation
        activity.service_url = reference.service_url
        activity.channel_id = reference.channel_id
        activity.from_property = reference.bot
        activity.recipient = reference.user
        try:
            async with asyncio.timeout(self._timeout):
                await client.conversations.update_activity(
                    reference.conversation.id, activity_id, activity
                )
        except ErrorResponseException as error:
            return classify(error.response.status_code, error.response.headers, str(error))
        except TimeoutError:
            return SendResult(Outcome.RETRY, error="timed out")
        except ClientRequestError as error:
            return SendResult(Outcome.RETRY, error=f"connection: {type(error).__name__}")
        return SendResult(Outcome.SENT, activity_id=activity_id)

    async def _client(self, service_url: str) -> ConnectorClient:
        client = self._clients.get(service_url)
        if client is not None:
            return client
        async with self._creating.setdefault(service_url, asyncio.Lock()):
            if service_url not in self._clients:
                claims = self._adapter.create_claims_identity(self._app_id)
                factory = self._adapter.bot_framework_authentication.create_connector_factory(
                    claims
                )
                self._clients[service_url] = await factory.create(service_url, None)
        return self._clients[service_url]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.__aexit__(None, None, None)  # msrest's way to close its sessions


def classify(status: int, headers, message: str) -> SendResult:
    error = f"HTTP {status}: {message}"[:300]
    if status in GONE_STATUS:
        return SendResult(Outcome.GONE, error=error)
    if status in RETRYABLE_STATUS or status >= 500:
        return SendResult(Outcome.RETRY, retry_after=retry_after(headers), error=error)
    return SendResult(Outcome.REJECTED, error=error)


def retry_after(headers) -> timedelta | None:
    """Retry-After, capped at MAX_RETRY_AFTER; None when absent or unreadable."""
    seconds = retry_after_seconds((headers or {}).get("Retry-After"))
    if seconds is None:
        return None
    return timedelta(seconds=min(seconds, MAX_RETRY_AFTER.total_seconds()))
