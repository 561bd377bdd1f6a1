"""The service's access log (logger `batchyard.access`).

One line per HTTP request at `info`: method, path and query (secret values redacted), status, duration,
the client's `client-request-id` and the service's `request-id`. Headers are never logged, so neither
are Authorization values or keys; a SAS signature (`sig=`) and other secret-named query values are
replaced by `REDACTED`. When `info` is off for the logger (`--log-level warning`) a request costs one
level check.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger("batchyard.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Query parameters whose values are credentials: a SAS signature and the usual names of tokens and keys.
_SECRET_VALUE = re.compile(
    r"(?i)((?:^|&)(?:sig|signature|token|access_token|key|password|secret)=)[^&]*",
)
_LONGEST_ID = 128  # a client-request-id is the client's; it is cut to this length in the log


def redact_query(query: str) -> str:
    return _SECRET_VALUE.sub(r"\1REDACTED", query)


class AccessLog:
    """ASGI middleware: logs every HTTP request once it is answered (WebSockets and lifespan pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        request_id = "-"

        async def noting_send(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"request-id":
                        request_id = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except Exception:
            status = status or 500
            raise
        finally:
            client_request_id = "-"
            for name, value in scope["headers"]:
                if name == b"client-request-id":
                    client_request_id = value[:_LONGEST_ID].decode("latin-1")
            # raw_path is as sent (percent-encoded: no line breaks); h11 refuses control characters in headers
            target = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string", b"")
            log.info(
                "%s %s%s %s %.1fms client-request-id=%s request-id=%s",
                scope["method"],
                target.decode("latin-1"),
                "?" + redact_query(query.decode("latin-1")) if query else "",
                status or "-",
                (time.perf_counter() - start) * 1000,
                client_request_id,
                request_id,
            )
