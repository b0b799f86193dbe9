"""Entry point: builds the aiohttp application from settings and runs it.

`create_app(settings)` is the only place that wires concrete classes together; tests build the
same application with their own settings. The wiring is split by what it builds: the table
adapters (`Stores`), the credits domain (`build_credits`), the conversational flows
(`_main_dialog`), the proactive alerts (`_alerts`) and the background jobs (`_jobs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from azure.core.exceptions import AzureError, DeserializationError
from azure.core.pipeline import PipelineRequest
from botbuilder.core import ConversationState, UserState

from bot.activity_handler import CreditsBot
from bot.adapter import AdapterWithErrorHandler
from bot.alert_dispatch import AlertDispatcher
from bot.checkout_notices import CheckoutNotices, NoticeFailed
from bot.history_export import HistoryExport
from bot.http_guards import (
    HttpLimits,
    activity_problem,
    name_the_server,
    quiet_server_banner,
    read_json,
)
from bot.payment_pages import CANCELLED, DONE, ReturnPages
from bot.payment_webhook import PaymentEventProcessor, webhook_handler
from bot.proactive import ProactiveSender
from bot.rate_limits import TeamsRateLimits
from bot.settings import Settings, SettingsError
from bot.signing_keys import KeysUnavailable, SigningKeys
from bot.usage_api import usage_handler
from cards import CardRenderer
from cards.alert_cards import AlertCards
from credits.access import AdminCheck
from credits.accounts import AccountService, no_seed
from credits.auto_recharge import AutoRecharger
from credits.directory import Directory, DirectoryError
from credits.expiry import ExpiryJob
from credits.export_links import EXPORT_PATH, ExportLinks
from credits.jobs import Job, JobRunner
from credits.licence_service import LicenceService
from credits.money import Money
from credits.orders import OrderService
from credits.payment_events import PaymentEvents
from credits.payments import PaymentError, PaymentGateway
from credits.payments import ReturnPages as ProcessorReturns
from credits.recommendation import FundingAdvisor
from credits.repository import ConcurrencyConflict
from credits.runway import RunwayAlerts
from credits.usage import UsageFormatError
from credits.usage_charging import UsageCharger
from credits.usage_days import ConsistencyError
from credits.usage_import import GraphUsageSync, PageSource, UsageImporter
from credits.usage_migration import UsageMigration
from credits.wakeups import Wakeups
from dialogs.add_funds import CONFIRM, AddFundsDialog
from dialogs.alert_commands import AlertHistory, AlertsHere
from dialogs.alert_settings import FORM as ALERT_SETTINGS_FORM
from dialogs.alert_settings import AlertSettingsDialog
from dialogs.auto_recharge import CONFIRM as AUTO_RECHARGE_CONFIRM
from dialogs.auto_recharge import AutoRechargeDialog
from dialogs.channels import TeamRoster
from dialogs.commands import Command, CommandParser
from dialogs.history import VIEW as HISTORY_VIEW
from dialogs.history import HistoryView
from dialogs.language import LanguageDialog, LanguagePreference
from dialogs.licences import LicencesDialog
from dialogs.main_dialog import MainDialog
from dialogs.payment_method import UpdatePaymentMethod
from dialogs.status import RefreshAudience, StatusReply
from dialogs.turn import tenant_id_of
from dialogs.usage import UsageChat
from graph.adapters import GraphAdapters
from graph.errors import GraphError
from locales import Localizer
from payments.sandbox_page import SandboxPage
from payments.stripe_gateway import StripeGateway
from storage.alerts import TableAlertStore
from storage.audit import AuditLog
from storage.bot_state import StateConflictError, TableBotStorage
from storage.conversations import ConversationRepository, TableCheckoutCards
from storage.credits_repository import TableCreditsRepository
from storage.demo import DemoSeededDirectory, demo_seeder
from storage.embedded_directory import EmbeddedDirectory
from storage.leases import TableLeases
from storage.sandbox_gateway import SandboxGateway
from storage.sandbox_records import TableSandboxRecords
from storage.tables import TableStore
from storage.tenants_index import TableTenantsIndex

logger = logging.getLogger("ccbot")

# Pending orders younger than this may still be in the hands of the request that wrote them.
ORDER_RECOVERY_AGE = timedelta(minutes=2)
ORDER_RECOVERY_INTERVAL = timedelta(minutes=1)
RECHARGE_INTERVAL = timedelta(minutes=1)
EXPIRY_INTERVAL = timedelta(hours=1)
USAGE_SYNC_INTERVAL = timedelta(hours=6)
# The runway forecast: each pass reads every account and evaluates only those that changed
# since their last evaluation (a crash after a charge) or whose next-check day has come; hourly,
# so that a crossing by the passing of time is told early in its day.
RUNWAY_INTERVAL = timedelta(hours=1)
# Per-call usage markers of the layout before day buckets are moved into them after a
# deployment (then each pass is one empty query per tenant).
USAGE_MIGRATION_INTERVAL = timedelta(days=1)
# Alerts go out on a wake-up from the commit that wrote them; the sweep catches the rest.
ALERT_SWEEP_INTERVAL = timedelta(seconds=30)
# Alert history goes back this far; older deliveries are deleted once a day.
ALERT_RETENTION = timedelta(days=90)
ALERT_RETENTION_INTERVAL = timedelta(days=1)
# Bot Framework activities are small; a megabyte is generous and bounds what a caller can send.
MAX_REQUEST_BYTES = 1024 * 1024
# Chat traffic comes from Microsoft Teams (the Agents Playground says msteams too).
TEAMS_CHANNEL = "msteams"
# How long a caller waits before trying again when the signing keys cannot be read.
KEYS_RETRY_AFTER_SECONDS = 10


@dataclass(frozen=True)
class Services:
    """Everything a request handler needs, built once per application."""

    store: TableStore
    adapter: AdapterWithErrorHandler
    bot: CreditsBot
    orders: OrderService
    accounts: AccountService
    recharger: AutoRecharger
    credits: TableCreditsRepository
    directory: Directory
    jobs: JobRunner
    job_list: tuple[Job, ...]
    alerts: AlertDispatcher
    runway: RunwayAlerts
    """Evaluates the runway forecast of accounts that changed (`run`, a background task)."""
    sender: ProactiveSender
    usage_upload: Callable[[web.Request], Awaitable[web.StreamResponse]]
    keys: SigningKeys | None
    """The Bot Framework's signing keys; None without an app id (nothing to check)."""
    payments: PaymentEventProcessor
    """Every processor event goes through it: the webhook, the sandbox page, recovery."""
    payment_webhook: Callable[[web.Request], Awaitable[web.StreamResponse]]
    return_pages: ReturnPages
    history_export: HistoryExport
    """The CSV of a period, behind a signed link."""
    sandbox_page: SandboxPage | None
    close: Callable[[], Awaitable[None]]


