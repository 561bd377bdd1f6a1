"""The node agent: connects out to the service, runs what it is told, reports results, serves files.

It keeps results until the service acknowledges them, so a dropped connection or a restarted
service loses nothing: on reconnect the agent says which runs it still has and resends results.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

import websockets

from batchyard.agent import files, identity, node_layout, proctree
from batchyard.agent.accounts import UidAllocator
from batchyard.agent.execution import Execution, NodeContext
from batchyard.agent.metrics import MetricsReporter
from batchyard.agent.node_services import NodeServices
from batchyard.agent.runner import DEFAULT_KILL_GRACE, RunningProcess
from batchyard.agent.task_users import TaskUsers
from batchyard.protocol import messages

log = logging.getLogger("batchyard.agent")

CLEANUP_WAIT = 30.0  # seconds a removal waits for the runs in the directory to end

RECONNECT_DELAY = 0.5

LEFTOVER_WAIT = 10.0  # seconds a starting agent waits for an earlier agent's processes to die
LEASE_CHECK = 0.5  # seconds between checks of the lease while cut off from the service
# A batch system ends an allocation by signalling every process in it at once (Slurm sends SIGTERM to all of
# a job's processes): a run that ended by a signal is reported this much later, so that the agent's own stop
# comes first and the run is lost (requeued) rather than failed.
SIGNALLED_RESULT_DELAY = 0.5

# The service takes WebSocket messages of up to 16 MiB (uvicorn's limit) and drops the connection, and
# with it the node, on a bigger one: queued messages travel in frames of at most MAX_FRAME bytes, and a
# reply that would not fit is replaced by an error.
MAX_FRAME = 8 * 1024 * 1024


class Agent:
    def __init__(
        self,
        service_urls: Sequence[str],
        node_id: str,
        root: Path,
        token: str,
        orphan_timeout: float,
        login_address: str = "127.0.0.1",
    ) -> None:
        # The service's instances (failover: one is active, the others refuse agents); tried in turn.
        self.service_urls = [url.rstrip("/") for url in service_urls]
        self._url_index = 0
        self.node_id = node_id
        self.root = root.resolve()
        self.token = token
        self.orphan_timeout = orphan_timeout
        self.boot = uuid.uuid4().hex
        uids = UidAllocator(node_id)  # node users' and task users' uids never meet
        self.context = NodeContext(root=self.root, node_id=node_id, users=TaskUsers(self.root, uids))
        self.runs: dict[str, Execution] = {}
        self.refused: str | None = None  # why the service refused this agent (another protocol version)
        self.boot_again: str | None = None  # "keep" or "wipe" (the node root) when the service asked
        # Multi-instance coordination commands that exited, by task directory: their sessions live on.
        self.lingering: dict[str, list[RunningProcess]] = {}
        self._endings: set[asyncio.Task[None]] = set()
        self.unacked: dict[str, messages.Done] = {}
        self._outgoing: list[dict[str, Any]] = []
        self._ws: Any = None
        self._flush_scheduled = False
        self._stopping = asyncio.Event()
        self._disconnected_at = time.monotonic()
        # Agents on other hosts (the welcome says): seconds cut off from the service before every run ends.
        self.lease: float | None = None
        self._fenced: set[str] = set()  # runs ended by the lease: the service requeues them, so no result
        # Heartbeats, SSH (on login_address), certificates.
        self.services = NodeServices(self.root, self.context, self._send, login_address, uids)
        self.metrics = MetricsReporter(self.root, self._send)  # resource use for autoscale
        self.files = files.NodeFiles(self.root)  # the service's file requests

    # --- connection -----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        node_layout.make(self.root)
        await self._end_leftovers()
        connector = asyncio.create_task(self._connect_loop())
        heartbeat = asyncio.create_task(self.services.heartbeat_loop(self.runs))
        reporter = asyncio.create_task(self.metrics.run())
        lease = asyncio.create_task(self._keep_lease())
        await self._stopping.wait()
        connector.cancel()
        heartbeat.cancel()
        reporter.cancel()
        lease.cancel()
        await self._end_all_runs()
        await self.services.close()
        self.files.close_all()

    async def _end_leftovers(self) -> None:
        """End what an earlier agent of this node left running (it died with its runs in their own
        sessions): the service requeues those runs, and a task runs at most once at a time."""
        leftovers = proctree.node_processes(str(self.root))
        if leftovers:
            log.warning("ending %d processes an earlier agent of this node left running", len(leftovers))
            await proctree.kill_and_wait(leftovers, LEFTOVER_WAIT)
        if containers := await self.context.podman.remove_leftovers(self.root):
            log.warning("removed %d containers an earlier agent of this node left", containers)

    async def _keep_lease(self) -> None:
        """Cut off from the service for the lease it gave, end every run: the service cannot reach this host
        to end them, and requeues them once the lease has surely passed (protocol.messages.lease_expiry)."""
        while True:
            await asyncio.sleep(LEASE_CHECK)
            if self.lease is None or self._ws is not None or not self.runs:
                continue
            if time.monotonic() - self._disconnected_at < self.lease:
                continue
            fenced = list(self.runs)
            log.warning("cut off from the service for %.0f s: ending %d runs", self.lease, len(fenced))
            self._fenced.update(fenced)
            for execution in self.runs.values():
                execution.kill()
            await proctree.kill_and_wait(proctree.node_processes(str(self.root)), LEFTOVER_WAIT)
            for aid in fenced:
                self.runs.pop(aid, None)  # the next hello does not list them: the service knows them lost

    def _next_url(self) -> str:
        """The WebSocket URL of the service instance to try now (the next one after each failed attempt)."""
        base = self.service_urls[self._url_index % len(self.service_urls)]
        return base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + messages.AGENT_PATH

    async def _connect_loop(self) -> None:
        headers = {messages.NODE_HEADER: self.node_id, messages.TOKEN_HEADER: self.token}
        while not self._stopping.is_set():
            connected = False
            url = self._next_url()
            try:
                async with websockets.connect(
                    url,
                    additional_headers=headers,
                    max_size=None,
                    compression=None,
                    ping_interval=messages.AGENT_PING_INTERVAL,  # a silent cut is noticed, and the lease starts
                    ping_timeout=messages.AGENT_PING_TIMEOUT,
                    close_timeout=messages.AGENT_CLOSE_TIMEOUT,
                ) as ws:
                    connected = True
                    self._ws = ws
                    hello: messages.Hello = {
                        "t": "hello",
                        "node": self.node_id,
                        "boot": self.boot,
                        "pid": os.getpid(),
                        "version": messages.PROTOCOL_VERSION,
                        "running": list(self.runs),
                        "done": list(self.unacked.values()),
                    }
                    await ws.send(messages.encode(hello))
                    async for data in ws:
                        for message in messages.decode_frame(data):
                            self._handle(message)
            except websockets.ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == messages.AGENT_REFUSED:
                    log.error("the service refused this agent: %s", exc.rcvd.reason)
                    self.refused = exc.rcvd.reason
                    self._stopping.set()
                    return
                log.debug("connection to the service closed: %s", exc)
            except (OSError, websockets.WebSocketException) as exc:
                log.debug("connection to the service failed: %s", exc)
            self._ws = None
            # A lost or refused connection: the instance may have died or be a standby; try the next one.
            self._url_index += 1
            if connected:
                self._disconnected_at = time.monotonic()
            if time.monotonic() - self._disconnected_at > self.orphan_timeout:
                log.error("the service has been unreachable for %.0f s: stopping", self.orphan_timeout)
                self._stopping.set()
                return
            await asyncio.sleep(RECONNECT_DELAY)

    def _send(self, message: dict[str, Any]) -> None:
        self._outgoing.append(message)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send queued messages; results of one loop turn travel as one message."""
        self._flush_scheduled = False
        pending, self._outgoing = self._outgoing, []
        results = [m for m in pending if m["t"] == "result"]
        others = [m for m in pending if m["t"] != "result"]
        batch = others + ([{"t": "done", "results": [r["result"] for r in results]}] if results else [])
        ws = self._ws
        if ws is None or not batch:
            return  # results stay in `unacked` and go with the next hello
        groups: list[list[bytes]] = [[]]
        size = 0
        for frame in (messages.encode(message) for message in batch):
            if groups[-1] and size + len(frame) > MAX_FRAME:
                groups.append([])
                size = 0
            groups[-1].append(frame)
            size += len(frame) + 1
        data = [group[0] if len(group) == 1 else messages.encode_batch(group) for group in groups]
        asyncio.get_running_loop().create_task(self._write(ws, data))

    async def _write(self, ws: Any, data: list[bytes]) -> None:
        try:
            for frame in data:
                await ws.send(frame)
        except (OSError, websockets.WebSocketException):
            pass

    # --- messages -------------------------------------------------------------------------------

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind == "welcome":
            self.context.welcome(message)
            self.lease = message.get("lease")
            # Multi-instance tasks that ended while we were away (or before a service restart): their
            # `endtask` never came, so what their instances left running here ends now.
            for directory in set(self.lingering) - set(message.get("taskDirs") or []):
                self._end_task(directory)
        elif kind == "run":
            for run in message["runs"]:
                self._start_run(run)
        elif kind == "kill":
            for aid in message["aids"]:
                execution = self.runs.get(aid)
                if execution is not None:
                    execution.kill()
        elif kind == "ack":
            for aid in message["aids"]:
                self.unacked.pop(aid, None)
        elif kind == "rpc":
            asyncio.get_running_loop().create_task(self._rpc(message))
        elif kind == "restart":  # reboot or reimage of a node on another host: this agent boots again
            self.boot_again = "wipe" if message.get("wipe") else "keep"
            self._stopping.set()
        elif kind == "endtask":
            for directory in message["dirs"]:
                self._end_task(directory)
        elif kind == "cleanup":
            for path in message["paths"]:
                asyncio.get_running_loop().create_task(self._cleanup(path))
        elif kind == "shutdown":
            self._stopping.set()
        elif kind == "sample":
            self.metrics.configure(message)
        else:
            self.services.handle(message)

    def _start_run(self, run: dict[str, Any]) -> None:
        aid = run["aid"]
        if aid in self.runs:
            return
        if run.get("session") == "linger" and run["dir"] in self.lingering:
            self._end_task(run["dir"])  # left by an earlier try whose end never reached us (a service restart)
        execution = Execution(self.context, run)
        self.runs[aid] = execution
        asyncio.get_running_loop().create_task(self._execute(aid, execution))

    async def _execute(self, aid: str, execution: Execution) -> None:
        try:
            result = await execution.run()
        except Exception as exc:  # a bug here must still report, or the task would hang
            log.exception("run %s failed", aid)
            result = execution.internal_failure(str(exc))
        if _ended_by_signal(result.get("exit")) and not execution.killed and not self._stopping.is_set():
            await asyncio.sleep(SIGNALLED_RESULT_DELAY)
        self.runs.pop(aid, None)
        if self._stopping.is_set():
            return  # the node is going away: the run is lost, not finished
        if aid in self._fenced:
            self._fenced.discard(aid)
            return  # ended by the lease: lost, not finished
        if execution.process is not None and execution.process.lingering and not execution.killed:
            self.lingering.setdefault(execution.run_spec["dir"], []).append(execution.process)
        result["aid"] = aid
        self.unacked[aid] = cast(messages.Done, result)  # Execution's results are Done but for the aid
        self._send({"t": "result", "result": result})

    async def _rpc(self, message: dict[str, Any]) -> None:
        """Answer one request of the service; every request gets an answer, or the service waits in vain."""
        try:
            reply = await self.services.rpc(message)
            if reply is None:
                reply = await asyncio.to_thread(self.files.handle, message)
            if len(messages.encode(reply)) > MAX_FRAME - 100:
                reply = {"ok": False, "code": "ResponseTooLarge", "message": "The answer is too large to send."}
        except Exception:  # a bug, or an answer that cannot be encoded (a file name that is not UTF-8)
            log.exception("request %s failed", message.get("op"))
            reply = {"ok": False, "code": "InternalServerError", "message": "The request failed on the node."}
        reply.update({"t": "reply", "rid": message["rid"]})
        self._send(reply)

    async def _cleanup(self, relative: str) -> None:
        try:
            target = files.resolve(self.root, relative)
        except files.PathError:
            return
        # Runs in there were just told to end (a deleted task or job): remove the files once they have.
        ending = [aid for aid, execution in self.runs.items() if execution.task_dir.is_relative_to(target)]
        deadline = time.monotonic() + CLEANUP_WAIT
        while any(aid in self.runs for aid in ending) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if any(execution.task_dir.is_relative_to(target) for execution in self.runs.values()):
            return  # still running, or a new run started there meanwhile: its files stay
        await asyncio.to_thread(shutil.rmtree, target, True)

    def _end_task(self, directory: str) -> None:
        """A multi-instance task ended: end its runs here, their sessions and what escaped them."""
        leaders = self.lingering.pop(directory, [])
        for execution in self.runs.values():
            if execution.run_spec["dir"] == directory:
                execution.kill()
                if execution.process is not None and execution.process.lingering:
                    leaders.append(execution.process)  # exited just now, its result not sent yet
        sessions = {leader.pid for leader in leaders}
        # Chosen now, before a later run in the same task directory can start a process.
        targets = proctree.find(sessions, f"AZ_BATCH_TASK_DIR={self.root / directory}".encode())
        ending = asyncio.get_running_loop().create_task(self._end_processes(targets, sessions, leaders))
        self._endings.add(ending)
        ending.add_done_callback(self._endings.discard)

    async def _end_processes(self, targets: set[int], sessions: set[int], leaders: list[RunningProcess]) -> None:
        await proctree.end(targets, DEFAULT_KILL_GRACE)
        if sessions:  # started meanwhile: the zombie leaders still hold the session ids
            proctree.kill_now(proctree.find(sessions))
        for leader in leaders:
            leader.release()

    async def _end_all_runs(self) -> None:
        for directory in list(self.lingering):
            self._end_task(directory)
        for execution in list(self.runs.values()):
            execution.kill()
        deadline = time.monotonic() + 10
        while (self.runs or self._endings) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


