"""What one HTTP request may cost before the bot looks at it, and what the server says of itself.

- Request headers must be complete within `header_seconds` of the connection opening (or of
  the previous answer on a kept-alive connection): aiohttp's keep-alive timeout closes a
  connection whose request has not arrived, so a client that trickles headers (or sends none)
  holds it that long at most.
- A chat activity's body must arrive within `body_seconds`; an upload may pause at most
  `upload_idle_seconds` between two pieces (an export is large, so it is its pace that counts,
  not its total time). Both are answered 408.
- JSON nests at most `json_depth` deep (an activity nests a handful of levels): deeper is a 400,
  never a RecursionError.
- The `Server` header names the service without versions, on the app's answers
  (`name_the_server`) and on aiohttp's own to requests it cannot parse (`quiet_server_banner`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web, web_response

SERVER_NAME = "ccbot"


@dataclass(frozen=True)
class HttpLimits:
    header_seconds: float = 15.0
    body_seconds: float = 30.0
    upload_idle_seconds: float = 60.0
    json_depth: int = 64

    def server_options(self) -> dict[str, Any]:
        """Keyword arguments for aiohttp's server (`web.run_app`, `AppRunner`, test servers)."""
        return {"keepalive_timeout": self.header_seconds}


async def read_json(request: web.Request, limits: HttpLimits) -> Any:
    """The request's JSON body, or the HTTP error that says what is wrong with it."""
    try:
        async with asyncio.timeout(limits.body_seconds):
            raw = await request.read()
    except TimeoutError as error:
        raise web.HTTPRequestTimeout(
            text=f"the body did not arrive within {limits.body_seconds:g} seconds"
        ) from error
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise web.HTTPBadRequest(text="the body is not valid JSON") from error
    except RecursionError as error:
        raise web.HTTPBadRequest(text="the body's JSON nests too deep") from error
    if depth_of(body) > limits.json_depth:
        raise web.HTTPBadRequest(text="the body's JSON nests too deep")
    return body


def depth_of(value: Any) -> int:
    """How deep JSON nests (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in item)
    return deepest


async def body_pieces(request: web.Request, limits: HttpLimits) -> AsyncIterator[bytes]:
    """The body as it arrives, each piece within `upload_idle_seconds` of the one before."""
    while True:
        try:
            async with asyncio.timeout(limits.upload_idle_seconds):
                piece = await request.content.readany()
        except TimeoutError as error:
            raise web.HTTPRequestTimeout(
                text=f"the upload stalled: nothing arrived for {limits.upload_idle_seconds:g} "
                "seconds; send it again"
            ) from error
        if not piece:
            return
        yield piece


async def name_the_server(_request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: aiohttp would name itself and Python, with their versions."""
    response.headers[hdrs.SERVER] = SERVER_NAME


def quiet_server_banner() -> None:
    """For the process (main() calls it): a request aiohttp cannot parse (a bad request line,
    say) is answered before any of the app's code runs, so `name_the_server` never sees it, with
    the `Server` header of aiohttp's response module; that default is set here."""
    web_response.SERVER_SOFTWARE = SERVER_NAME


# --- the shape of an activity --------------------------------------------------------------------

_TEXT_FIELDS = (
    "type", "id", "channelId", "serviceUrl", "text", "locale", "replyToId", "action", "name",
    "textFormat", "timestamp", "localTimestamp", "inputHint", "summary", "callerId",
)  # fmt: skip
# Ids and names key stored rows and go into URLs: printable (no control characters, no lone
# surrogates, which no storage key or URL can hold).
_IDENTIFIERS = ("id", "channelId", "serviceUrl", "replyToId", "locale", "callerId")
_ACCOUNT_FIELDS = ("from", "recipient", "conversation")
_ACCOUNT_TEXT = ("id", "name", "aadObjectId", "role", "conversationType", "tenantId")
_LIST_FIELDS = ("entities", "attachments", "membersAdded", "membersRemoved")


def activity_problem(body: Any) -> str | None:
    """Why a parsed body is not a Bot Framework activity the bot can read, or None.

    Only the fields the bot reads are checked, for their JSON types: a text that is a number or
    a sender that is a list would otherwise fail the turn ("something went wrong") or botbuilder's
    deserialisation (a 500).
    """
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return "not an activity"
    service_url = body.get("serviceUrl")
    if not isinstance(service_url, str) or not service_url.startswith(("https://", "http://")):
        # Where the answer goes; without it botbuilder would answer api.botframework.com.
        return "serviceUrl is not a URL"
    for name in _TEXT_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} is not text"
    for name in _IDENTIFIERS:
        if body.get(name) is not None and not body[name].isprintable():
            return f"{name} is not printable"
    for name in _ACCOUNT_FIELDS:
        account = body.get(name)
        # Who sent it, to whom, in which conversation: botbuilder keys the turn's state on them.
        if not isinstance(account, dict) or not isinstance(account.get("id"), str):
            return f"{name} has no id"
        if not account["id"]:
            return f"{name} has no id"
        for field in _ACCOUNT_TEXT:
            if account.get(field) is not None and not isinstance(account[field], str):
                return f"{name}.{field} is not text"
            if account.get(field) is not None and not account[field].isprintable():
                return f"{name}.{field} is not printable"
    for name in _LIST_FIELDS:
        items = body.get(name)
        if items is not None and not (
            isinstance(items, list) and all(isinstance(i, dict) for i in items)
        ):
            return f"{name} is not a list of objects"
    if body.get("channelData") is not None and not isinstance(body["channelData"], dict):
        return "channelData is not an object"
    return None
