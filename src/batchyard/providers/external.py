"""The external provider (`external`): agents on other hosts, started by their administrators.

A pool chooses it with the metadata `batchyard-provider: external`. Its nodes wait in `creating` until
an agent presents the pool's join token and claims one (`batchyard agent --join`); nothing here starts,
stops or kills a process, since none of them runs on this host. A lost node is fenced by time: its
agent, told a lease in the service's welcome, ends every run once it has been cut off from the service
that long, and `fence` returns only when that has surely happened, so a requeued task never runs
beside its first copy. An agent that starts again ends what an earlier agent of its node left running
(`agent/main.py`), and reboot and reimage are asked of the agent itself, which starts again in place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from batchyard.providers.base import NodeEvents, NodeLaunch


class ExternalProvider:
    name = "external"
    starts_agents = False

    def __init__(self, fence_wait: float = 0.0) -> None:
        self.fence_wait = fence_wait  # protocol.messages.lease_expiry of the agents' lease

    def bind(self, events: NodeEvents) -> None:
        """Allocations are claims by joining agents: nothing to report before the agent's hello."""

    def node_address(self, node_id: str, taken: set[str]) -> str:
        return "127.0.0.1"  # what the agent's host is called is known only to its administrator

    async def start_node(self, launch: NodeLaunch) -> None:
        """The node waits for an agent to claim it."""

    async def stop_node(self, node_id: str, wipe: bool) -> None:
        """The agent was told to shut down over its connection; its host is not ours to wipe."""

    async def fence(self, node_id: str) -> None:
        """Out of reach: wait until the agent, cut off for its lease, has ended its runs itself."""
        await asyncio.sleep(self.fence_wait)

    def agent_connected(self, node_id: str, hello: Mapping[str, Any]) -> None:
        """Nothing to take charge of on this host."""

    def is_alive(self, node_id: str) -> bool | None:
        return None

    async def stop_all(self) -> None:
        """Agents on other hosts outlive the service and reconnect when it is back."""
