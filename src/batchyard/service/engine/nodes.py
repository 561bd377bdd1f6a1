"""Compute nodes: allocation through their provider, state helpers, and loss (fencing, requeue).

Agent sessions, boot and the start task are in node_sessions.py."""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import datetime
from typing import Any

from batchyard.protocol import messages
from batchyard.providers.base import NodeLaunch
from batchyard.service.clock import iso
from batchyard.service.engine import endpoints
from batchyard.service.engine.account_keys import account_of, scoped_id
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import (
    NodeFreed,
    RunLost,
    Tick,
    reacts_to,
)
from batchyard.service.engine.records import NodePrivate, NodeRecord, PoolRecord
from batchyard.service.models import catalog

AGENT_VERSION = "1.0.0-batchyard"
START_TASK_RUN_ID = "start"


def new_node_id(dedicated: bool = True) -> str:
    """Azure's node ids end in `_d` for dedicated nodes and `_p` for Spot/low-priority ones."""
    return f"tvmps_{secrets.token_hex(16)}_{'d' if dedicated else 'p'}"


class NodeOps(Concern):
    def __init__(self, core: EngineCore) -> None:
        super().__init__(core)

    # --- allocation -----------------------------------------------------------------------------

    def allocate_node(self, pool: PoolRecord, now: datetime, dedicated: bool = True) -> NodeRecord:
        node_id = new_node_id(dedicated)
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
            "isDedicated": dedicated,
            "nodeAgentInfo": {"version": AGENT_VERSION, "lastUpdateTime": iso(now)},
            "virtualMachineInfo": {
                "imageReference": (pool.doc.get("virtualMachineConfiguration") or {}).get("imageReference", {})
            },
        }
        provider = self.core.providers.get(self.core.providers.name_for_pool(pool.doc))
        doc["ipAddress"] = provider.node_address(node_id, {str(n.doc.get("ipAddress")) for n in self.nodes.values()})
        if endpoints.ipv6_enabled(pool.doc):
            doc["ipv6Address"] = endpoints.IPV6_ADDRESS
        node = NodeRecord(node_id, pool.key, self.store.next_seq(), doc, NodePrivate(provider=provider.name))
        if endpoints.nat_pools(pool.doc):
            self._give_endpoints(pool, node)
        self.nodes[node_id] = node
        pool.node_ids.append(node_id)
        self.core.save_node(node)
        if provider.starts_agents:
            self.core.spawn(self.launch_agent(node))
        return node

    def _give_endpoints(self, pool: PoolRecord, node: NodeRecord) -> None:
        taken = {
            index
            for other in pool.node_ids
            if other in self.nodes and (index := self.nodes[other].private.endpoint_index) is not None
        }
        node.private.endpoint_index = endpoints.free_index(taken)
        ip, fqdn = endpoints.public_address(self.settings)
        node.doc["endpointConfiguration"] = {
            "inboundEndpoints": endpoints.inbound_endpoints(pool.doc, node.private.endpoint_index, ip, fqdn)
        }

    def node_launch(self, node: NodeRecord) -> NodeLaunch:
        pool = self.pools.get(node.pool_key)
        pool_doc = pool.doc if pool else {}
        settings = {
            str(item.get("name")): str(item.get("value", ""))
            for item in pool_doc.get("metadata") or []
            if str(item.get("name", "")).startswith("batchyard-")
        }
        size = catalog.lookup_vm_size(str(node.doc.get("vmSize", "")))
        return NodeLaunch(
            node_id=node.id,
            pool_id=pool_doc.get("id", node.pool_key),
            token=messages.node_token(self.core.node_secret, node.id),
            vm_size=str(node.doc.get("vmSize", "")),
            cores=size.cores if size else 0,
            memory_mb=size.memory_mb if size else 0,
            dedicated=bool(node.doc.get("isDedicated", True)),
            settings=settings,
        )

    async def launch_agent(self, node: NodeRecord) -> None:
        await self.core.provider_of(node).start_node(self.node_launch(node))

    # --- what providers report (providers.base.NodeEvents) ----------------------------------------

    def allocation_granted(self, node_id: str, address: str | None = None) -> None:
        node = self.nodes.get(node_id)
        if node is None:
            return
        with self.store.transaction():
            if address:
                node.doc["ipAddress"] = address
                self.core.save_node(node)
            if node.doc["state"] == "creating":
                self.core.set_node_state(node, "starting", self.core.now())

    def allocation_lost(self, node_id: str, preempted: bool, reason: str | None = None) -> None:
        node = self.nodes.get(node_id)
        if node is None or node.private.leaving is not None or node.removing:
            return
        if node.session is not None:
            node.session.close()
        if node.lost_at is None:
            node.lost_at = time.monotonic()  # one whose agent never connected is started again as well
        with self.store.transaction():
            if preempted:
                self._leave_with_runs_requeued(node, "preempted", None, self.core.now())
            else:
                message = f"The node's allocation ended: {reason}" if reason else "The node's allocation ended."
                self._make_unusable(node, self.core.now(), "NodeAllocationLost", message)

    def node_token_ok(self, node_id: str, token: str) -> bool:
        return node_id in self.nodes and hmac.compare_digest(messages.node_token(self.core.node_secret, node_id), token)

    def join_token(self, pool_name: str) -> str:
        """The join token of a pool, named by its scoped id (account_keys.scoped_id: its id for the service's
        own account, `account/id` for another)."""
        return messages.join_token(self.core.node_secret, pool_name)

    def claim_node(self, pool_name: str, token: str) -> tuple[str, str] | None:
        """Give an agent that presents the pool's join token one of the pool's unclaimed external nodes."""
        pool = self.pools.get(pool_name.lower())
        expected = self.join_token(scoped_id(account_of(pool.key), pool.doc["id"])) if pool is not None else ""
        if pool is None or not hmac.compare_digest(expected, token):
            return None
        for node_id in pool.node_ids:
            node = self.nodes[node_id]
            if (
                not self.core.provider_of(node).starts_agents
                and not node.private.claimed
                and node.private.leaving is None
            ):
                node.private.claimed = True
                with self.store.transaction():
                    self.core.save_node(node)
                return node_id, messages.node_token(self.core.node_secret, node_id)
        return None

    # --- state helpers --------------------------------------------------------------------------

    def mark_node_free(self, node: NodeRecord, now: datetime) -> None:
        if node.doc["state"] == "running" and not any(run.occupies_node for run in node.runs.values()):
            self.core.set_node_state(node, "idle", now)
        self.maybe_offline(node, now)

    def maybe_offline(self, node: NodeRecord, now: datetime) -> None:
        """A node with scheduling disabled goes offline once its last task is done."""
        if (
            node.doc.get("schedulingState") == "disabled"
            and node.doc["state"] in ("idle", "running")
            and not any(run.occupies_node for run in node.runs.values())
        ):
            self.core.set_node_state(node, "offline", now)

    # --- loss -----------------------------------------------------------------------------------

    @reacts_to(Tick)
    def _check_lost_nodes(self, event: Tick) -> None:
        for node in self.nodes.values():
            if node.dirty:
                self.core.save_node(node)
        grace = self.settings.timing.node_lost_grace
        adopt = self.settings.timing.adopt_grace
        mono = time.monotonic()
        for node in list(self.nodes.values()):
            if node.session is not None or node.lost_at is None:
                continue
            lost_for = mono - node.lost_at
            provider = self.core.provider_of(node)
            if node.doc["state"] == "creating":
                # Only after a service restart (fresh nodes have no lost_at): a node still waiting for its
                # allocation is started again when its provider has none for it (a batch job that ended).
                if provider.starts_agents and lost_for >= adopt and provider.is_alive(node.id) is False:
                    node.lost_at = mono + 3600.0
                    self.core.spawn(self.launch_agent(node))
                continue
            if node.doc["state"] not in ("unusable", "preempted") and lost_for >= grace and not node.fencing:
                node.fencing = True
                self.core.spawn(self._fence_and_make_unusable(node))
            if not provider.starts_agents:
                continue  # nothing to restart here: its agent runs elsewhere and reconnects by itself
            if (
                lost_for >= adopt
                and not node.fencing
                and provider.is_alive(node.id) is False
                and node.doc["state"] != "leavingpool"
            ):
                # A node whose agent is gone for good gets a fresh agent (it boots again), once what the lost
                # one ran is ended: a fresh agent's hello would hand its runs back to their queues before that.
                node.lost_at = mono + 3600.0
                self.core.spawn(self.launch_agent(node))

    async def _fence_and_make_unusable(self, node: NodeRecord) -> None:
        """End what the lost node still runs, then requeue its runs: never two copies of a task at once."""
        try:
            await self.core.provider_of(node).fence(node.id)
        finally:
            node.fencing = False
        lost = node.doc["state"] in ("unusable", "preempted")
        if self.nodes.get(node.id) is node and node.session is None and not lost:
            with self.store.transaction():
                self._make_unusable(
                    node, self.core.now(), "NodeAgentUnreachable", "The node agent stopped answering the Batch service."
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
                self.core.emit(RunLost(node, run, now))
        if error is not None:
            node.doc["errors"] = [error]
        self.core.set_node_state(node, state, now)
        self.core.save_node(node)
        self.core.emit(NodeFreed(node, now))
        self.core.kick()


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
