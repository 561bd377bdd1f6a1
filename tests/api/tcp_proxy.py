"""A TCP proxy that can cut the link the way a network partition does: no bytes pass and no connection is
closed, so each side finds out only by its own timeouts."""

from __future__ import annotations

import asyncio
import threading


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._flowing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> int:
        """Listen on a free local port (returned) and forward it to the target."""
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = server.sockets[0].getsockname()[1]
        return self.port

    def cut(self) -> None:
        """A partition: bytes stop in both directions; connections, old and new, stay open and silent."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def heal(self) -> None:
        """The partition ends: connections held through it are dropped (as a real network's would have
        timed out), and new ones flow."""

        def heal() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
            self._flowing.set()

        self._loop.call_soon_threadsafe(heal)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _close(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self) -> asyncio.AbstractServer:
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        await self._flowing.wait()  # a connection made during a partition never reaches the other side
        try:
            target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.add(target_writer)
        await asyncio.gather(
            self._pump(client_reader, target_writer), self._pump(target_reader, client_writer), return_exceptions=True
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                if writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
