"""Writes a Service Log record to the store's outbox for each engine event that has one.

An outside observer of the engine (`engine.reactions.add`), added when diagnostic logs can be on: it writes
while `is_on()` says so (the `--diagnostic-logs` option, or a diagnostic setting that can change at any time).
Reactions run inside the unit of work that made the change, so a record commits with its change or not
at all: after a crash, no change lacks its record (unless its record could not be built: that is logged,
see `_never_fails`) and no record lacks its change. The shipper
(shipper.py) and the live stream (stream.py) read the outbox after the commit; `committed` wakes them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from batchyard.service.clock import iso
from batchyard.service.diagnostics import bodies
from batchyard.service.diagnostics.records import AccountResource
from batchyard.service.engine.account_keys import account_of
from batchyard.service.engine.engine import Engine
from batchyard.service.engine.events import (
    AutoscaleEvaluated,
    PoolAdded,
    PoolDeleted,
    PoolDeleting,
    PoolResizeEnded,
    PoolResizeStarted,
    SpecialTaskEnded,
    TaskCompleted,
    TaskScheduleFailed,
    TaskStarted,
    reacts_to,
)
from batchyard.service.engine.records import NodeRecord, PoolRecord

log = logging.getLogger(__name__)
E = TypeVar("E")


def _never_fails(reaction: Callable[[DiagnosticRecorder, E], None]) -> Callable[[DiagnosticRecorder, E], None]:
    """No record while logs are off, nor of another account than the service's own (the logs are its: other
    accounts made through the management plane have none). A record that cannot be built (a document of an
    unforeseen shape) is logged and left out: the change it tells goes on (a log must not refuse a task's
    completion)."""

    @functools.wraps(reaction)
    def guarded(self: DiagnosticRecorder, event: E) -> None:
        if not self.is_on() or not _of_service_account(event):
            return
        try:
            reaction(self, event)
        except Exception:
            log.exception("diagnostic logs: no record for %s", type(event).__name__)

    return guarded


class Wakeup:
    """Wakes every waiter once records were written (a stream or the shipper waits for new ones)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


class DiagnosticRecorder:
    def __init__(self, engine: Engine, resource: AccountResource, is_on: Callable[[], bool]) -> None:
        self.core = engine.core
        self.is_on = is_on
        self.store = engine.core.store
        self.resource = resource
        self.committed = Wakeup()
        engine.reactions.add(self)

    def _write(self, operation: str, properties: dict[str, Any], now: datetime) -> None:
        self.store.add_outbox_records([self.resource.record(operation, properties, now)])
        # Readers run on the event loop after this unit of work (no unit of work awaits), so they see it committed.
        asyncio.get_running_loop().call_soon(self.committed.notify)

    # --- pools -----------------------------------------------------------------------------------

    @reacts_to(PoolAdded)
    @_never_fails
    def _pool_added(self, event: PoolAdded) -> None:
        self._write("PoolCreateEvent", bodies.pool_create(event.pool.doc, _is_auto(event.pool)), event.now)

    @reacts_to(PoolResizeStarted)
    @_never_fails
    def _resize_started(self, event: PoolResizeStarted) -> None:
        body = bodies.pool_resize_start(event.pool.doc, event.option, _is_auto(event.pool))
        self._write("PoolResizeStartEvent", body, event.now)

    @reacts_to(PoolResizeEnded)
    @_never_fails
    def _resize_ended(self, event: PoolResizeEnded) -> None:
        pool = event.pool
        ended = iso(event.now)
        body = bodies.pool_resize_complete(
            pool.doc, pool.private.deallocation_option, _is_auto(pool), event.started or ended, ended, event.error
        )
        self._write("PoolResizeCompleteEvent", body, event.now)

    @reacts_to(PoolDeleting)
    @_never_fails
    def _pool_deleting(self, event: PoolDeleting) -> None:
        self._write("PoolDeleteStartEvent", bodies.pool_delete_start(event.pool.doc), event.now)

    @reacts_to(PoolDeleted)
    @_never_fails
    def _pool_deleted(self, event: PoolDeleted) -> None:
        body = bodies.pool_delete_complete(event.pool.doc, event.started, iso(event.now))
        self._write("PoolDeleteCompleteEvent", body, event.now)

    @reacts_to(AutoscaleEvaluated)
    @_never_fails
    def _autoscale_evaluated(self, event: AutoscaleEvaluated) -> None:
        self._write("PoolAutoScaleEvent", bodies.pool_autoscale(event.pool.doc), event.now)

    # --- tasks -----------------------------------------------------------------------------------

    @reacts_to(TaskStarted)
    @_never_fails
    def _task_started(self, event: TaskStarted) -> None:
        body = bodies.task_start(event.job.doc["id"], event.doc, event.doc.private.job_manager)
        self._write("TaskStartEvent", body, event.now)

    @reacts_to(TaskCompleted)
    @_never_fails
    def _task_completed(self, event: TaskCompleted) -> None:
        body = bodies.task_complete(event.job.doc["id"], event.doc, event.doc.private.job_manager)
        self._write("TaskCompleteEvent", body, event.now)
        if bodies.failed(event.doc):  # "emitted in addition to a task complete event"
            self._write("TaskFailEvent", body, event.now)

    @reacts_to(TaskScheduleFailed)
    @_never_fails
    def _task_schedule_failed(self, event: TaskScheduleFailed) -> None:
        body = bodies.task_schedule_fail(
            event.job.doc["id"],
            event.doc,
            event.doc.private.job_manager,
            self._pool_id(event.node),
            event.node.id,
            event.error,
        )
        self._write("TaskScheduleFailEvent", body, event.now)

    @reacts_to(SpecialTaskEnded)
    @_never_fails
    def _special_task_ended(self, event: SpecialTaskEnded) -> None:
        job_id = event.job.doc["id"] if event.job is not None else None
        body = bodies.special_task(
            event.kind, event.task_id, job_id, self._pool_id(event.node), event.node.id, event.info
        )
        self._write("SpecialTaskEvent", body, event.now)

    def _pool_id(self, node: NodeRecord) -> str:
        pool = self.core.pools.get(node.pool_key)
        return str(pool.doc["id"]) if pool is not None else node.pool_key


def _of_service_account(event: object) -> bool:
    """Whether the pool, job or node an event is about is the service's own account's (engine/account_keys.py)."""
    for name, key_field in (("pool", "key"), ("job", "key"), ("node", "pool_key")):
        if (entity := getattr(event, name, None)) is not None:
            return account_of(str(getattr(entity, key_field))) is None
    return True


def _is_auto(pool: PoolRecord) -> bool:
    return pool.private.auto_pool_for is not None
