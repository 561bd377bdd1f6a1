"""A node's agent session: hello, boot (packages, start task), resuming after a reconnect, and results."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from batchyard.protocol import messages
from batchyard.service.clock import iso
from batchyard.service.documents import TaskDocument
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import (
    NodeBooting,
    NodeFreed,
    NodeGreeted,
    RunLost,
    SpecialTaskEnded,
    TaskRunFinished,
    finishes_runs,
    handles_message,
)
from batchyard.service.engine.nodes import START_TASK_RUN_ID, NodeOps, failure_of
from batchyard.service.engine.packages import packages_failed, send_pool_packages
from batchyard.service.engine.records import NodeRecord, NodeRun, PoolRecord, RunKind
from batchyard.service.engine.run_builder import (
    build_run,
    container_of,
    container_prefail,
    merge_environment,
    pool_accounts,
)
from batchyard.service.models import catalog
from batchyard.service.ports import AgentChannel

log = logging.getLogger("batchyard.nodes")


class AgentSessionOps(Concern):
    def __init__(self, core: EngineCore, node_ops: NodeOps) -> None:
        super().__init__(core)
        self.node_ops = node_ops

    # --- agent sessions -------------------------------------------------------------------------

    async def agent_session(self, session: AgentChannel) -> None:
        """Serve one connected agent until it goes away."""
        node = self.nodes.get(session.node_id)
        if node is None:
            return
        if node.doc["state"] == "preempted":  # its VM is gone (engine/preemption.py): this agent must end
            session.close(messages.AGENT_REFUSED, "the node was preempted")
            return
        if node.session is not None:
            node.session.close()
        node.session = session
        node.greeted = False  # nothing is placed on it before its hello says what it still runs
        node.lost_at = None
        node.heard_at = time.monotonic()
        try:
            await session.serve(self._on_agent_message)
        finally:
            if node.session is session:
                node.session = None
                node.lost_at = time.monotonic()
                if node.id in self.nodes and node.doc["state"] not in ("leavingpool",):
                    with self.store.transaction():
                        self.node_lost(node)

    def node_lost(self, node: NodeRecord) -> None:
        """The connection dropped: `unknown` until it comes back or the grace time runs out."""
        if node.doc["state"] in ("idle", "running", "waitingforstarttask", "starting", "offline"):
            self.core.set_node_state(node, "unknown", self.core.now())

    def _on_agent_message(self, session: AgentChannel, message: dict[str, Any]) -> None:
        node = self.nodes.get(session.node_id)
        if node is None or node.session is not session:
            return
        node.heard_at = time.monotonic()  # any message, heartbeats too, shows the agent is alive
        handler = self.core.reactions.message_handler(message["t"])
        if handler is None:
            return
        with self.store.transaction():
            handler(node, message)
            self.core.run_pending_round()

    @handles_message("hello")
    def _hello_message(self, node: NodeRecord, message: dict[str, Any]) -> None:
        version = message.get("version")
        if version != messages.PROTOCOL_VERSION:
            reason = (
                f"this agent speaks protocol version {version or 0}, the service {messages.PROTOCOL_VERSION}: "
                "run the agent of the service's release"
            )
            log.warning("node %s: agent refused: %s", node.id, reason)
            assert node.session is not None
            node.session.close(messages.AGENT_REFUSED, reason)
            return
        self._on_hello(node, message)

    @handles_message("done")
    def _done_message(self, node: NodeRecord, message: dict[str, Any]) -> None:
        self._on_results(node, message.get("results", []))

    def _on_hello(self, node: NodeRecord, message: dict[str, Any]) -> None:
        node.greeting = True  # its runs are being matched with what the agent still has
        try:
            self._greet(node, message)
        finally:
            node.greeting = False

    def _greet(self, node: NodeRecord, message: dict[str, Any]) -> None:
        now = self.core.now()
        pool = self.pools.get(node.pool_key)
        session = node.session
        assert session is not None
        provider = self.core.provider_of(node)
        agent_sku = ((pool.doc.get("virtualMachineConfiguration") or {}) if pool else {}).get("nodeAgentSKUId")
        welcome: messages.Welcome = {
            "t": "welcome",
            "node": node.id,
            "pool": pool.doc["id"] if pool else node.pool_key,
            "account": self.core.account_name(node.pool_key),
            "accountUrl": self.core.account_url(node.pool_key),
            "dedicated": node.dedicated,
            "taskDirs": sorted(node.gang_dirs),  # the agent ends what other ones left behind
            "userAccounts": pool_accounts(pool.doc if pool else None),
            "commands": catalog.image_commands(agent_sku),
            "osType": "windows" if catalog.is_windows_agent_sku(agent_sku) else "linux",
        }
        if not provider.starts_agents:  # out of the service's reach: it ends its runs when cut off
            welcome["lease"] = self.settings.timing.agent_lease
        session.send(welcome)
        provider.agent_connected(node.id, message)
        self._on_results(node, message.get("done", []))
        agent_running = set(message.get("running", []))
        # Runs the agent no longer has (it restarted) go back to the queue; runs we do not know end.
        for run_id, run in list(node.runs.items()):
            if run_id not in agent_running:
                node.runs.pop(run_id)
                node.slots_used -= run.slots
                if run.occupies_node:
                    self.core.emit(RunLost(node, run, now))
        unknown = [run_id for run_id in agent_running if run_id not in node.runs]
        if unknown:
            session.send({"t": "kill", "aids": unknown})
        fresh_boot = message.get("boot") != node.private.boot
        if fresh_boot:
            node.private.boot = message.get("boot")
            node.doc["lastBootTime"] = iso(now)
            node.doc.pop("startTaskInfo", None)
            node.doc.pop("errors", None)
            self.core.emit(NodeBooting(node, pool, now))
            self._boot_node(node, pool, now)
        else:
            self._resume_node(node, now)
        node.greeted = True
        self.core.save_node(node)
        self.core.kick()
        self.core.emit(NodeGreeted(node, message, fresh_boot))

    def _boot_node(self, node: NodeRecord, pool: PoolRecord | None, now: datetime) -> None:
        if node.doc["state"] == "leavingpool":
            return
        if node.doc["state"] != "starting":
            self.core.set_node_state(node, "starting", now)
        if send_pool_packages(self.resources, node, pool):
            return  # the start task follows in _on_packages_done
        self._start_node(node, pool, now)
        self.node_ops.maybe_offline(node, now)

    @finishes_runs(RunKind.PACKAGES)
    def _packages_finished(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        self._on_packages_done(node, result)

    @finishes_runs(RunKind.START)
    def _start_task_finished(self, node: NodeRecord, run: NodeRun, result: dict[str, Any], now: datetime) -> None:
        self._on_start_task_done(node, result)

    def _on_packages_done(self, node: NodeRecord, result: dict[str, Any]) -> None:
        now = self.core.now()
        if packages_failed(node, result):
            self.core.set_node_state(node, "unusable", now)
        elif node.doc["state"] == "starting":
            self._start_node(node, self.pools.get(node.pool_key), now)
            self.core.kick()
        self.core.save_node(node)

    def _start_node(self, node: NodeRecord, pool: PoolRecord | None, now: datetime) -> None:
        start_task = (pool.doc.get("startTask") if pool else None) or None
        if start_task:
            node.doc["startTask"] = start_task
            self._run_start_task(node, start_task, retry=0, now=now)
            wait = start_task.get("waitForSuccess", True)
            self.core.set_node_state(node, "waitingforstarttask" if wait else "idle", now)
        else:
            self.core.set_node_state(node, "idle", now)

    def _resume_node(self, node: NodeRecord, now: datetime) -> None:
        """A known agent reconnected (network blip or service restart): pick up where it was."""
        if node.doc["state"] in ("unknown", "unusable", "creating", "starting"):
            info = node.doc.get("startTaskInfo") or {}
            start_task = node.doc.get("startTask")
            if START_TASK_RUN_ID in node.runs and start_task and start_task.get("waitForSuccess", True):
                target = "waitingforstarttask"
            elif info.get("result") == "failure" and start_task and start_task.get("waitForSuccess", True):
                target = "starttaskfailed"
            elif node.doc.get("schedulingState") == "disabled":
                target = "offline"
            else:
                target = "running" if any(run.occupies_node for run in node.runs.values()) else "idle"
            self.core.set_node_state(node, target, now)

    # --- start task -----------------------------------------------------------------------------

    def _run_start_task(self, node: NodeRecord, start_task: dict[str, Any], retry: int, now: datetime) -> None:
        info = node.doc.get("startTaskInfo") or {}
        info.update({"state": "running", "startTime": iso(now), "retryCount": retry})
        for key in ("endTime", "exitCode", "result", "failureInfo", "containerInfo"):
            info.pop(key, None)
        if retry:
            info["lastRetryTime"] = iso(now)
        node.doc["startTaskInfo"] = info
        node.runs[START_TASK_RUN_ID] = NodeRun("", "", 0, START_TASK_RUN_ID, RunKind.START)
        assert node.session is not None
        pool = self.pools.get(node.pool_key)
        settings = start_task.get("containerSettings")
        prefail = container_prefail(settings, pool.doc if pool else None, required=False)
        run = build_run(
            RunKind.START,
            START_TASK_RUN_ID,
            "startup",
            start_task["commandLine"],
            merge_environment(start_task.get("environmentSettings")),
            files=self.resources.resolve_files(start_task.get("resourceFiles")),
            retry=retry,
            identity=start_task.get("userIdentity"),
            container=container_of(settings, pool.doc if pool else None),
        )
        if prefail is not None:
            run["prefail"] = prefail
        node.session.send({"t": "run", "runs": [run]})

    def _on_start_task_done(self, node: NodeRecord, result: dict[str, Any]) -> None:
        now = self.core.now()
        start_task = node.doc.get("startTask") or {}
        info = node.doc.setdefault("startTaskInfo", {"retryCount": 0, "startTime": iso(now)})
        info["state"] = "completed"
        info["startTime"] = result.get("start") or info.get("startTime")
        info["endTime"] = result.get("end") or iso(now)
        if result.get("exit") is not None:
            info["exitCode"] = result["exit"]
        if result.get("container"):
            info["containerInfo"] = result["container"]
        failure = failure_of(result)
        info["result"] = "failure" if failure else "success"
        if failure:
            info["failureInfo"] = failure
        else:
            info.pop("failureInfo", None)
        self.core.emit(SpecialTaskEnded("start", "starttask", None, node, dict(info), now))
        wait = start_task.get("waitForSuccess", True)
        if failure:
            limit = int(start_task.get("maxTaskRetryCount", 0))
            retry = int(info.get("retryCount", 0))
            if (limit == -1 or retry < limit) and node.session is not None:
                self._run_start_task(node, start_task, retry + 1, now)
            elif wait and node.doc["state"] == "waitingforstarttask":
                node.doc["errors"] = [
                    {
                        "code": "StartTaskFailed",
                        "message": "The start task failed on the compute node.",
                        "errorDetails": [{"name": "ExitCode", "value": str(result.get("exit"))}]
                        + [{"name": "Message", "value": failure.get("message", "")}],
                    }
                ]
                self.core.set_node_state(node, "starttaskfailed", now)
        elif node.doc["state"] == "waitingforstarttask":
            self.core.set_node_state(node, "idle", now)
            self.core.kick()
        self.node_ops.maybe_offline(node, now)
        self.core.save_node(node)

    # --- results --------------------------------------------------------------------------------

    def _task_documents(self, node: NodeRecord, results: list[dict[str, Any]]) -> dict[tuple[str, str], TaskDocument]:
        """The stored documents of the tasks whose runs these results end (the runs `TaskRunFinished` tells),
        read with one query per job."""
        keys_by_job: dict[str, list[str]] = {}
        for result in results:
            run = node.runs.get(str(result.get("aid")))
            if run is not None and self.core.reactions.run_finisher(run.kind) is None:
                keys_by_job.setdefault(run.job_key, []).append(run.task_key)
        return {
            (job_key, task_key): doc
            for job_key, keys in keys_by_job.items()
            for task_key, doc in self.store.get_tasks(job_key, keys).items()
        }

    def _on_results(self, node: NodeRecord, results: list[dict[str, Any]]) -> None:
        if not results:
            return
        now = self.core.now()
        docs = self._task_documents(node, results)
        for result in results:
            run_id = str(result.get("aid"))
            run = node.runs.pop(run_id, None)
            if run is None:
                continue
            node.slots_used -= run.slots
            finisher = self.core.reactions.run_finisher(run.kind)
            if finisher is not None:
                finisher(node, run, result, now)
            else:
                self.core.emit(TaskRunFinished(node, run, result, now, docs.get((run.job_key, run.task_key))))
        self.node_ops.mark_node_free(node, now)
        node.dirty = True  # its counters changed; saved by housekeeping or the next state change
        if node.session is not None:
            node.session.send({"t": "ack", "aids": [str(result.get("aid")) for result in results]})
        self.core.emit(NodeFreed(node, now))
        self.core.kick()
