"""Diagnostic logs in a running service: the recorder on the engine, the shipper's task, the stream's feed.

Records are written while the `--diagnostic-logs` option is given (always, to its destination), or else while
a diagnostic setting on the account sends Service Logs to the linked storage account (settings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from batchyard.service.config import DiagnosticLogs
from batchyard.service.diagnostics.recorder import DiagnosticRecorder
from batchyard.service.diagnostics.records import AccountResource
from batchyard.service.diagnostics.settings import DiagnosticSettings
from batchyard.service.diagnostics.shipper import BlobAppender, LogShipper, container_for, writer_id
from batchyard.service.diagnostics.stream import EventFeed
from batchyard.service.engine.engine import Engine
from batchyard.service.management.resources import RESOURCE_GROUP, SUBSCRIPTION_ID


class DiagnosticLogService:
    def __init__(
        self,
        engine: Engine,
        account_name: str,
        options: DiagnosticLogs | None,
        settings: DiagnosticSettings,
        linked_connection_string: str | None,
    ) -> None:
        is_on: Callable[[], bool]
        if options is not None:
            resource = AccountResource(account_name, options.subscription_id, options.resource_group)
            destination = options.storage_connection_string
            is_on = lambda: True  # noqa: E731
        else:  # the account's resource as the management plane names it, whose settings decide
            resource = AccountResource(account_name, SUBSCRIPTION_ID, RESOURCE_GROUP)
            destination = linked_connection_string
            is_on = lambda: settings.service_logs_on  # noqa: E731
        self.recorder = DiagnosticRecorder(engine, resource, is_on)
        store = engine.core.store
        appender = (
            BlobAppender(container_for(destination), resource, writer_id(store)) if destination is not None else None
        )
        self.shipper = LogShipper(store, appender, self.recorder.committed)
        self.feed = EventFeed(store, self.recorder.committed, is_on)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.shipper.run())

    async def stop(self) -> None:
        """Ship what is committed (briefly: a storage account that is away keeps it for the next start)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while await self.shipper.ship_once():
                    pass
