"""Diagnostic logs in a running service: the recorder on the engine, the shipper's task, the stream's feed."""

from __future__ import annotations

import asyncio
import contextlib

from batchyard.service.config import DiagnosticLogs
from batchyard.service.diagnostics.recorder import DiagnosticRecorder
from batchyard.service.diagnostics.records import AccountResource
from batchyard.service.diagnostics.shipper import BlobAppender, LogShipper, container_for
from batchyard.service.diagnostics.stream import EventFeed
from batchyard.service.engine.engine import Engine


class DiagnosticLogService:
    def __init__(self, engine: Engine, account_name: str, options: DiagnosticLogs) -> None:
        resource = AccountResource(account_name, options.subscription_id, options.resource_group)
        self.recorder = DiagnosticRecorder(engine, resource)
        store = engine.core.store
        appender = None
        if options.storage_connection_string is not None:
            appender = BlobAppender(container_for(options.storage_connection_string), resource)
        self.shipper = LogShipper(store, appender, self.recorder.committed)
        self.feed = EventFeed(store, self.recorder.committed)
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
