"""Active/standby service instances on one PostgreSQL database: only the lease's holder serves.

Every `serve --database postgresql://...` process starts as a standby and tries the lease (an advisory lock,
persistence/postgres/lease.py) every LEASE_POLL seconds. A standby answers the Batch API with the retryable
Batch error ServerBusy (503, Retry-After), its readiness check (`GET /`) with 503 too (a load balancer sends
clients to the active instance), and refuses agents (they try the next service URL they know).

The instance that takes the lease claims a new fencing epoch, loads the state from the store as a restarted
service does (build_app), and serves. It steps down to standby when the lease's connection is lost or a write
finds the epoch moved on (another instance took charge): it abandons its engine without stopping nodes or
runs (the new active instance adopts them) and competes for the lease again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from batchyard.protocol import messages
from batchyard.service.app import close_event_streams
from batchyard.service.errors import BatchError
from batchyard.service.http import error_response
from batchyard.service.persistence.postgres import PostgresStore
from batchyard.service.persistence.postgres.lease import Lease
from batchyard.service.persistence.postgres.schema import open_database

log = logging.getLogger("batchyard.failover")

LEASE_POLL = 0.5  # seconds between a standby's attempts at the lease
LEASE_CHECK = 0.5  # seconds between the active instance's checks that it still holds the lease
# Seconds the active instance stays so while the database is unreachable (a server restart): no other
# instance can take the lease meanwhile, and the epoch refuses its writes if one did. About when the server
# ends a cut-off lease session (lease.py's keepalives), so it steps down before its agents could be adopted.
LEASE_GRACE = 5.0
RETRY_AFTER = 1  # seconds a refused client waits (azure-core honours Retry-After on 503)
_BUSY = BatchError(
    503,
    "ServerBusy",
    "This service instance is a standby: another instance is active. Retry the request.",
    headers={"Retry-After": str(RETRY_AFTER)},
)


class _Active:
    """The service this instance runs while it holds the lease."""

    def __init__(self, app: Starlette, store: PostgresStore) -> None:
        self.app = app
        self.store = store
        self.lifespan: contextlib.AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)


def check_database(url: str) -> None:
    """StoreError when the database cannot be used (unreachable, from a newer release), before serving."""
    open_database(url).close()


class FailoverApp:
    """The ASGI application of one of several instances on a database: a standby, or the active service."""

    def __init__(self, url: str, base_url: str, build: Callable[[PostgresStore], Starlette]) -> None:
        self._url = url
        self._base_url = base_url
        self._build = build  # the service on a store whose epoch this instance claimed
        self._lease = Lease(url)
        self._active: _Active | None = None
        self._runner: asyncio.Task[None] | None = None
        self._lease_lost_at: float | None = None  # (monotonic) when the active instance last lost the lease

    def close_event_streams(self) -> None:
        """Before a stop: end the active service's event streams, which the shutdown would wait for."""
        if self._active is not None:
            close_event_streams(self._active.app)

    def _serving(self) -> _Active | None:
        active = self._active
        return active if active is not None and not active.store.fenced else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        active = self._serving()
        if active is not None:
            await active.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # Refused before the handshake (HTTP 403): the agent tries its next service URL.
            await send({"type": "websocket.close", "code": messages.AGENT_MOVED})
        else:
            await error_response(_BUSY, self._base_url)(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._runner = asyncio.get_running_loop().create_task(self._run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _shutdown(self) -> None:
        """A clean stop: the active instance stops its service as a lone one does; the lease goes with the
        process (its session ends)."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        active, self._active = self._active, None
        if active is not None:
            if active.store.fenced:
                await active.app.state.abandon()
            else:
                await active.lifespan.__aexit__(None, None, None)
        await asyncio.to_thread(self._lease.release)

    async def _run(self) -> None:
        while True:
            try:
                await self._stand_by_then_serve()
            except Exception:  # the role's loop outlives any one failure
                log.exception("the failover loop failed: standing by")
                await self._step_down()
                await asyncio.sleep(LEASE_POLL)

    async def _stand_by_then_serve(self) -> None:
        while not await asyncio.to_thread(self._lease.try_acquire):
            await asyncio.sleep(LEASE_POLL)
        try:
            await self._take_charge()
        except Exception:
            log.exception("taking charge of the database failed: standing by")
            await asyncio.to_thread(self._lease.release)
            await asyncio.sleep(LEASE_POLL)
            return
        while self._serving() is not None and await self._still_in_charge():
            await asyncio.sleep(LEASE_CHECK)
        await self._step_down()

    async def _still_in_charge(self) -> bool:
        """Whether this instance holds the lease; a lost lease's connection (the database server restarted)
        is taken again when no other instance claimed the database in between."""
        if await asyncio.to_thread(self._lease.still_held):
            return True
        now = time.monotonic()
        lost_at = self._lease_lost_at = self._lease_lost_at or now
        active = self._active
        if active is None:
            return False
        if not await asyncio.to_thread(self._lease.try_acquire):
            return not self._lease.reachable and now - lost_at < LEASE_GRACE
        try:
            current = active.store.epoch_is_current()
        except Exception as exc:  # the store's connection is made again on its next use: the next check
            log.warning("the fencing epoch could not be read: %s", exc)
            return now - lost_at < LEASE_GRACE
        if current:
            log.warning("the lease was taken again after %.1f s", now - lost_at)
            self._lease_lost_at = None
        return current

    async def _take_charge(self) -> None:
        # Loaded on the event loop: the store's connection is used from this thread only.
        store = PostgresStore(self._url, claim_epoch=True)
        try:
            app = self._build(store)
        except BaseException:
            store.close()
            raise
        active = _Active(app, store)
        await active.lifespan.__aenter__()
        self._active = active
        self._lease_lost_at = None
        log.warning("this instance is now the active one (fencing epoch %s)", store.epoch)

    async def _step_down(self) -> None:
        active, self._active = self._active, None
        if active is None:
            return
        log.warning("this instance lost the lease: standing by")
        active.store.relinquish()  # nothing more is written, whatever the abandoned engine still tries
        try:
            await active.app.state.abandon()
        except Exception:
            log.exception("abandoning the engine failed")
        await asyncio.to_thread(self._lease.release)
