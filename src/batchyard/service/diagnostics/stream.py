"""`GET /_batchyard/events`: the Service Log records as a live stream of server-sent events.

Signed with the account key like the other `/_batchyard` calls. Each event is one outbox record:
`id:` its outbox number, `event:` its operationName, `data:` the record (the JSON line the storage
account gets). It follows the outbox from after `Last-Event-ID` (what an EventSource sends when it
reconnects) or the `from` query parameter (0: every record still kept); with neither, from now on.
A comment line every 15 seconds keeps idle connections (and proxies) open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.diagnostics.recorder import Wakeup
from batchyard.service.errors import BatchError
from batchyard.service.http import endpoint
from batchyard.service.ports import Store

_HEARTBEAT = 15.0
_PAGE = 500


class EventFeed:
    """What the stream reads: the outbox, and the wakeup its recorder gives after each write."""

    def __init__(self, store: Store, wakeup: Wakeup, is_on: Callable[[], bool]) -> None:
        self.store = store
        self.wakeup = wakeup
        self.is_on = is_on  # whether records are written now (the option, or a diagnostic setting)
        self.closed = False

    def close(self) -> None:
        """End every stream: the server is stopping, and waits for open responses (a browser's never ends)."""
        self.closed = True
        self.wakeup.notify()

    def newest(self) -> int:
        """The number of the newest record (0 when there is none)."""
        # Records are never renumbered: read the last page from the oldest kept one.
        last = 0
        while page := self.store.outbox_records(last, _PAGE):
            last = page[-1][0]
        return last

    async def follow(self, after: int, request: Request) -> AsyncIterator[bytes]:
        yield b": batchyard service log events\n\n"
        while not self.closed and not await request.is_disconnected():
            page = self.store.outbox_records(after, _PAGE)
            for seq, record in page:
                name = orjson.loads(record).get("operationName", "message")
                yield b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, name.encode(), record)
                after = seq
            if not page:
                await self.wakeup.wait(_HEARTBEAT)
                if not self.closed and not self.store.outbox_records(after, 1):
                    yield b": keep-alive\n\n"


def _start(request: Request, feed: EventFeed) -> int:
    header = request.headers.get("last-event-id")
    if header is not None:
        if not header.strip().isdigit():
            raise errors.invalid_header("Last-Event-ID", header, "An event id (a number >= 0) is required.")
        return int(header)
    value = request.query_params.get("from")
    if value is not None:
        if not value.isdigit():
            raise errors.invalid_query("from", value, "A record number >= 0 is required.")
        return int(value)
    return feed.newest()


@endpoint
async def service_log_events(request: Request) -> Response:
    feed: EventFeed | None = request.app.state.event_feed
    if feed is None or not feed.is_on():
        raise BatchError(
            409,
            "OperationInvalidForCurrentState",
            "Diagnostic logs are off: start the service with --diagnostic-logs, or add a diagnostic setting that "
            "sends the ServiceLog category to the linked storage account.",
        )
    after = _start(request, feed)
    return StreamingResponse(
        feed.follow(after, request),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


routes = [Route("/_batchyard/events", service_log_events, methods=["GET"])]
