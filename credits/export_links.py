"""Signed download links for a period's CSV export: short-lived, for one tenant's books.

A link is `<PUBLIC_BASE_URL>/api/tenants/<tenant>/history.csv?from=…&to=…&lang=…&expires=…&sig=…`.
The signature is an HMAC-SHA256, under the service's `EXPORT_URL_SECRET`, of the tenant, the
period, the language of the file and the expiry (as one JSON array, so no field can run into
the next): nothing of the link can be changed, and a link made for one tenant opens no other.
It is a bearer link (whoever holds it downloads the file until it expires), so it lives 15
minutes and is only given in an admin's personal chat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote, urlencode

from credits.history import Period, parse_day

LINK_LIFETIME = timedelta(minutes=15)
EXPORT_PATH = "/api/tenants/{tenant}/history.csv"
_PURPOSE = "history-export"
# Bounds on what a query may hold before it is looked at (a tag, epoch seconds, a signature).
_MAX_FIELD_CHARS = 64


class LinkProblem(StrEnum):
    MALFORMED = "malformed"
    """A field is missing or unreadable: not a link the bot made."""
    FORGED = "forged"
    """The signature does not match: altered, or made for another tenant."""
    EXPIRED = "expired"


class LinkRefused(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class ExportLink:
    tenant_id: str
    period: Period
    language: str
    """The language tag of the file's headers and labels (`en-US`)."""
    expires_at: datetime


class ExportLinks:
    """Makes and checks the links, with the service's secret."""

    def __init__(self, secret: str, base_url: str) -> None:
        if not secret:
            raise ValueError("export links need a secret")
        self._key = secret.encode("utf-8")
        self._base_url = base_url.rstrip("/")

    def link(self, tenant_id: str, period: Period, language: str, now: datetime) -> ExportLink:
        """A link to the period's export that works until `LINK_LIFETIME` after `now`."""
        return ExportLink(tenant_id, period, language, _whole_seconds(now + LINK_LIFETIME))

    def address(self, link: ExportLink) -> str:
        """The link as the admin's browser opens it."""
        path = EXPORT_PATH.format(tenant=quote(link.tenant_id, safe=""))
        query = {
            "from": link.period.first.isoformat(),
            "to": link.period.last.isoformat(),
            "lang": link.language,
            "expires": str(int(link.expires_at.timestamp())),
            "sig": self._signature(link),
        }
        return f"{self._base_url}{path}?{urlencode(query)}"

    def check(self, tenant_id: str, query: Mapping[str, str], now: datetime) -> ExportLink:
        """The link a request holds, for the tenant of its path; LinkRefused says why not.

        A link whose signature does not hold is refused as forged before its expiry is looked
        at: only a link the bot made can be "expired"."""
        fields = {name: query.get(name, "") for name in ("from", "to", "lang", "expires", "sig")}
        if any(not value or len(value) > _MAX_FIELD_CHARS for value in fields.values()):
            raise LinkRefused(LinkProblem.MALFORMED)
        first, last = parse_day(fields["from"]), parse_day(fields["to"])
        if first is None or last is None or last < first or not fields["expires"].isdigit():
            raise LinkRefused(LinkProblem.MALFORMED)
        try:
            expires_at = datetime.fromtimestamp(int(fields["expires"]), now.tzinfo)
        except (OverflowError, OSError, ValueError) as error:
            raise LinkRefused(LinkProblem.MALFORMED) from error
        link = ExportLink(tenant_id, Period(first, last), fields["lang"], expires_at)
        expected = self._signature(link).encode("ascii")
        if not hmac.compare_digest(fields["sig"].encode("utf-8", "surrogatepass"), expected):
            raise LinkRefused(LinkProblem.FORGED)
        if now >= expires_at:
            raise LinkRefused(LinkProblem.EXPIRED)
        return link

    def _signature(self, link: ExportLink) -> str:
        message = json.dumps(
            [
                _PURPOSE,
                link.tenant_id,
                _day(link.period.first),
                _day(link.period.last),
                link.language,
                int(link.expires_at.timestamp()),
            ],
            ensure_ascii=True,
        )
        digest = hmac.new(self._key, message.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _day(value: date) -> str:
    return value.isoformat()


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
