"""The local provider: each compute node is an agent process on this host with its own root directory.

Agents run in their own session so that a killed service (kill -9) does not take running tasks
with it: on restart the agents reconnect and report. A clean service stop ends them. An agent that
cannot reach the service for `orphan_timeout` seconds ends itself and its tasks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("batchyard.local")


class LocalProvider:
    def __init__(self, nodes_dir: Path, service_url: str, orphan_timeout: float = 600.0) -> None:
        self.nodes_dir = nodes_dir
        self.service_url = service_url
        self.orphan_timeout = orphan_timeout
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def node_root(self, node_id: str) -> Path:
        return self.nodes_dir / node_id

    async def start_node(self, node_id: str, pool_id: str, token: str) -> None:
        old = self._procs.pop(node_id, None)
        if old is not None and old.poll() is None:
            _kill_group(old.pid, signal.SIGKILL)
        root = self.node_root(node_id)
        root.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        args = [
            sys.executable, "-m", "batchyard.agent",
            "--service-url", self.service_url,
            "--node-id", node_id,
            "--root", str(root),
            "--orphan-timeout", str(self.orphan_timeout),
            "--token-stdin",
        ]
        with open(root / "agent.log", "ab") as log_file:
            proc = subprocess.Popen(
                args, env=env, stdin=subprocess.PIPE, stdout=log_file, stderr=log_file,
                start_new_session=True, close_fds=True,
            )
        # The token goes through a pipe: an environment variable would stay readable in /proc.
        assert proc.stdin is not None
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.close()
        self._procs[node_id] = proc

    async def stop_node(self, node_id: str, wipe: bool) -> None:
        proc = self._procs.pop(node_id, None)
        if proc is not None:
            await _stop(proc)
        if wipe:
            await asyncio.to_thread(shutil.rmtree, self.node_root(node_id), True)

    def is_alive(self, node_id: str) -> bool:
        proc = self._procs.get(node_id)
        return proc is not None and proc.poll() is None

    async def stop_all(self) -> None:
        procs = list(self._procs.values())
        self._procs.clear()
        await asyncio.gather(*(_stop(proc) for proc in procs))


async def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM (the agent ends its tasks and exits), then SIGKILL for the whole group."""
    if proc.poll() is None:
        _kill_group(proc.pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
    _kill_group(proc.pid, signal.SIGKILL)
    proc.poll()


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
