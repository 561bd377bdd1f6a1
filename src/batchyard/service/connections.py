"""Limits on the HTTP server's connections: how many it holds, and how long one may take to send its headers.

uvicorn accepts every connection and waits for its request headers without a deadline: slow or idle clients
that never finish a request hold a file descriptor and memory each, until the service runs out of both. The
`ConnectionGuard` keeps the connections that are waiting for request headers (just accepted, sending a
request slowly, or idle between keep-alive requests) in the order they began to wait:

- one that has not sent complete headers `header_timeout` seconds after it began to wait is closed;
- at `max_connections` (open HTTP connections and WebSockets together), a new connection closes the one
  that has waited longest, so slow clients cannot lock others out; when none is waiting (every connection
  has a request in progress or is an agent's WebSocket), the new one is answered 503 and closed.

A connection with a request in progress and an agent's WebSocket (after the upgrade) never wait: neither
timeout touches them. uvicorn's own keep-alive timeout still closes idle connections after a response.
A connection whose first bytes are a TLS handshake is closed with a hint in the log (HTTPS to the HTTP port).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Iterable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("batchyard.connections")

LISTEN_QUEUE = 2048  # uvicorn's backlog
REPORT_INTERVAL = 60.0  # closed and refused connections are summed up in one warning at most this often
TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS record, which a ClientHello starts with
TLS_HINT = "Invalid HTTP request received (a TLS handshake on the plain-HTTP port? use http://)"
_REFUSAL_BODY = b"Too many connections, retry"
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_limits(requested: int, open_files: int) -> tuple[int, int]:
    """The connection limit, and how many connections to accept at a time, for an open-file limit.

    `requested` connections, or fewer when the open-file limit could not hold them beside the service's own
    files (database, logs, agents, downloads): a quarter of the descriptors, at least 64, stay free.

    asyncio accepts up to its `backlog` connections each time the loop turns, and a connection closed to
    make room for one of them lets its descriptor go three turns later: at the limit, three such batches
    are open beyond it. So a batch is an eighth of the free descriptors (at most 2048, uvicorn's backlog);
    `widen_listen_queue` keeps the kernel's queue of connections to accept long.
    """
    spare = max(64, open_files // 4)
    return max(1, min(requested, open_files - spare)), max(8, min(LISTEN_QUEUE, spare // 8))


def widen_listen_queue(servers: Iterable[asyncio.Server], size: int = LISTEN_QUEUE) -> None:
    """Let the kernel queue `size` connections on the listening sockets of `servers`, whatever backlog
    asyncio was given (which also caps how many it accepts in one go): a burst of clients (agents
    reconnecting after a restart) then waits in the queue instead of retrying their SYNs a second later."""
    for server in servers:
        for transport_socket in server.sockets:
            listening = socket.socket(fileno=transport_socket.fileno())
            try:
                listening.listen(size)
            finally:
                listening.detach()


class ConnectionGuard:
    """The connections waiting for request headers, oldest first, and what is done with them (module doc)."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        # protocol -> loop time it began to wait; insertion order is that time's order (entries are only
        # added at the end, with the current time)
        self.waiting: dict[GuardedH11Protocol, float] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._timed_out = 0
        self._evicted = 0
        self._refused = 0
        self._reported_at: float | None = None

    def start_waiting(self, protocol: GuardedH11Protocol, now: float) -> None:
        self.waiting.pop(protocol, None)
        self.waiting[protocol] = now
        if self._sweep is None:
            self._schedule(protocol.loop)

    def admit(self, protocol: GuardedH11Protocol, open_connections: int) -> bool:
        """Whether a new connection may stay, once the longest-waiting one is closed if the limit needs it."""
        if open_connections <= self.max_connections:
            return True
        admitted = bool(self.waiting)
        if admitted:
            oldest = next(iter(self.waiting))
            del self.waiting[oldest]
            oldest.transport.close()
            self._evicted += 1
        else:
            self._refused += 1
        self._report(protocol.loop.time())
        if self._sweep is None:  # it tells later what this report could not
            self._schedule(protocol.loop)
        return admitted

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep = loop.call_later(min(1.0, self.header_timeout / 2), self._close_late, loop)

    def _close_late(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep = None
        now = loop.time()
        deadline = now - self.header_timeout
        waiting = self.waiting
        while waiting:
            protocol, since = next(iter(waiting.items()))
            if since > deadline:
                break
            del waiting[protocol]
            protocol.transport.close()
            self._timed_out += 1
        untold = self._timed_out or self._evicted or self._refused
        if untold:
            self._report(now)
        if waiting or untold:
            self._schedule(loop)

    def _report(self, now: float) -> None:
        if self._reported_at is not None and now - self._reported_at < REPORT_INTERVAL:
            return
        self._reported_at = now
        log.warning(
            "HTTP connections closed: %d without complete request headers within %g s, %d to make room at the "
            "limit of %d connections; %d refused (503) at the limit",
            self._timed_out,
            self.header_timeout,
            self._evicted,
            self.max_connections,
            self._refused,
        )
        self._timed_out = self._evicted = self._refused = 0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under a `ConnectionGuard` (the class attribute `guard`; see `guarded_protocol`)."""

    guard: ConnectionGuard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream server's connections have one
        super().connection_made(transport)
        self._first_data = True
        if not self.guard.admit(self, len(self.connections)):
            transport.write(_REFUSAL)
            transport.close()
            return
        self.guard.start_waiting(self, self.loop.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.waiting.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._first_data:
            self._first_data = False
            if data[:1] == TLS_HANDSHAKE:
                # uvicorn would log "Invalid HTTP request received." and answer a TLS client in plain HTTP
                log.warning(TLS_HINT)
                self.transport.close()
                self.guard.waiting.pop(self, None)
                return
        super().data_received(data)
        # Waiting for headers is being idle (h11: IDLE) between requests; a request whose headers are in
        # is no longer waiting. A connection keeps the time it began to wait while its headers trickle in.
        if self.conn.their_state is h11.IDLE:
            if self not in self.guard.waiting and not self.transport.is_closing():
                self.guard.start_waiting(self, self.loop.time())
        else:
            self.guard.waiting.pop(self, None)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.guard.start_waiting(self, self.loop.time())

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self.guard.waiting.pop(self, None)
        super().handle_websocket_upgrade(event)


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class for `uvicorn.Config(http=...)` whose connections `guard` limits."""

    class Guarded(GuardedH11Protocol):
        pass

    Guarded.guard = guard
    return Guarded
