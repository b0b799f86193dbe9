"""`POST /api/tenants/{tenant}/usage`: a PSTN usage export, pushed by a tenant's own tooling.

Each tenant has its own key, derived from the service's `USAGE_API_SECRET` (HMAC-SHA256 of the
tenant id), so no key table is needed and a key opens one tenant only. A caller proves it
holds the key either as an API key (`Authorization: Bearer <key>`) or by signing the body
(`X-Usage-Signature: sha256=<hex HMAC-SHA256(key, body)>`) so the key never travels. Without
a configured secret the endpoint is disabled (403); wrong or missing credentials get 401.

What an upload may cost: a key is checked before a byte of the body is read, and a keyed upload
may be up to 1 GiB. A signed body can only be checked once all of it is in, so it is held (on
disk past 1 MiB) before anyone is known: it may be at most 64 MiB, at most two uploads per
tenant and eight in all are held at once, and a larger or further one is answered 413 or 429
(with Retry-After) saying what to do instead. An upload that pauses for longer than the
`upload_idle_seconds` of `HttpLimits` is answered 408.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import BinaryIO

from aiohttp import web

from bot.http_guards import HttpLimits, body_pieces
from credits.usage import UsageFormatError
from credits.usage_import import ImportReport

logger = logging.getLogger(__name__)

# An admin centre export covers up to a year; a large tenant's is some hundreds of megabytes.
MAX_UPLOAD_BYTES = 1 << 30
# A signed body is held before it is known to come from the tenant: a month of a large
# tenant's calls, or a year's as the zip the admin centre downloads.
MAX_SIGNED_UPLOAD_BYTES = 64 << 20
# Uploads in progress: per tenant for each form, and signed ones in all (which bounds what
# unknown callers can make the service hold: 8 x 64 MiB).
MAX_UPLOADS_PER_TENANT = 2
MAX_SIGNED_UPLOADS = 8
RETRY_AFTER_SECONDS = 30
# Up to this much of an upload stays in memory; the rest is spooled to a temporary file.
SPOOL_IN_MEMORY = 1 << 20
SIGNATURE_HEADER = "X-Usage-Signature"

Importer = Callable[[str, BinaryIO, str], Awaitable[ImportReport]]


def tenant_key(secret: str, tenant_id: str) -> str:
    """The tenant's usage API key: what its tooling must hold to push usage."""
    digest = hmac.new(secret.encode(), f"usage-api:{tenant_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


class UploadSlots:
    """Uploads in progress, counted per tenant and in all; a full count refuses at once."""

    def __init__(self, per_tenant: int, in_all: int) -> None:
        self._per_tenant = per_tenant
        self._in_all = in_all
        self._counts: dict[str, int] = {}

    def take(self, tenant_id: str) -> bool:
        if self._counts.get(tenant_id, 0) >= self._per_tenant:
            return False
        if sum(self._counts.values()) >= self._in_all:
            return False
        self._counts[tenant_id] = self._counts.get(tenant_id, 0) + 1
        return True

    def give_back(self, tenant_id: str) -> None:
        left = self._counts[tenant_id] - 1
        if left:
            self._counts[tenant_id] = left
        else:
            del self._counts[tenant_id]


def usage_handler(secret: str, importer: Importer, limits: HttpLimits | None = None):
    limits = limits or HttpLimits()
    # Keyed uploads have slots of their own: unknown callers sending signed bodies for a
    # tenant cannot hold its own tooling off.
    keyed_slots = UploadSlots(MAX_UPLOADS_PER_TENANT, in_all=1 << 30)
    signed_slots = UploadSlots(MAX_UPLOADS_PER_TENANT, in_all=MAX_SIGNED_UPLOADS)

    async def handle(request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant"]
        if not secret:
            raise web.HTTPForbidden(text="the usage API is not enabled (USAGE_API_SECRET)")
        key = tenant_key(secret, tenant_id)
        authorization = request.headers.get("Authorization", "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not authorization and not signature:
            raise web.HTTPUnauthorized(text="send the tenant's key or a signature of the body")
        keyed = bool(authorization)
        if keyed and not _same(authorization, f"Bearer {key}"):
            raise web.HTTPUnauthorized(text="the key does not open this tenant")
        limit = MAX_UPLOAD_BYTES if keyed else MAX_SIGNED_UPLOAD_BYTES
        if request.content_length is not None and request.content_length > limit:
            raise _too_large(keyed, request.content_length)
        slots = keyed_slots if keyed else signed_slots
        if not slots.take(tenant_id):
            raise web.HTTPTooManyRequests(
                text=f"at most {MAX_UPLOADS_PER_TENANT} uploads per tenant "
                f"({MAX_SIGNED_UPLOADS} signed ones in all) are taken at once; "
                f"send this one again in {RETRY_AFTER_SECONDS} seconds",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        try:
            return await _receive(request, tenant_id, key, None if keyed else signature, limit)
        finally:
            slots.give_back(tenant_id)

    async def _receive(
        request: web.Request, tenant_id: str, key: str, signature: str | None, limit: int
    ) -> web.Response:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
            mac = hmac.new(key.encode(), digestmod=hashlib.sha256)
            size = 0
            async for chunk in body_pieces(request, limits):
                size += len(chunk)
                if size > limit:
                    raise _too_large(signature is None, size)
                mac.update(chunk)
                body.write(chunk)
            if signature is not None and not _same(signature, f"sha256={mac.hexdigest()}"):
                raise web.HTTPUnauthorized(text="the signature does not match the body")
            body.seek(0)
            try:
                report = await importer(tenant_id, body, "api")
            except UsageFormatError as error:
                logger.warning("usage upload refused for tenant %s: %s", tenant_id, error)
                return web.json_response(
                    {"error": error.problem.value, "columns": list(error.columns)}, status=400
                )
        return web.json_response(asdict(report))

    return handle


def _same(sent: str, expected: str) -> bool:
    """Constant-time comparison of a header with what it must be. Headers may carry any
    character (compare_digest refuses non-ASCII text): bytes are compared."""
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode())


def _too_large(keyed: bool, size: int) -> web.HTTPRequestEntityTooLarge:
    if keyed:
        advice = (
            f"an upload may be at most {MAX_UPLOAD_BYTES >> 20} MiB: send the export in parts "
            "(shorter date ranges)"
        )
        limit = MAX_UPLOAD_BYTES
    else:
        advice = (
            f"a signed upload may be at most {MAX_SIGNED_UPLOAD_BYTES >> 20} MiB: send it with "
            f"the tenant's key (Authorization: Bearer <key>, up to {MAX_UPLOAD_BYTES >> 20} "
            "MiB), as the zip the admin centre downloads, or in parts"
        )
        limit = MAX_SIGNED_UPLOAD_BYTES
    return web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size, text=advice)