SETTINGS = web.AppKey("settings", Settings)
LIMITS = web.AppKey("limits", HttpLimits)
SERVICES = web.AppKey("services", Services)
REQUEST_HOOK = web.AppKey("request_hook", object)
DIRECTORY = web.AppKey("directory", object)


def create_app(
    settings: Settings,
    *,
    request_hook: Callable[[PipelineRequest], None] | None = None,
    directory: Directory | None = None,
    limits: HttpLimits | None = None,
) -> web.Application:
    """The whole service.

    `request_hook` sees every storage request and `directory` replaces the one the settings
    choose; both exist for benchmarks and tests that point the service at a fake. `limits`
    bound what one request may cost (tests shorten them); serve the app with
    `limits.server_options()`.
    """
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    app[LIMITS] = limits or HttpLimits()
    app.on_response_prepare.append(name_the_server)
    app[REQUEST_HOOK] = request_hook
    app[DIRECTORY] = directory
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_background_jobs)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/tenants/{tenant}/usage", usage_upload)
    app.router.add_get(EXPORT_PATH, history_export)
    # The pages the card processor sends the admin back to, and the processor's events.
    app.router.add_get(DONE, payment_done)
    app.router.add_get(CANCELLED, payment_cancelled)
    if settings.payment_gateway == "stripe":
        app.router.add_post("/api/payments/stripe", payment_webhook)
    else:
        # The sandbox's own hosted page, on the bot's (loopback) address.
        app.router.add_get("/sandbox/pay/{tenant}/{session}", sandbox_page_show)
        app.router.add_post("/sandbox/pay/{tenant}/{session}", sandbox_page_submit)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = TableStore.from_settings(
        connection_string=settings.storage_connection_string,
        account_url=settings.storage_account_url,
        prefix=settings.table_prefix,
        request_hook=app[REQUEST_HOOK],
    )
    graph: GraphAdapters | None = None
    try:
        await store.create_tables()
        directory, pstn_calls = app[DIRECTORY], None
        if settings.directory == "graph":
            # One app registration serves Graph for users, licences and call records.
            graph = GraphAdapters(settings.graph_client_id, settings.graph_client_secret)
            directory, pstn_calls = directory or graph.directory, graph.pstn_calls
        app[SERVICES] = build_services(settings, store, directory, pstn_calls, app[LIMITS])
        yield
    finally:
        if SERVICES in app:
            await app[SERVICES].close()
        if graph is not None:
            await graph.close()
        await store.close()


