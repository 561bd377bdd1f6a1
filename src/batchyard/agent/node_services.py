"""What the agent does for node operations: heartbeats, health, users and SSH, certificates, log upload.

Messages from the service (in order on the one WebSocket, so certificates are in place before the
start task's `run`):
  users   {users: [{name, admin, ttl, pw: {salt, hash}|null, key|null}]}   the node's accounts
  certs   {certs: [{thumbprint, algorithm, cert, key|null}]}             the pool's certificates
  config  {minFreeDiskMb}                                                  health thresholds
rpc ops:
  ssh         -> {ok, address, port}                      start the SSH server if needed
  uploadlogs  {container, dir, start, end} -> {ok, count}  PUT the agent's logs as block blobs
To the service: heartbeat {} every HEARTBEAT_INTERVAL, health {errors} every HEALTH_INTERVAL.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchyard.agent import health
from batchyard.agent.accounts import NodeAccounts, UidAllocator
from batchyard.agent.execution import Execution, NodeContext
from batchyard.agent.ssh import NodeSshServer

log = logging.getLogger("batchyard.agent.services")

HEARTBEAT_INTERVAL = 1.0
HEALTH_EVERY = 3  # heartbeats between health checks
LOG_FILES = ("agent.log",)  # under the node root: where the local provider sends the agent's output


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
            return await asyncio.to_thread(
                upload_logs, self.root, message["container"], message["dir"], message["start"], message.get("end")
            )
        return None

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


def upload_logs(root: Path, container_url: str, directory: str, start: float, end: float | None) -> dict[str, Any]:
    """PUT each log file written since `start` as a block blob under `directory` of the container.

    `end` does not narrow it: a file written after `end` may still hold messages of the window.
    """
    chosen = []
    for name in LOG_FILES:
        path = root / name
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        # Whole files, as the Batch service does: any file with a message in the window goes.
        if info.st_mtime >= start:
            chosen.append(path)
    parts = urllib.parse.urlsplit(container_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return {"ok": False, "message": "The container URL is not an http(s) URL."}
    for path in chosen:
        blob = urllib.parse.quote(f"{directory}/{path.name}")
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"{parts.path.rstrip('/')}/{blob}", parts.query, ""))
        data = path.read_bytes()
        request = urllib.request.Request(
            url,
            data=data,
            method="PUT",
            headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06", "Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            log.warning("uploading %s failed: %s", path.name, exc)
            return {"ok": False, "message": f"Uploading {path.name} to the container failed: {exc}"}
    return {"ok": True, "count": len(chosen)}
