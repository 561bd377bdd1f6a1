"""The node gateway: one WebSocket session per connected agent; commands out, events in.

Outgoing messages are queued and flushed by a writer task, so the engine never awaits a socket
while it holds state; requests (file operations) wait on a future keyed by a request id.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from batchyard.protocol import messages
from batchyard.service.ports import AgentChannel, AgentGone

log = logging.getLogger("batchyard.gateway")

RPC_TIMEOUT = 30.0


class AgentSession:
    """The AgentChannel of one agent over its WebSocket."""

    def __init__(self, node_id: str, websocket: WebSocket) -> None:
        self.node_id = node_id
        self._ws = websocket
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._rids = itertools.count(1)
        self.closed = False
        self._close = (1000, "")  # WebSocket close code and reason

    def send(self, message: messages.ServiceMessage) -> None:
        self._enqueue(message)

    def _enqueue(self, message: Mapping[str, Any]) -> None:
        if not self.closed:
            self._outbox.put_nowait(messages.encode(message))

    async def request(self, message: dict[str, Any], timeout: float = RPC_TIMEOUT) -> dict[str, Any]:
        """An rpc (`op` and its fields, see agent/files.py and agent/node_services.py) and its reply."""
        if self.closed:
            raise AgentGone(self.node_id)
        rid = next(self._rids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self._enqueue({**message, "t": "rpc", "rid": rid})
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise AgentGone(self.node_id) from exc
        finally:
            self._pending.pop(rid, None)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self._close = (code, reason)
        self._outbox.put_nowait(None)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AgentGone(self.node_id))

    async def serve(self, on_message: Callable[[AgentChannel, dict[str, Any]], Awaitable[None] | None]) -> None:
        """Pump messages until the socket closes."""
        writer = asyncio.create_task(self._write_loop())
        try:
            while True:
                try:
                    data = await self._ws.receive_bytes()
                except (WebSocketDisconnect, RuntimeError):
                    return
                try:
                    received = messages.decode_frame(data)
                except ValueError:
                    log.warning("node %s sent an unreadable message", self.node_id)
                    continue
                for message in received:
                    if message["t"] == "reply":
                        future = self._pending.get(message.get("rid", -1))
                        if future is not None and not future.done():
                            future.set_result(message)
                        continue
                    result = on_message(self, message)
                    if result is not None:
                        await result
        finally:
            self.close()
            writer.cancel()

    async def _write_loop(self) -> None:
        try:
            while True:
                batch = [await self._outbox.get()]
                while not self._outbox.empty():  # everything queued this loop turn goes in one frame
                    batch.append(self._outbox.get_nowait())
                closing = None in batch
                frames = [data for data in batch if data is not None]
                if frames:
                    await self._ws.send_bytes(frames[0] if len(frames) == 1 else messages.encode_batch(frames))
                if closing:
                    await self._ws.close(*self._close)
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.closed = True
        except asyncio.CancelledError:
            pass
