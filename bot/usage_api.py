"""`POST /api/tenants/{tenant}/usage`: a PSTN usage export, pushed by a tenant's own tooling.

Each tenant has its own key, derived from the service's `USAGE_API_SECRET` (HMAC-SHA256 of the
tenant id), so no key table is needed and a key opens one tenant only. A caller proves it
holds the key either as an API key (`Authorization: Bearer <key>`) or by signing the body
(`X-Usage-Signature: sha256=<hex HMAC-SHA256(key, body)>`) so the key never travels. Without
a configured secret the endpoint is disabled (403); wrong or missing credentials get 401.
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

from credits.usage import UsageFormatError
from credits.usage_import import ImportReport

logger = logging.getLogger(__name__)

# An admin centre export covers up to a year; a large tenant's is some hundreds of megabytes.
MAX_UPLOAD_BYTES = 1 << 30
# Up to this much of an upload stays in memory; the rest is spooled to a temporary file.
SPOOL_IN_MEMORY = 1 << 20
SIGNATURE_HEADER = "X-Usage-Signature"

Importer = Callable[[str, BinaryIO, str], Awaitable[ImportReport]]


def tenant_key(secret: str, tenant_id: str) -> str:
    """The tenant's usage API key: what its tooling must hold to push usage."""
    digest = hmac.new(secret.encode(), f"usage-api:{tenant_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def usage_handler(secret: str, importer: Importer):
    async def handle(request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant"]
        if not secret:
            raise web.HTTPForbidden(text="the usage API is not enabled (USAGE_API_SECRET)")
        key = tenant_key(secret, tenant_id)
        authorization = request.headers.get("Authorization", "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not authorization and not signature:
            raise web.HTTPUnauthorized(text="send the tenant's key or a signature of the body")
        if authorization and not hmac.compare_digest(authorization, f"Bearer {key}"):
            raise web.HTTPUnauthorized(text="the key does not open this tenant")
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
            mac = hmac.new(key.encode(), digestmod=hashlib.sha256)
            size = 0
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD_BYTES, actual_size=size)
                mac.update(chunk)
                body.write(chunk)
            if not authorization and not hmac.compare_digest(
                signature, f"sha256={mac.hexdigest()}"
            ):
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
