"""What the engine needs from a node provider: start an agent for a node, stop it, wipe it."""

from __future__ import annotations

from typing import Protocol


class NodeProvider(Protocol):
    async def start_node(self, node_id: str, pool_id: str, token: str) -> None:
        """Start (or restart) the agent of a node; it connects back to the service."""

    async def stop_node(self, node_id: str, wipe: bool) -> None:
        """Stop the node's agent and its tasks; `wipe` also removes the node's disk."""

    def adopt(self, node_id: str, pid: int) -> None:
        """A node's agent from before a service restart reconnected: take charge of it again."""

    async def fence(self, node_id: str) -> None:
        """End every process of the node's runs, wherever its agent is: the node was lost and its runs
        are about to be requeued (a task runs at most once at a time). The agent itself may stay."""

    def is_alive(self, node_id: str) -> bool:
        """Whether this provider still has a live agent process for the node."""

    async def stop_all(self) -> None:
        """Stop every agent this provider started (service shutdown)."""
