"""Compute node operations: find and describe nodes, and act on them (reboot, users, logs ...)."""

from __future__ import annotations

from typing import Any

from batchyard.service import errors
from batchyard.service.engine.nodes import START_TASK_RUN_ID
from batchyard.service.engine.operations.base import OperationsBase
from batchyard.service.engine.records import NodeRecord


class NodeOperations(OperationsBase):
    # --- reads ----------------------------------------------------------------------------------

    def node(self, pool_id: str, node_id: str) -> NodeRecord:
        """The node of that pool, or PoolNotFound / NodeNotFound."""
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        node = self.engine.nodes.get(node_id)
        if node is None or node.pool_key != pool.key:
            raise errors.not_found("NodeNotFound", "The specified node does not exist.")
        return node

    def find_node(self, node_id: str) -> NodeRecord | None:
        """The node of this account with that id, whichever its pool."""
        node = self.engine.nodes.get(node_id)
        return node if node is not None and self.owns(node.pool_key) else None

    def pool_nodes(self, pool_id: str) -> list[NodeRecord]:
        pool = self.engine.pool_ops.get_pool(self.key(pool_id))
        return [self.engine.nodes[node_id] for node_id in pool.node_ids]

    def node_document(self, node: NodeRecord) -> dict[str, Any]:
        """The node's document with what only the running engine knows: its running tasks and slots."""
        doc = dict(node.doc)
        doc["runningTasksCount"] = sum(1 for run_id in node.runs if run_id != START_TASK_RUN_ID)
        doc["runningTaskSlotsCount"] = node.slots_used
        doc["recentTasks"] = list(node.recent)
        return doc

    def pool_id_of(self, node: NodeRecord) -> str:
        """The id of the node's pool ("" when the pool is gone)."""
        pool = self.engine.pools.get(node.pool_key)
        return pool.doc["id"] if pool is not None else ""

    # --- actions --------------------------------------------------------------------------------

    def restart_node(self, pool_id: str, node_id: str, kind: str, option: str) -> None:
        """Reboot (kind "reboot") or reimage ("reimage") a node; option says what happens to its tasks."""
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.restart_node(node, kind, option)

    def disable_node_scheduling(self, pool_id: str, node_id: str, option: str) -> None:
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.disable_scheduling(node, option)

    def enable_node_scheduling(self, pool_id: str, node_id: str) -> None:
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.enable_scheduling(node)

    def deallocate_node(self, pool_id: str, node_id: str, option: str) -> None:
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.deallocate_node(node, option)

    def start_node(self, pool_id: str, node_id: str) -> None:
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.start_node(node)

    def preempt_node(self, pool_id: str, node_id: str) -> None:
        """Preempt a Spot/low-priority node as its cloud would (a developer's tool, not in the contract)."""
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.preemption.preempt(node)

    def add_node_user(self, pool_id: str, node_id: str, spec: dict[str, Any]) -> None:
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.add_user(node, spec)

    def replace_node_user(self, pool_id: str, node_id: str, name: str, spec: dict[str, Any]) -> None:
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.replace_user(node, name, spec)

    def delete_node_user(self, pool_id: str, node_id: str, name: str) -> None:
        node = self.node(pool_id, node_id)
        with self.store.transaction():
            self.engine.node_actions.delete_user(node, name)

    async def remote_login_settings(self, pool_id: str, node_id: str) -> dict[str, Any]:
        return await self.engine.node_actions.remote_login_settings(self.node(pool_id, node_id))

    def remote_desktop_file(self, pool_id: str, node_id: str) -> str:
        return self.engine.node_actions.remote_desktop_file(self.node(pool_id, node_id))

    async def upload_node_logs(self, pool_id: str, node_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        return await self.engine.service_logs.upload_logs(self.node(pool_id, node_id), spec)
