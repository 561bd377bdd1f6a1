"""What the agent does for node operations: heartbeats, health, users and SSH, certificates, log upload.

Messages from the service (in order on the one WebSocket, so certificates are in place before the
start task's `run`):
  users   {users: [{name, admin, ttl, pw: {salt, hash}|null, key|null}]}   the node's accounts
  certs   {certs: [{thumbprint, algorithm, cert, key|null}]}             the pool's certificates
  config  {minFreeDiskMb}                                                  health thresholds
rpc ops:
  ssh         -> {ok, address, port}                      start the SSH server if needed
  uploadlogs  {container, dir, start, end} -> {ok, count}  the agent's logs to send; PUT afterwards
To the service: heartbeat {} every HEARTBEAT_INTERVAL, health {errors} every HEALTH_INTERVAL,
logsuploaded {dir, ok, message?} when an upload ended (agent/service_logs.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchyard.agent import health, service_logs
from batchyard.agent.accounts import NodeAccounts, UidAllocator
from batchyard.agent.execution import Execution, NodeContext
from batchyard.agent.ssh import NodeSshServer

log = logging.getLogger("batchyard.agent.services")

HEARTBEAT_INTERVAL = 1.0
HEALTH_EVERY = 3  # heartbeats between health checks


class NodeServices:
    def __init__(
        self,
        root: Path,
        context: NodeContext,
        send: Callable[[dict[str, Any]], None],
        login_address: str,
        uids: UidAllocator | None = None,
    ) -> None:
        self.root = root
        self.context = context
        self.send = send
        accounts = NodeAccounts(context.node_id, root, lambda: context.certificates, uids)
        self.ssh = NodeSshServer(root, accounts, context.node_env, host=login_address)
        self.min_free_mb: float | None = None
        self._uploads: set[asyncio.Task[None]] = set()  # log uploads still running (kept from collection)

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind == "users":
            self.ssh.set_users(message.get("users") or [])
        elif kind == "certs":
            self.context.certificates = list(message.get("certs") or [])
        elif kind == "config":
            self.min_free_mb = float(message.get("minFreeDiskMb") or 0) or None

    async def rpc(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The reply to one of our rpc ops; None for ops that are not ours (file operations)."""
        op = message.get("op")
        if op == "ssh":
            try:
                port = await self.ssh.ensure_started()
            except OSError as exc:
                return {"ok": False, "message": f"the SSH server could not start: {exc}"}
            return {"ok": True, "address": self.ssh.host, "port": port}
        if op == "uploadlogs":
            return await self._upload_logs(message["container"], message["dir"], message["start"])
        return None

    async def _upload_logs(self, container: str, directory: str, start: float) -> dict[str, Any]:
        """Answer with the number of files at once; upload them in the background."""
        problem = service_logs.container_url_problem(container)
        if problem is not None:
            return {"ok": False, "message": problem}
        files = await asyncio.to_thread(service_logs.choose_logs, self.root, start)
        upload = asyncio.get_running_loop().create_task(self._upload_then_report(files, container, directory))
        self._uploads.add(upload)
        upload.add_done_callback(self._uploads.discard)
        return {"ok": True, "count": len(files)}

    async def _upload_then_report(self, files: list[Path], container: str, directory: str) -> None:
        result = await asyncio.to_thread(service_logs.put_logs, files, container, directory)
        self.send({"t": "logsuploaded", "dir": directory, **result})

    async def heartbeat_loop(self, runs: Mapping[str, Execution]) -> None:
        log.info("agent of node %s running in %s", self.context.node_id, self.root)
        beats = 0
        reported: list[str] = []
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            self.send({"t": "heartbeat"})
            beats += 1
            if beats % HEALTH_EVERY == 0:
                dirs = [
                    (f"{run.run_spec.get('job')}/{run.run_spec.get('task')}", run.task_dir)
                    for run in list(runs.values())
                    if run.run_spec.get("kind") == "task"
                ]
                errors = await asyncio.to_thread(health.check, self.root, dirs, self.min_free_mb)
                self.send({"t": "health", "errors": errors})
                codes = [error["code"] for error in errors]
                if codes != reported:  # the node's own log says when its health changed
                    log.warning("node health: %s", ", ".join(codes) or "ok")
                    reported = codes

    async def close(self) -> None:
        await self.ssh.close()
