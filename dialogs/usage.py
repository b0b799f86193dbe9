"""Usage in chat: `usage` explains how to import; a file sent in the personal chat is imported.

Teams delivers a file sent to a bot as an attachment of type
`application/vnd.microsoft.teams.file.download.info` whose `downloadUrl` is a short-lived,
pre-authenticated link. Only links to the configured hosts (SharePoint, where Teams keeps chat
files) are followed, so a forged attachment cannot make the bot fetch anything else.
"""

from __future__ import annotations

import ipaddress
import logging
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import aiohttp
from botbuilder.core import MessageFactory, TurnContext
from botbuilder.schema import Attachment

from cards import CardRenderer
from credits.money import Money
from credits.recommendation import Advice, FundingAdvisor
from credits.usage import UsageFormatError
from credits.usage_import import ImportReport
from dialogs.card_actions import show
from dialogs.commands import ParsedCommand
from dialogs.turn import tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
MAX_FILE_BYTES = 1 << 30
SPOOL_IN_MEMORY = 1 << 20

Importer = Callable[[str, BinaryIO, str], Awaitable[ImportReport]]


def file_attachment(turn_context: TurnContext) -> Attachment | None:
    for attachment in turn_context.activity.attachments or []:
        if attachment.content_type == FILE_DOWNLOAD_INFO:
            return attachment
    return None


class UsageChat:
    def __init__(
        self,
        importer: Importer,
        cards: CardRenderer,
        *,
        download_hosts: tuple[str, ...],
        advisor: FundingAdvisor,
        session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
    ) -> None:
        self._importer = importer
        self._cards = cards
        self._hosts = download_hosts
        self._advisor = advisor
        self._session_factory = session_factory

    async def __call__(self, turn_context: TurnContext, _parsed: ParsedCommand) -> None:
        """How to import, and, once usage has been imported, the funding recommendation."""
        t = translator_of(turn_context)
        advice = await self._advisor.advise(tenant_id_of(turn_context.activity))
        await show(turn_context, self._cards.attachment("usage", t, advice=advice_view(t, advice)))

    async def on_file(self, turn_context: TurnContext, attachment: Attachment) -> None:
        t = translator_of(turn_context)
        content = attachment.content if isinstance(attachment.content, dict) else {}
        url = content.get("downloadUrl")
        if not isinstance(url, str) or not self._allowed(url):
            logger.warning("file attachment with a download link outside the allowed hosts")
            await turn_context.send_activity(t("usage.bad_link"))
            return
        await turn_context.send_activity(t("usage.importing", name=attachment.name or ""))
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
            try:
                await self._download(url, body)
            except (aiohttp.ClientError, TimeoutError, _TooLarge):
                logger.warning("could not download a usage file", exc_info=True)
                await turn_context.send_activity(t("usage.download_failed"))
                return
            body.seek(0)
            try:
                report = await self._importer(tenant_id_of(turn_context.activity), body, "chat")
            except UsageFormatError as error:
                await turn_context.send_activity(
                    t(f"usage.problem.{error.problem.value}", columns=", ".join(error.columns))
                )
                return
        await turn_context.send_activity(MessageFactory.attachment(self.report_card(t, report)))

    def report_card(self, t: Translator, report: ImportReport) -> Attachment:
        def money(minor: int) -> str:
            return t.minor_money(minor, report.currency)

        skipped = [
            {"title": t(f"usage.skipped.{reason}"), "value": t.number(count)}
            for reason, count in sorted(report.skipped.items())
        ]
        return self._cards.attachment(
            "usage_report",
            t,
            facts=[
                {"title": t("usage.rows_read"), "value": t.number(report.rows_read)},
                {"title": t("usage.charged"), "value": t.number(report.charged)},
                {"title": t("usage.already_charged"), "value": t.number(report.already_charged)},
                *skipped,
                {"title": t("usage.debited"), "value": money(report.debited_minor)},
                {"title": t("usage.balance_after"), "value": money(report.balance_after_minor)},
            ],
            uncovered=(
                t.ngettext("usage.uncovered", report.uncovered, count=t.number(report.uncovered))
                if report.uncovered
                else ""
            ),
        )

    def _allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host:
            return False
        listed = any(host == h or host.endswith("." + h) for h in self._hosts)
        if parts.scheme == "https":
            return listed
        # Plain http only to a listed loopback address: the tests' stand-in for SharePoint.
        return parts.scheme == "http" and listed and _is_loopback(host)

    async def _download(self, url: str, body: BinaryIO) -> None:
        timeout = aiohttp.ClientTimeout(total=300)
        async with (
            self._session_factory() as session,
            session.get(url, timeout=timeout, allow_redirects=False) as response,
        ):
            response.raise_for_status()
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise _TooLarge
                body.write(chunk)


def advice_view(t: Translator, advice: Advice | None) -> dict | None:
    """What the usage card shows of a recommendation; None before any usage was imported."""
    if advice is None or not any(amount for _, amount in advice.recommendation.series):
        return None
    r = advice.recommendation

    def money(minor: int) -> str:
        return t.minor_money(minor, advice.currency)

    legacy = ""
    if advice.legacy_usd is not None and advice.licensed_users is not None:
        initial, trigger = advice.legacy_usd
        legacy = t.ngettext(
            "usage.legacy",
            advice.licensed_users,
            users=t.number(advice.licensed_users),
            initial=t.money(initial, "USD"),
            trigger=t.money(trigger, "USD"),
        )
    return {
        "facts": [
            {"title": t("usage.mean_30"), "value": money(r.mean_30_minor)},
            {"title": t("usage.mean_90"), "value": money(r.mean_90_minor)},
            {"title": t("usage.p95"), "value": money(r.p95_minor)},
            {"title": t("usage.runway"), "value": runway_text(t, r.runway_days)},
            {"title": t("usage.initial"), "value": money(r.initial_minor)},
        ],
        "advice": t(
            "usage.advice", recharge=money(r.recharge_minor), trigger=money(r.trigger_minor)
        ),
        "legacy": legacy,
        **chart_view(t, r.series[-30:], advice.currency),
    }


def chart_view(t: Translator, series: list[tuple[date, int]], currency: str) -> dict[str, Any]:
    """The daily-spend chart: a short label under each bar, the dates they span as the axis title.

    Thirty full dates ("Nov 23, 2026") under thirty bars were cut to "N…": each bar shows its day
    of the month, the first bar and each first of a month their month too (which also keeps the
    labels distinct when a 30-day window holds two firsts), and the x axis says the range.
    """
    points = [
        {
            "x": t.day_label(day, with_month=index == 0 or day.day == 1),
            # In the currency's major unit, as exact decimal text (display only).
            "y": str(Money(amount, currency).to_decimal()),
        }
        for index, (day, amount) in enumerate(series)
    ]
    span = t.date_range(series[0][0], series[-1][0], with_year=True) if series else ""
    return {"chart": points, "chart_range": span}


def runway_text(t: Translator, days: int | None) -> str:
    if days is None:
        return t("usage.no_spend")
    return t.ngettext("usage.runway_days", days, days=t.number(days))


class _TooLarge(Exception):
    """The download is larger than any usage export should be."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