# --- the adapters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stores:
    """The Azure Table adapters of one application, each on its own table."""

    bot_state: TableBotStorage
    conversations: ConversationRepository
    alerts: TableAlertStore
    audit: AuditLog
    leases: TableLeases
    checkout_cards: TableCheckoutCards

    @classmethod
    def on(cls, store: TableStore) -> Stores:
        names = store.names
        return cls(
            bot_state=TableBotStorage(store.table(names.bot_state)),
            conversations=ConversationRepository(store.table(names.conversations)),
            alerts=TableAlertStore(store.table(names.alerts)),
            audit=AuditLog(store.table(names.audit)),
            leases=TableLeases(store.table(names.leases)),
            checkout_cards=TableCheckoutCards(store.table(names.checkout_cards)),
        )


# --- the credits domain --------------------------------------------------------------------------


@dataclass(frozen=True)
class Credits:
    """The credits domain wired to its stores: shared by the service and the command line."""

    repository: TableCreditsRepository
    accounts: AccountService
    orders: OrderService
    recharger: AutoRecharger
    importer: UsageImporter
    gateway: PaymentGateway
    events: PaymentEvents
    runway: RunwayAlerts

    async def close(self) -> None:
        if isinstance(self.gateway, StripeGateway):
            await self.gateway.close()


def payment_gateway(settings: Settings, store: TableStore) -> PaymentGateway:
    """Stripe, or the embedded sandbox (refused by the settings whenever an app id is set)."""
    base = settings.public_base_url
    returns = ProcessorReturns(base + DONE, base + CANCELLED)
    if settings.payment_gateway == "stripe":
        return StripeGateway.connect(
            settings.stripe_secret_key,
            webhook_secret=settings.stripe_webhook_secret,
            returns=returns,
            api_base=settings.stripe_api_base,
        )
    records = TableSandboxRecords(store.table(store.names.sandbox_payments))
    return SandboxGateway(records, page_url=base + "/sandbox/pay", returns=returns)


def build_credits(
    settings: Settings, store: TableStore, on_events: Callable[[str], None] | None = None
) -> Credits:
    """`on_events(tenant)` hears of every commit that wrote alert events. The caller closes
    the result (`Credits.close`: the processor's HTTP client)."""
    gateway = payment_gateway(settings, store)
    woken = Wakeups()
    repository = TableCreditsRepository(
        store.table(store.names.credits),
        on_events,
        tenants=TableTenantsIndex(store.table(store.names.tenants)),
        on_change=woken,
    )
    runway = RunwayAlerts(repository, clock=_utcnow, errors=(AzureError,), woken=woken)
    seeder = no_seed
    if settings.dangerously_allow_unauthenticated:
        # Local mode seeds every new tenant with two EA numbers and, in the sandbox, a saved
        # test card for the demo.
        seeder = demo_seeder(gateway if isinstance(gateway, SandboxGateway) else None)
    accounts = AccountService(
        repository,
        gateway,
        default_currency=settings.default_currency,
        seeder=seeder,
        clock=_utcnow,
    )
    orders = OrderService(repository, gateway, clock=_utcnow)
    recharger = AutoRecharger(repository, orders, clock=_utcnow)
    importer = UsageImporter(
        accounts, UsageCharger(repository, clock=_utcnow), recharger, runway=runway
    )
    events = PaymentEvents(repository, orders, clock=_utcnow)
    return Credits(repository, accounts, orders, recharger, importer, gateway, events, runway)


