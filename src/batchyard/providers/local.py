"""The local provider (`local`, the default): each compute node is an agent process on this host with its
own root directory, and a loopback address of its own in 127.1.0.0/16 (127.0.0.1 is the host's), so MPI
and other node-to-node traffic of multi-instance tasks can tell the nodes apart.

Agents run in their own session so that a killed service (kill -9) does not take running tasks
with it: on restart the agents reconnect and report. A clean service stop ends them. An agent that
cannot reach the service for `orphan_timeout` seconds ends itself and its tasks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from batchyard.agent import proctree
from batchyard.agent.podman import Podman
from batchyard.providers.base import NodeEvents, NodeLaunch

log = logging.getLogger("batchyard.local")

FENCE_WAIT = 10.0  # seconds to wait for a lost node's processes to die before its runs are requeued
_LOOPBACK_BASE = int(ipaddress.IPv4Address("127.1.0.1"))
_LOOPBACK_COUNT = 65534


class LocalProvider:
    name = "local"
    starts_agents = True

    def __init__(self, nodes_dir: Path, service_urls: str | Sequence[str], orphan_timeout: float = 600.0) -> None:
        self.nodes_dir = nodes_dir
        # This service's URL, then its failover peers' (the agent tries each in turn).
        self.service_urls = (service_urls,) if isinstance(service_urls, str) else tuple(service_urls)
        self.orphan_timeout = orphan_timeout
        self._agents: dict[str, _AgentProcess] = {}
        self._events: NodeEvents | None = None

    def bind(self, events: NodeEvents) -> None:
        self._events = events

    def node_root(self, node_id: str) -> Path:
        return self.nodes_dir / node_id

    def node_address(self, node_id: str, taken: set[str]) -> str:
        start = zlib.crc32(node_id.encode())
        for offset in range(_LOOPBACK_COUNT):
            address = str(ipaddress.IPv4Address(_LOOPBACK_BASE + (start + offset) % _LOOPBACK_COUNT))
            if address not in taken:
                return address
        return "127.0.0.1"

    async def start_node(self, launch: NodeLaunch) -> None:
        node_id, token = launch.node_id, launch.token
        old = self._agents.pop(node_id, None)
        if old is not None and old.alive():
            _kill_group(old.pid, signal.SIGKILL)
        root = self.node_root(node_id)
        root.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        args = [
            sys.executable,
            "-m",
            "batchyard.agent",
            *(part for url in self.service_urls for part in ("--service-url", url)),
            "--node-id",
            node_id,
            "--root",
            str(root),
            "--orphan-timeout",
            str(self.orphan_timeout),
            "--token-stdin",
        ]
        # The agent's log is for the service's user only (node users log in to this root).
        log_fd = os.open(root / "agent.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(log_fd, 0o600)
        with open(log_fd, "ab") as log_file:
            proc = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                close_fds=True,
            )
        # The token goes through a pipe: an environment variable would stay readable in /proc.
        assert proc.stdin is not None
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.close()
        self._agents[node_id] = _AgentProcess(proc.pid, proc)
        if self._events is not None:
            self._events.allocation_granted(node_id)  # nothing to wait for on this host

    def agent_connected(self, node_id: str, hello: Mapping[str, Any]) -> None:
        """Take charge of an agent that outlived a previous service process (it reconnected)."""
        pid = hello.get("pid")
        if not isinstance(pid, int) or (node_id in self._agents and self._agents[node_id].alive()):
            return
        try:
            process = psutil.Process(pid)
            if node_id in process.cmdline():
                self._agents[node_id] = _AgentProcess(pid, process=process)
        except psutil.Error:
            pass

    async def stop_node(self, node_id: str, wipe: bool) -> None:
        agent = self._agents.pop(node_id, None)
        if agent is not None:
            await agent.stop()
        await self._remove_containers(node_id)  # of an agent that died before it could
        if wipe:
            await asyncio.to_thread(shutil.rmtree, self.node_root(node_id), True)

    async def fence(self, node_id: str) -> None:
        root = str(self.node_root(node_id).resolve())
        pids = await asyncio.to_thread(proctree.node_processes, root)
        if pids:
            log.info("node %s lost: ending %d processes of its runs", node_id, len(pids))
            await proctree.kill_and_wait(pids, FENCE_WAIT)
        await self._remove_containers(node_id)

    async def _remove_containers(self, node_id: str) -> None:
        """Remove the containers of the node's runs (none unless it ever ran one: no podman call then)."""
        root = self.node_root(node_id).resolve()
        if removed := await Podman(root).remove_leftovers(root):
            log.info("node %s: removed %d containers of its runs", node_id, removed)

    def is_alive(self, node_id: str) -> bool:
        agent = self._agents.get(node_id)
        return agent is not None and agent.alive()

    async def stop_all(self) -> None:
        agents = list(self._agents.values())
        self._agents.clear()
        await asyncio.gather(*(agent.stop() for agent in agents))


class _AgentProcess:
    """An agent this provider started (a child) or adopted after a restart (not a child)."""

    def __init__(
        self, pid: int, popen: subprocess.Popen[bytes] | None = None, process: psutil.Process | None = None
    ) -> None:
        self.pid = pid
        self.popen = popen
        self.process = process

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        assert self.process is not None
        try:
            return self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM (the agent ends its tasks and exits), then SIGKILL for the whole group."""
        if self.alive():
            _kill_group(self.pid, signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            while self.alive() and loop.time() < deadline:
                await asyncio.sleep(0.05)
        if self.alive():
            _kill_group(self.pid, signal.SIGKILL)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
