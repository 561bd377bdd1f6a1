"""Compute node lifecycle: allocation, agent sessions, the start task, loss and removal."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from datetime import datetime
from typing import Any

from batchyard.protocol import messages
from batchyard.providers.base import NodeLaunch
from batchyard.service.clock import iso
from batchyard.service.engine.core import EngineBase
from batchyard.service.engine.events import (
    NodeBooting,
    NodeFreed,
    NodeGreeted,
    RunLost,
    TaskRunFinished,
    Tick,
    handles_message,
    reacts_to,
)
from batchyard.service.engine.packages import packages_failed, send_pool_packages
from batchyard.service.engine.records import NodeRecord, NodeRun, PoolRecord, RunKind
from batchyard.service.engine.run_builder import build_run, merge_environment
from batchyard.service.gateway import AgentSession

log = logging.getLogger("batchyard.nodes")

AGENT_VERSION = "1.0.0-batchyard"
START_TASK_RUN_ID = "start"


def new_node_id() -> str:
    return f"tvmps_{secrets.token_hex(16)}_d"


class NodeOps(EngineBase):
    # --- allocation -----------------------------------------------------------------------------

    def allocate_node(self, pool: PoolRecord, now: datetime) -> NodeRecord:
        node_id = new_node_id()
        doc: dict[str, Any] = {
            "id": node_id,
            "state": "creating",
            "schedulingState": "enabled",
            "stateTransitionTime": iso(now),
            "allocationTime": iso(now),
            "affinityId": f"TVM:{node_id}",
            "vmSize": pool.doc["vmSize"],
            "totalTasksRun": 0,
            "totalTasksSucceeded": 0,
            "isDedicated": True,
            "nodeAgentInfo": {"version": AGENT_VERSION, "lastUpdateTime": iso(now)},
            "virtualMachineInfo": {
                "imageReference": (pool.doc.get("virtualMachineConfiguration") or {}).get("imageReference", {})
            },
            "_pool": pool.key,
            "_seq": self.store.next_seq(),
        }
        provider = self.providers.get(self.providers.name_for_pool(pool.doc))
        doc["_provider"] = provider.name
        doc["ipAddress"] = provider.node_address(node_id, {str(n.doc.get("ipAddress")) for n in self.nodes.values()})
        node = NodeRecord(node_id, pool.key, doc["_seq"], doc)
        self.nodes[node_id] = node
        pool.node_ids.append(node_id)
        self.save_node(node)
        if provider.starts_agents:
            self.spawn(self.launch_agent(node))
        return node

    def node_launch(self, node: NodeRecord) -> NodeLaunch:
        pool = self.pools.get(node.pool_key)
        pool_doc = pool.doc if pool else {}
        settings = {
            str(item.get("name")): str(item.get("value", ""))
            for item in pool_doc.get("metadata") or []
            if str(item.get("name", "")).startswith("batchyard-")
        }
        return NodeLaunch(
            node_id=node.id,
            pool_id=pool_doc.get("id", node.pool_key),
            token=messages.node_token(self.node_secret, node.id),
            vm_size=str(node.doc.get("vmSize", "")),
            settings=settings,
        )

    async def launch_agent(self, node: NodeRecord) -> None:
        await self.provider_of(node).start_node(self.node_launch(node))

    # --- what providers report (providers.base.NodeEvents) ----------------------------------------

    def allocation_granted(self, node_id: str) -> None:
        node = self.nodes.get(node_id)
        if node is not None and node.doc["state"] == "creating":
            with self.store.transaction():
                self.set_node_state(node, "starting", self.now())

    def allocation_lost(self, node_id: str, preempted: bool) -> None:
        node = self.nodes.get(node_id)
        if node is None or node.leaving is not None or node.removing:
            return
        if node.session is not None:
            node.session.close()
        with self.store.transaction():
            if preempted:
                self._leave_with_runs_requeued(node, "preempted", None, self.now())
            else:
                self._make_unusable(node, self.now(), "NodeAllocationLost", "The node's allocation ended.")

    def node_token_ok(self, node_id: str, token: str) -> bool:
        return node_id in self.nodes and hmac.compare_digest(messages.node_token(self.node_secret, node_id), token)

    def join_token(self, pool_id: str) -> str:
        return messages.join_token(self.node_secret, pool_id)

    def claim_node(self, pool_id: str, token: str) -> tuple[str, str] | None:
        """Give an agent that presents the pool's join token one of the pool's unclaimed external nodes."""
        pool = self.pools.get(pool_id.lower())
        if pool is None or not hmac.compare_digest(self.join_token(pool.doc["id"]), token):
            return None
        for node_id in pool.node_ids:
            node = self.nodes[node_id]
            if not self.provider_of(node).starts_agents and not node.doc.get("_claimed") and node.leaving is None:
                node.doc["_claimed"] = True
                with self.store.transaction():
                    self.save_node(node)
                return node_id, messages.node_token(self.node_secret, node_id)
        return None

    # --- state helpers --------------------------------------------------------------------------

    def mark_node_free(self, node: NodeRecord, now: datetime) -> None:
        if node.doc["state"] == "running" and not any(run.occupies_node for run in node.runs.values()):
            self.set_node_state(node, "idle", now)
        self.maybe_offline(node, now)

    def maybe_offline(self, node: NodeRecord, now: datetime) -> None:
        """A node with scheduling disabled goes offline once its last task is done."""
        if (
            node.doc.get("schedulingState") == "disabled"
            and node.doc["state"] in ("idle", "running")
            and not any(run.occupies_node for run in node.runs.values())
        ):
            self.set_node_state(node, "offline", now)

    # --- agent sessions -------------------------------------------------------------------------

    async def agent_session(self, session: AgentSession) -> None:
        """Serve one connected agent until it goes away."""
        node = self.nodes.get(session.node_id)
        if node is None:
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
                        self._node_lost(node)

    def _node_lost(self, node: NodeRecord) -> None:
        """The connection dropped: `unknown` until it comes back or the grace time runs out."""
        if node.doc["state"] in ("idle", "running", "waitingforstarttask", "starting", "offline"):
            self.set_node_state(node, "unknown", self.now())

    def _on_agent_message(self, session: AgentSession, message: dict[str, Any]) -> None:
        node = self.nodes.get(session.node_id)
        if node is None or node.session is not session:
            return
        node.heard_at = time.monotonic()  # any message, heartbeats too, shows the agent is alive
        handler = self.reactions.message_handler(message["t"])
        if handler is None:
            return
        with self.store.transaction():
            handler(node, message)
            self.run_pending_round()

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
        now = self.now()
        pool = self.pools.get(node.pool_key)
        session = node.session
        assert session is not None
        session.send(
            {
                "t": "welcome",
                "node": node.id,
                "pool": pool.doc["id"] if pool else node.pool_key,
                "account": self.settings.account_name,
                "accountUrl": self.settings.base_url,
                "dedicated": True,
                "taskDirs": self.multi_instance_dirs(node),  # the agent ends what other ones left behind
            }
        )
        self.provider_of(node).agent_connected(node.id, message)
        self._on_results(node, message.get("done", []))
        agent_running = set(message.get("running", []))
        # Runs the agent no longer has (it restarted) go back to the queue; runs we do not know end.
        for run_id, run in list(node.runs.items()):
            if run_id not in agent_running:
                node.runs.pop(run_id)
                node.slots_used -= run.slots
                if run.occupies_node:
                    self.emit(RunLost(node, run, now))
        unknown = [run_id for run_id in agent_running if run_id not in node.runs]
        if unknown:
            session.send({"t": "kill", "aids": unknown})
        fresh_boot = message.get("boot") != node.doc.get("_boot")
        if fresh_boot:
            node.doc["_boot"] = message.get("boot")
            node.doc["lastBootTime"] = iso(now)
            node.doc.pop("startTaskInfo", None)
            node.doc.pop("errors", None)
            self.emit(NodeBooting(node, pool, now))
            self._boot_node(node, pool, now)
        else:
            self._resume_node(node, now)
        node.greeted = True
        self.save_node(node)
        self.kick()
        self.emit(NodeGreeted(node, message, fresh_boot))

    def _boot_node(self, node: NodeRecord, pool: PoolRecord | None, now: datetime) -> None:
        if node.doc["state"] == "leavingpool":
            return
        if node.doc["state"] != "starting":
            self.set_node_state(node, "starting", now)
        if send_pool_packages(self.resources, node, pool):
            return  # the start task follows in _on_packages_done
        self._start_node(node, pool, now)
        self.maybe_offline(node, now)

    def _on_packages_done(self, node: NodeRecord, result: dict[str, Any]) -> None:
        now = self.now()
        if packages_failed(node, result):
            self.set_node_state(node, "unusable", now)
        elif node.doc["state"] == "starting":
            self._start_node(node, self.pools.get(node.pool_key), now)
            self.kick()
        self.save_node(node)

    def _start_node(self, node: NodeRecord, pool: PoolRecord | None, now: datetime) -> None:
        start_task = (pool.doc.get("startTask") if pool else None) or None
        if start_task:
            node.doc["startTask"] = start_task
            self._run_start_task(node, start_task, retry=0, now=now)
            wait = start_task.get("waitForSuccess", True)
            self.set_node_state(node, "waitingforstarttask" if wait else "idle", now)
        else:
            self.set_node_state(node, "idle", now)

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
            self.set_node_state(node, target, now)

    # --- start task -----------------------------------------------------------------------------

    def _run_start_task(self, node: NodeRecord, start_task: dict[str, Any], retry: int, now: datetime) -> None:
        info = node.doc.get("startTaskInfo") or {}
        info.update({"state": "running", "startTime": iso(now), "retryCount": retry})
        for key in ("endTime", "exitCode", "result", "failureInfo"):
            info.pop(key, None)
        if retry:
            info["lastRetryTime"] = iso(now)
        node.doc["startTaskInfo"] = info
        node.runs[START_TASK_RUN_ID] = NodeRun("", "", 0, START_TASK_RUN_ID, RunKind.START)
        assert node.session is not None
        run = build_run(
            RunKind.START,
            START_TASK_RUN_ID,
            "startup",
            start_task["commandLine"],
            merge_environment(start_task.get("environmentSettings")),
            files=self.resources.resolve_files(start_task.get("resourceFiles")),
            retry=retry,
        )
        node.session.send({"t": "run", "runs": [run]})

    def _on_start_task_done(self, node: NodeRecord, result: dict[str, Any]) -> None:
        now = self.now()
        start_task = node.doc.get("startTask") or {}
        info = node.doc.setdefault("startTaskInfo", {"retryCount": 0, "startTime": iso(now)})
        info["state"] = "completed"
        info["startTime"] = result.get("start") or info.get("startTime")
        info["endTime"] = result.get("end") or iso(now)
        if result.get("exit") is not None:
            info["exitCode"] = result["exit"]
        failure = failure_of(result)
        info["result"] = "failure" if failure else "success"
        if failure:
            info["failureInfo"] = failure
        else:
            info.pop("failureInfo", None)
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
                self.set_node_state(node, "starttaskfailed", now)
        elif node.doc["state"] == "waitingforstarttask":
            self.set_node_state(node, "idle", now)
            self.kick()
        self.maybe_offline(node, now)
        self.save_node(node)

    # --- results --------------------------------------------------------------------------------

    def _on_results(self, node: NodeRecord, results: list[dict[str, Any]]) -> None:
        if not results:
            return
        now = self.now()
        for result in results:
            run_id = str(result.get("aid"))
            run = node.runs.pop(run_id, None)
            if run is None:
                continue
            node.slots_used -= run.slots
            if run.kind is RunKind.START:
                self._on_start_task_done(node, result)
            elif run.kind is RunKind.PACKAGES:
                self._on_packages_done(node, result)
            elif not self.finish_special_run(node, run, result, now):
                self.emit(TaskRunFinished(node, run, result, now))
        self.mark_node_free(node, now)
        node.dirty = True  # its counters changed; saved by housekeeping or the next state change
        if node.session is not None:
            node.session.send({"t": "ack", "aids": [str(result.get("aid")) for result in results]})
        self.emit(NodeFreed(node, now))
        self.kick()

    # --- loss -----------------------------------------------------------------------------------

    @reacts_to(Tick)
    def _check_lost_nodes(self, event: Tick) -> None:
        for node in self.nodes.values():
            if node.dirty:
                self.save_node(node)
        grace = self.settings.timing.node_lost_grace
        adopt = self.settings.timing.adopt_grace
        mono = time.monotonic()
        for node in list(self.nodes.values()):
            if node.session is not None or node.lost_at is None:
                continue
            if node.doc["state"] == "creating":
                continue
            lost_for = mono - node.lost_at
            provider = self.provider_of(node)
            if node.doc["state"] not in ("unusable", "preempted") and lost_for >= grace and not node.fencing:
                node.fencing = True
                self.spawn(self._fence_and_make_unusable(node))
            if not provider.starts_agents:
                continue  # nothing to restart here: its agent runs elsewhere and reconnects by itself
            if lost_for >= adopt and provider.is_alive(node.id) is False and node.doc["state"] != "leavingpool":
                # A node whose agent is gone for good gets a fresh agent (it boots again).
                node.lost_at = mono + 3600.0
                self.spawn(self.launch_agent(node))

    async def _fence_and_make_unusable(self, node: NodeRecord) -> None:
        """End what the lost node still runs, then requeue its runs: never two copies of a task at once."""
        try:
            await self.provider_of(node).fence(node.id)
        finally:
            node.fencing = False
        lost = node.doc["state"] in ("unusable", "preempted")
        if self.nodes.get(node.id) is node and node.session is None and not lost:
            with self.store.transaction():
                self._make_unusable(
                    node, self.now(), "NodeAgentUnreachable", "The node agent stopped answering the Batch service."
                )

    def _make_unusable(self, node: NodeRecord, now: datetime, code: str, message: str) -> None:
        self._leave_with_runs_requeued(node, "unusable", {"code": code, "message": message}, now)

    def _leave_with_runs_requeued(
        self, node: NodeRecord, state: str, error: dict[str, str] | None, now: datetime
    ) -> None:
        """The node can run nothing now (`unusable` or `preempted`): its runs go back to their queues."""
        for run_id, run in list(node.runs.items()):
            node.runs.pop(run_id)
            node.slots_used -= run.slots
            if run.occupies_node:
                self.emit(RunLost(node, run, now))
        if error is not None:
            node.doc["errors"] = [error]
        self.set_node_state(node, state, now)
        self.save_node(node)
        self.emit(NodeFreed(node, now))
        self.kick()


def failure_of(result: dict[str, Any]) -> dict[str, Any] | None:
    """The failureInfo a run result implies, or None for success."""
    if result.get("failure"):
        return result["failure"]
    if result.get("exit") not in (0, None):
        return {
            "category": "usererror",
            "code": "FailureExitCode",
            "message": "The task exited with an exit code representing a failure",
            "details": [{"name": "Message", "value": f"The task exited with exit code {result['exit']}"}],
        }
    return None