# --- the whole service ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    """What the flows, the alerts and the jobs of one application share."""

    settings: Settings
    stores: Stores
    credits: Credits
    directory: Directory
    localizer: Localizer
    cards: CardRenderer
    admins: AdminCheck
    licences: LicenceService
    advisor: FundingAdvisor
    wakeups: Wakeups
    links: ExportLinks
    """Signs and checks the download links of the history export."""


def build_services(
    settings: Settings,
    store: TableStore,
    graph: Directory | None = None,
    pstn_calls: PageSource | None = None,
    limits: HttpLimits | None = None,
) -> Services:
    shared = _shared(settings, store, graph or DemoSeededDirectory(EmbeddedDirectory.on(store)))
    conversation_state = ConversationState(shared.stores.bot_state)
    user_state = UserState(shared.stores.bot_state)
    language = LanguagePreference(user_state.create_property("Language"))
    bot = CreditsBot(
        conversation_state=conversation_state,
        user_state=user_state,
        localizer=shared.localizer,
        language=language,
        cards=shared.cards,
        main_dialog=_main_dialog(shared, conversation_state, language),
        conversations=shared.stores.conversations,
        roster=TeamRoster(shared.stores.conversations),
    )
    keys = (
        SigningKeys(settings.bot_openid_metadata_url) if settings.authentication_enabled else None
    )
    adapter = AdapterWithErrorHandler(
        settings,
        conversation_state,
        shared.localizer,
        keys=keys,
        lost_races=(StateConflictError,),
    )
    sender = ProactiveSender(adapter, settings.microsoft_app_id)
    alerts = _alerts(shared, sender)
    notices = CheckoutNotices(
        shared.stores.checkout_cards,
        sender,
        shared.cards,
        shared.localizer,
        shared.credits.accounts,
    )
    payments = PaymentEventProcessor(shared.credits.events, notices)
    job_list = _jobs(shared, alerts, pstn_calls, payments)
    gateway = shared.credits.gateway
    sandbox_page = None
    if isinstance(gateway, SandboxGateway):
        sandbox_page = SandboxPage(
            gateway,
            apply=payments,
            translator=shared.localizer.translator,
            errors=(AzureError, ConcurrencyConflict, PaymentError, NoticeFailed),
        )
    return Services(
        store=store,
        adapter=adapter,
        bot=bot,
        orders=shared.credits.orders,
        accounts=shared.credits.accounts,
        recharger=shared.credits.recharger,
        credits=shared.credits.repository,
        directory=shared.directory,
        jobs=_job_runner(shared, job_list),
        job_list=job_list,
        alerts=alerts,
        runway=shared.credits.runway,
        sender=sender,
        usage_upload=usage_handler(
            settings.usage_api_secret, _import_file(shared.credits), limits or HttpLimits()
        ),
        keys=keys,
        payments=payments,
        payment_webhook=webhook_handler(
            gateway, payments, errors=(AzureError, ConcurrencyConflict)
        ),
        return_pages=ReturnPages(shared.localizer),
        history_export=HistoryExport(
            shared.links, shared.credits.repository, shared.localizer, clock=_utcnow
        ),
        sandbox_page=sandbox_page,
        close=shared.credits.close,
    )