def _ended_by_signal(exit_code: object) -> bool:
    """-N for a process killed by signal N, 128+N for a shell whose command was."""
    return isinstance(exit_code, int) and (exit_code < 0 or 128 < exit_code < 160)


def run_agent(
    service_urls: Sequence[str],
    root: Path,
    orphan_timeout: float,
    node_id: str | None = None,
    pool: str | None = None,
    join_token: str | None = None,
    token: str | None = None,
    login_address: str = "127.0.0.1",
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s agent: %(message)s")
    if problem := node_layout.unreachable(root):
        log.error("%s", problem)
        return 2
    token = token or os.environ.pop("BATCHYARD_NODE_TOKEN", "")
    join_token = join_token or os.environ.pop("BATCHYARD_JOIN_TOKEN", None)
    if node_id is None:
        if not pool or not (join_token or (root / identity.IDENTITY_FILE).exists()):
            log.error("an agent needs --node-id (local provider) or --pool with a join token")
            return 2
        try:
            node_id, token = identity.join_any(service_urls, root, pool, join_token)
        except identity.JoinError as exc:
            log.error("%s", exc)
            return 2
    agent = Agent(service_urls, node_id, root, token, orphan_timeout, login_address)
    asyncio.run(agent.run())
    if agent.refused is not None:
        return 3
    if agent.boot_again is not None:
        _boot_again(root, wipe=agent.boot_again == "wipe")
    return 0


def _boot_again(root: Path, wipe: bool) -> NoReturn:
    """Start this agent again in place (same pid, same arguments): the boot of a node on another host.

    A reimage wipes the node root first, but for the node's identity: it stays the same node.
    """
    if wipe:
        for entry in root.iterdir():
            if entry.name == identity.IDENTITY_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    log.info("booting again%s", " on a wiped root" if wipe else "")
    logging.shutdown()
    os.execv(sys.executable, sys.orig_argv)
