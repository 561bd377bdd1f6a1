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


class TcpForwarder:
    def __init__(self, host: str) -> None:
        self.host = host  # where the frontend ports listen
        self._servers: dict[int, tuple[Target, asyncio.Server]] = {}

    @property
    def ports(self) -> dict[int, Target]:
        """The frontend ports that listen now, and where each one goes."""
        return {port: target for port, (target, _) in self._servers.items()}

    async def apply(self, wanted: dict[int, Target]) -> list[tuple[int, str]]:
        """Listen on exactly the wanted frontend ports; the ports that could not listen, and why."""
        for port, (target, server) in list(self._servers.items()):
            if wanted.get(port) != target:
                del self._servers[port]
                server.close()
                await server.wait_closed()
        failed = []
        for port, target in wanted.items():
            if port in self._servers:
                continue
            try:
                server = await asyncio.start_server(functools.partial(_forward, target=target), self.host, port)
            except OSError as exc:
                failed.append((port, str(exc)))
                continue
            self._servers[port] = (target, server)
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