def _shared(settings: Settings, store: TableStore, directory: Directory) -> Shared:
    stores = Stores.on(store)
    wakeups = Wakeups()
    credits = build_credits(settings, store, wakeups)
    licences = LicenceService(directory, stores.audit.write_licence_change)
    return Shared(
        settings=settings,
        stores=stores,
        credits=credits,
        directory=directory,
        localizer=Localizer.from_directory(),
        cards=CardRenderer(),
        admins=AdminCheck(
            directory, ttl=timedelta(seconds=settings.role_cache_seconds), clock=_utcnow
        ),
        licences=licences,
        advisor=FundingAdvisor(
            credits.repository,
            today=lambda: _utcnow().date(),
            lead_days=settings.recharge_lead_days,
            minimum_minor=lambda currency: _minimum(settings, currency).minor,
            licensed_users=licences.licensed_count,
        ),
        wakeups=wakeups,
        links=ExportLinks(_export_secret(settings), settings.public_base_url),
    )


def _export_secret(settings: Settings) -> str:
    """The secret of the export links: the setting (required with an app id, where every
    instance must agree), else one of this process's own (the local stack is one process)."""
    if settings.export_url_secret:
        return settings.export_url_secret
    logger.info("export links are signed with a secret of this process (EXPORT_URL_SECRET)")
    return secrets.token_urlsafe(32)


def _main_dialog(
    shared: Shared, conversation_state: ConversationState, language: LanguagePreference
) -> MainDialog:
    """Every conversational flow, and the commands and card actions that reach them."""
    settings, credits, stores, cards = shared.settings, shared.credits, shared.stores, shared.cards
    add_funds = AddFundsDialog(
        credits.accounts,
        credits.orders,
        credits.repository,
        cards,
        stores.checkout_cards,
        minimum=lambda currency: _minimum(settings, currency),
        maximum=lambda currency: _maximum(settings, currency),
        clock=_utcnow,
    )
    auto_recharge = AutoRechargeDialog(
        credits.accounts,
        credits.repository,
        cards,
        minimum=lambda currency: _minimum(settings, currency),
        maximum=lambda currency: _maximum(settings, currency),
        advisor=shared.advisor,
        clock=_utcnow,
        audit=stores.audit,
    )
    usage = UsageChat(
        _import_file(credits),
        cards,
        download_hosts=settings.usage_download_hosts,
        advisor=shared.advisor,
    )
    roster = TeamRoster(stores.conversations)
    alert_settings = AlertSettingsDialog(
        credits.accounts,
        credits.repository,
        stores.alerts,
        stores.conversations,
        cards,
        maximum=lambda currency: _maximum(settings, currency),
        audit=stores.audit,
    )
    history = HistoryView(
        credits.accounts,
        credits.repository,
        stores.audit,
        shared.directory,
        stores.conversations,
        cards,
        shared.links,
        clock=_utcnow,
    )
    status = StatusReply(
        credits.accounts,
        cards,
        credits.runway.forecast,
        RefreshAudience(stores.conversations, shared.admins.is_admin),
    )
    return MainDialog(
        conversation_state.create_property("DialogState"),
        CommandParser.from_localizer(shared.localizer),
        cards,
        flows={
            Command.LANGUAGE: LanguageDialog(language, shared.localizer, cards),
            Command.ADD_FUNDS: add_funds,
            Command.AUTO_RECHARGE: auto_recharge,
            Command.LICENCES: LicencesDialog(shared.licences, cards),
            Command.ALERTS: alert_settings,
        },
        replies={
            Command.STATUS: status,
            Command.USAGE: usage,
            Command.ALERTS_HERE: AlertsHere(stores.conversations, roster, stores.audit),
            Command.STOP_ALERTS_HERE: AlertsHere(stores.conversations, roster, stores.audit),
            Command.ALERT_HISTORY: AlertHistory(stores.alerts, stores.conversations, cards),
            Command.UPDATE_PAYMENT_METHOD: UpdatePaymentMethod(
                credits.accounts, stores.checkout_cards, cards
            ),
            Command.HISTORY: history,
        },
        orphan_submits={
            CONFIRM: lambda tc, value: add_funds.replay_confirmation(tc, value.get("nonce")),
            AUTO_RECHARGE_CONFIRM: lambda tc, _value: auto_recharge.show_saved(tc),
            ALERT_SETTINGS_FORM: lambda tc, _value: alert_settings.show_saved(tc),
        },
        authorize=_admins_only(shared.admins),
        on_file=usage.on_file,
        refreshers={"status": status},
        views={HISTORY_VIEW: history.on_press},
    )


