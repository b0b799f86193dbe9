"""A fake of the Bot Framework's token signing keys on loopback, and tokens signed with them.

It stands for the two documents Microsoft publishes for bots to check the tokens the Bot
Connector sends (https://login.botframework.com/v1/.well-known/openidconfiguration and the
`jwks_uri` it names): the OpenID metadata, and a JWK set whose RSA keys each carry the
channels they are endorsed for (`"endorsements": ["msteams", ...]`). Point the bot at it with
the `BotOpenIdMetadata` setting. `token()` signs a channel token as the Bot Connector does
(issuer https://api.botframework.com, audience the bot's app id, the activity's service URL in
`serviceurl`) with one of the fake's keys, or with a key it does not publish.

Faults: `gate`, an event the fake waits for before answering (an endpoint that hangs until the
test releases it), `fail_with` a status (an outage).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.botframework.com"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class FakeKey:
    kid: str
    endorsements: list[str]
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
            "endorsements": self.endorsements,
        }


def new_key(kid: str, *endorsements: str) -> FakeKey:
    return FakeKey(kid, list(endorsements), rsa.generate_private_key(65537, 2048))


@dataclass
class FakeBotFrameworkKeys:
    keys: list[FakeKey] = field(
        default_factory=lambda: [
            new_key("teams-key", "msteams", "skype"),
            new_key("webchat-key", "webchat", "directline"),
        ]
    )
    url: str = ""
    gate: asyncio.Event | None = None
    fail_with: int = 0
    requests: list[str] = field(default_factory=list)

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        return app

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        self.requests.append(request.path)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with:
            return web.Response(status=self.fail_with, text="fake outage")
        return web.json_response(body)

    async def _metadata(self, request: web.Request) -> web.Response:
        return await self._answer(
            request,
            {
                "issuer": ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{self.url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            },
        )

    async def _keys(self, request: web.Request) -> web.Response:
        return await self._answer(request, {"keys": [key.jwk() for key in self.keys]})

    def key(self, kid: str) -> FakeKey:
        return next(key for key in self.keys if key.kid == kid)

    def token(
        self,
        app_id: str,
        service_url: str,
        *,
        kid: str = "teams-key",
        signer: FakeKey | None = None,
        algorithm: str = "RS256",
        **claims: Any,
    ) -> str:
        """A channel token as the Bot Connector signs it; `claims` add or replace claims."""
        now = int(time.time())
        payload = {
            "serviceurl": service_url,
            "nbf": now - 60,
            "exp": now + 3600,
            "iss": ISSUER,
            "aud": app_id,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        known = [key for key in self.keys if key.kid == kid]
        # A key id the fake does not publish is signed with a key nobody knows.
        private = (signer or (known[0] if known else new_key(kid))).private
        return jwt.encode(payload, private, algorithm=algorithm, headers={"kid": kid})
