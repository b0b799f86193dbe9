"""Who may post to `/api/messages`: Microsoft Teams, through the Bot Framework, and nobody else.

botbuilder's configuration-driven authentication stays for everything outward (the connector
clients that answer, their credentials); the inbound token is checked here, as Microsoft's
"Authenticate requests from the Bot Connector service" describes it, with the keys of
`SigningKeys` (read off the event loop) instead of botbuilder's blocking reader, and every
failure a PermissionError, which the adapter answers with 401 (botbuilder lets an unknown key
id, a key not endorsed for the channel or an unexpected algorithm escape as 500s):

- a bearer JWT signed with RS256/384/512 by a key the Bot Framework lists,
- that key endorsed for the activity's channel (`msteams`),
- issued by https://api.botframework.com for this bot's app id, within its validity (five
  minutes of clock skew),
- its `serviceurl` claim the activity's `serviceUrl`, so replies go back where Teams said.

Without an app id (local mode, loopback only) every request is anonymous, whatever header it
carries, as botbuilder does when authentication is disabled.
"""

from __future__ import annotations

from typing import Any

import jwt
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)
from jwt.exceptions import PyJWTError

from bot.signing_keys import SigningKeys

ISSUER = AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
ALGORITHMS = tuple(AuthenticationConstants.ALLOWED_SIGNING_ALGORITHMS)
CLOCK_SKEW_SECONDS = 5 * 60


class TeamsAuthentication(BotFrameworkAuthentication):
    def __init__(
        self, inner: BotFrameworkAuthentication, app_id: str, keys: SigningKeys | None
    ) -> None:
        """`inner` is botbuilder's authentication for the app (it makes the connector clients);
        `keys` is required with an app id."""
        if app_id and keys is None:
            raise ValueError("an app id needs the Bot Framework's signing keys")
        self._inner = inner
        self._app_id = app_id
        self._keys = keys

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        if not self._app_id:
            return await self._inner.authenticate_request(activity, "")
        identity = ClaimsIdentity(await self.claims_of(activity, auth_header), True)
        result = AuthenticateRequestResult()
        result.claims_identity = identity
        result.audience = self._inner.get_originating_audience()
        result.caller_id = CallerIdConstants.public_azure_channel
        result.connector_factory = self._inner.create_connector_factory(identity)
        return result

    async def claims_of(self, activity: Activity, auth_header: str | None) -> dict[str, Any]:
        """The token's claims when it passes every check; raises PermissionError otherwise
        (and KeysUnavailable when no key can be read to check it)."""
        assert self._keys is not None
        scheme, _, token = (auth_header or "").partition(" ")
        if scheme != "Bearer" or not token:
            raise PermissionError("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as error:
            raise PermissionError("not a JWT") from error
        algorithm, key_id = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS or not isinstance(key_id, str) or not key_id:
            raise PermissionError("not signed by a Bot Framework key")
        key = await self._keys.get(key_id)
        if activity.channel_id not in key.endorsements:
            raise PermissionError(f"key {key_id} is not endorsed for {activity.channel_id!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self._app_id,
                issuer=ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except PyJWTError as error:
            raise PermissionError(f"token refused: {error}") from error
        if claims.get(AuthenticationConstants.SERVICE_URL_CLAIM) != activity.service_url:
            raise PermissionError("the token is for another service URL")
        return claims

    # --- the rest is botbuilder's --------------------------------------------------------------

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        # Streaming (web sockets) is not served: /api/messages takes POSTs only.
        raise PermissionError("streaming is not served")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._inner.create_connector_factory(claims_identity)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        return await self._inner.create_user_token_client(claims_identity)

    def create_bot_framework_client(self):
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        raise PermissionError("skill channel requests are not served")