def _alerts(shared: Shared, sender: ProactiveSender) -> AlertDispatcher:
    async def runway_days(tenant_id: str) -> int | None:
        advice = await shared.advisor.advise(tenant_id, with_licences=False)
        return advice.recommendation.runway_days if advice is not None else None

    return AlertDispatcher(
        events=shared.credits.repository,
        store=shared.stores.alerts,
        conversations=shared.stores.conversations,
        is_admin=shared.admins.is_admin,
        cards=AlertCards(shared.cards, shared.localizer),
        sender=sender,
        limits=TeamsRateLimits(),
        clock=_utcnow,
        errors=(AzureError, DirectoryError),
        runway_days=runway_days,
        forecast=shared.credits.runway.forecast,
        wakeups=shared.wakeups,
    )


def _jobs(
    shared: Shared,
    alerts: AlertDispatcher,
    pstn_calls: PageSource | None,
    payments: PaymentEventProcessor,
) -> tuple[Job, ...]:
    credits, stores = shared.credits, shared.stores
    expiry = ExpiryJob(credits.repository, clock=_utcnow)

    async def recover_orders(tenant_id: str) -> None:
        # Asks the processor about pending orders (their events may be lost or late), and
        # tells the chats of those it finished.
        await payments.recovered(
            await credits.orders.recover(tenant_id, older_than=ORDER_RECOVERY_AGE)
        )

    jobs = (
        Job("order-recovery", ORDER_RECOVERY_INTERVAL, recover_orders),
        Job("auto-recharge", RECHARGE_INTERVAL, credits.recharger.run),
        Job("expiry", EXPIRY_INTERVAL, expiry.run),
        Job("runway", RUNWAY_INTERVAL, credits.runway.check, at_start=True),
        # The safety net: finds what a crash or another instance left in the outbox.
        Job("alerts-sweep", ALERT_SWEEP_INTERVAL, alerts.wake_async),
        Job(
            "alerts-retention",
            ALERT_RETENTION_INTERVAL,
            lambda tenant: stores.alerts.prune(tenant, _utcnow() - ALERT_RETENTION),
        ),
        Job(
            "usage-migration",
            USAGE_MIGRATION_INTERVAL,
            UsageMigration(credits.repository).run,
            at_start=True,
        ),
    )
    if pstn_calls is not None:
        sync = GraphUsageSync(
            credits.accounts,
            UsageCharger(credits.repository, clock=_utcnow),
            credits.recharger,
            pstn_calls,
            clock=_utcnow,
            runway=credits.runway,
        )
        jobs += (Job("usage-sync", USAGE_SYNC_INTERVAL, sync.run),)
    return jobs


def _job_runner(shared: Shared, jobs: tuple[Job, ...]) -> JobRunner:
    return JobRunner(
        jobs,
        shared.stores.leases,
        shared.credits.repository.tenants_with_accounts,
        owner=f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        # A tenant's pass that fails with one of these is logged and retried on the next pass.
        errors=(
            AzureError,
            PaymentError,
            ConcurrencyConflict,
            DirectoryError,
            GraphError,
            UsageFormatError,
            ConsistencyError,
        ),
    )


def _import_file(credits: Credits):
    return lambda tenant, body, origin: credits.importer.import_file(tenant, body, origin=origin)


def _minimum(settings: Settings, currency: str) -> Money:
    return Money.from_decimal(settings.purchase_minimum, currency)


def _maximum(settings: Settings, currency: str) -> Money:
    return Money.from_decimal(settings.purchase_maximum, currency)


