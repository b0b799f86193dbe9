"""The one place that builds Azure Table clients.

A connection string (Azurite locally, a keyed account elsewhere) or, when only an account URL is
given, the managed identity of the host through `azure-identity`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.core.pipeline import PipelineRequest
from azure.data.tables.aio import TableClient, TableServiceClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableNames:
    """Every table the service uses, derived from one prefix."""

    prefix: str

    @property
    def bot_state(self) -> str:
        return f"{self.prefix}BotState"

    @property
    def conversations(self) -> str:
        return f"{self.prefix}Conversations"

    @property
    def credits(self) -> str:
        return f"{self.prefix}Credits"

    @property
    def tenants(self) -> str:
        """The tenants index: one row per tenant with an account (storage/tenants_index.py)."""
        return f"{self.prefix}Tenants"

    @property
    def sandbox_payments(self) -> str:
        return f"{self.prefix}SandboxPayments"

    @property
    def checkout_cards(self) -> str:
        """The chat cards that opened a processor's hosted page."""
        return f"{self.prefix}CheckoutCards"

    @property
    def leases(self) -> str:
        return f"{self.prefix}Leases"

    @property
    def alerts(self) -> str:
        """Alert deliveries and admins' alert preferences."""
        return f"{self.prefix}Alerts"

    @property
    def audit(self) -> str:
        return f"{self.prefix}Audit"

    @property
    def directory(self) -> str:
        """The embedded directory (users, licences, roles) of the local stack and the tests."""
        return f"{self.prefix}Directory"

    def all(self) -> list[str]:
        return [
            self.bot_state,
            self.conversations,
            self.credits,
            self.tenants,
            self.sandbox_payments,
            self.checkout_cards,
            self.directory,
            self.audit,
            self.leases,
            self.alerts,
        ]


class TableStore:
    """Owns the service client and hands out table clients that share its transport."""

    def __init__(
        self,
        service: TableServiceClient,
        names: TableNames,
        credential: AsyncTokenCredential | None = None,
    ) -> None:
        self._service = service
        self._credential = credential
        self.names = names

    @classmethod
    def from_settings(
        cls,
        *,
        connection_string: str,
        account_url: str,
        prefix: str,
        request_hook: Callable[[PipelineRequest], None] | None = None,
    ) -> TableStore:
        """`request_hook` sees every HTTP request (the benchmarks count them with it)."""
        names = TableNames(prefix)
        options = {"raw_request_hook": request_hook} if request_hook else {}
        if connection_string:
            service = TableServiceClient.from_connection_string(connection_string, **options)
            return cls(service, names)
        # Imported here so a connection-string deployment never loads the identity stack.
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
        service = TableServiceClient(endpoint=account_url, credential=credential, **options)
        return cls(service, names, credential)

    def table(self, name: str) -> TableClient:
        return self._service.get_table_client(name)

    async def create_tables(self) -> None:
        for name in self.names.all():
            try:
                await self._service.create_table(name)
                logger.info("created table %s", name)
            except ResourceExistsError:
                pass

    async def ping(self) -> bool:
        """True when the Table service answers; used by /healthz."""
        try:
            # No retries: a health probe must answer quickly, and the prober retries anyway.
            async for _ in self._service.list_tables(results_per_page=1, retry_total=0):
                break
            return True
        except (AzureError, HttpResponseError, OSError):
            logger.warning("table service did not answer", exc_info=True)
            return False

    async def close(self) -> None:
        await self._service.close()
        if self._credential is not None:
            await self._credential.close()
