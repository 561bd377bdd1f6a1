"""TCP port forwarding for the nodes' inbound endpoints: the service host's frontend port -> node:backend port.

The "load balancer" of inbound NAT pools (engine/endpoint_forwarding.py decides which ports go where). Each
frontend port is one asyncio server; each connection opens one to the node and copies both ways, passing
a half-close on (a client that sends and then shuts down its side still gets the answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass

from batchyard.service.endpoint_rules import SecurityRule, admits

log = logging.getLogger("batchyard.endpoints")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a frontend port goes (the node's address and backend port), and who may connect."""

    address: str
    port: int
    rules: tuple[SecurityRule, ...] = ()


Frontend = tuple[str, int]  # where a frontend listens: (host, port)


class TcpForwarder:
    def __init__(self) -> None:
        self._servers: dict[Frontend, tuple[Target, asyncio.Server]] = {}

    @property
    def ports(self) -> dict[Frontend, Target]:
        """The frontends that listen now, and where each one goes."""
        return {frontend: target for frontend, (target, _) in self._servers.items()}

    async def apply(self, wanted: dict[Frontend, Target]) -> list[tuple[Frontend, str]]:
        """Listen on exactly the wanted frontends; the frontends that could not listen, and why."""
        for frontend, (target, server) in list(self._servers.items()):
            if wanted.get(frontend) != target:
                del self._servers[frontend]
                server.close()
                await server.wait_closed()
        failed = []
        for frontend, target in wanted.items():
            if frontend in self._servers:
                continue
            host, port = frontend
            try:
                server = await asyncio.start_server(functools.partial(_forward, target=target), host, port)
            except OSError as exc:
                failed.append((frontend, str(exc)))
                continue
            self._servers[frontend] = (target, server)
        return failed

    async def close(self) -> None:
        await self.apply({})


async def _forward(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, target: Target) -> None:
    peer = client_writer.get_extra_info("peername") or ("", 0)
    if not admits(target.rules, str(peer[0]), int(peer[1])):
        client_writer.close()  # a network security group rule denies it
        return
    try:
        node_reader, node_writer = await asyncio.open_connection(target.address, target.port)
    except OSError as exc:
        log.info("inbound endpoint: %s:%s does not answer (%s)", target.address, target.port, exc)
        client_writer.close()
        return
    try:
        await asyncio.gather(_copy(client_reader, node_writer), _copy(node_reader, client_writer))
    finally:
        for writer in (node_writer, client_writer):
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()  # one side is gone: the other learns it from the closed connection