def _admins_only(admins: AdminCheck):
    async def authorize(turn_context) -> str | None:
        activity = turn_context.activity
        sender = activity.from_property
        try:
            allowed = await admins.is_admin(
                tenant_id_of(activity) or "", (sender.aad_object_id or "") if sender else ""
            )
        except DirectoryError:
            logger.exception("could not read the sender's roles")
            return "access.unavailable"
        return None if allowed else "access.refused"

    return authorize


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- running -------------------------------------------------------------------------------------


async def _background_jobs(app: web.Application) -> AsyncIterator[None]:
    """Order recovery, auto-recharge retries, expiry and the runway forecast, each pass under a
    lease in Tables; the alert dispatcher and the runway evaluation of changed accounts."""
    services = app[SERVICES]
    tasks = [asyncio.create_task(services.jobs.forever(job)) for job in services.job_list]
    tasks.append(asyncio.create_task(services.alerts.run()))
    tasks.append(asyncio.create_task(services.runway.run()))
    if services.keys is not None:
        # Read now and kept fresh here, so that no turn waits for them (bot/signing_keys.py).
        tasks.append(asyncio.create_task(services.keys.run()))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await services.sender.close()
    if services.keys is not None:
        await services.keys.close()


async def messages(request: web.Request) -> web.StreamResponse:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="expected application/json")
    # Read and checked here, within bounds, so that malformed input is a 400 (or a slow body a
    # 408), never an exception inside the adapter; the adapter reads the cached body again.
    body = await read_json(request, request.app[LIMITS])
    problem = activity_problem(body)
    if problem is not None:
        raise web.HTTPBadRequest(text=f"the body is not a Bot Framework activity: {problem}")
    if body.get("channelId") != TEAMS_CHANNEL:
        logger.warning(
            "refused an activity from channel %r (only %s is served)",
            str(body.get("channelId"))[:40],
            TEAMS_CHANNEL,
        )
        raise web.HTTPForbidden(text="this bot serves Microsoft Teams only")
    services = request.app[SERVICES]
    try:
        response = await services.adapter.process(request, services.bot)
    except DeserializationError as error:
        # A field botbuilder cannot read (a timestamp that is no date, say): msrest's error.
        raise web.HTTPBadRequest(text="the body is not a Bot Framework activity") from error
    except KeysUnavailable as error:
        raise web.HTTPServiceUnavailable(
            text="the Bot Framework's signing keys cannot be read now; try again",
            headers={"Retry-After": str(KEYS_RETRY_AFTER_SECONDS)},
        ) from error
    return response or web.Response(status=201)


async def usage_upload(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVICES].usage_upload(request)


async def history_export(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVICES].history_export(request)


async def payment_webhook(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVICES].payment_webhook(request)


async def payment_done(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVICES].return_pages.done(request)


async def payment_cancelled(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVICES].return_pages.cancelled(request)


async def sandbox_page_show(request: web.Request) -> web.StreamResponse:
    page = request.app[SERVICES].sandbox_page
    assert page is not None  # routed only with the sandbox
    return await page.show(request)


async def sandbox_page_submit(request: web.Request) -> web.StreamResponse:
    page = request.app[SERVICES].sandbox_page
    assert page is not None
    return await page.submit(request)


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if await services.store.ping():
        return web.json_response({"status": "ok", "storage": "ok"})
    return web.json_response({"status": "unavailable", "storage": "unreachable"}, status=503)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # The SDKs log every HTTP request (Azure: with its headers; Stripe: at DEBUG its
    # parameters) at INFO and below; keep them out of normal logs.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("stripe").setLevel(logging.WARNING)


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)  # noqa: T201 - before logging
        raise SystemExit(2) from error
    configure_logging(settings.log_level)
    if settings.dangerously_allow_unauthenticated:
        logger.warning("running WITHOUT authentication (DANGEROUSLY_ALLOW_UNAUTHENTICATED=true)")
    limits = HttpLimits()
    quiet_server_banner()
    web.run_app(
        create_app(settings, limits=limits),
        host=settings.host,
        port=settings.port,
        print=None,
        **limits.server_options(),
    )


if __name__ == "__main__":
    main()
