"""The node provider port: where a pool's nodes come from, and how the engine hears about them.

A provider turns "this pool needs a node" into an agent that connects back to the service. The engine
asks (`start_node`, `stop_node`, `fence`) and never learns how: no process ids, host names or
addresses of the provider's own reach the engine. Allocation may take time (a batch system's queue, an
image pull): the node stays `creating` until the provider says the allocation was granted
(`NodeEvents.allocation_granted`), and `starting` until its agent says hello. A provider whose
allocation ends under a node (a batch job's time limit, preemption) says so with
`NodeEvents.allocation_lost`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class NodeLaunch:
    """What a provider needs to start (or restart) one node's agent."""

    node_id: str
    pool_id: str
    token: str  # the node's own credential, presented by its agent when it connects
    vm_size: str = ""
    # The vmSize's cores and memory (0: a size the catalog does not know), for providers that reserve them.
    cores: int = 0
    memory_mb: int = 0
    # False for a Spot/low-priority node (providers that have preemptible capacity place it there).
    dedicated: bool = True
    # The pool's metadata, for provider settings (partition, image, ...): `batchyard-*` names.
    settings: Mapping[str, str] = field(default_factory=dict)


class NodeEvents(Protocol):
    """What a provider tells the engine about allocations (the engine implements it)."""

    def allocation_granted(self, node_id: str, address: str | None = None) -> None:
        """The node's resources are there and its agent is starting: `creating` -> `starting`. `address`:
        where the node turned out to be (its `ipAddress`), for providers that learn it only now."""

    def allocation_lost(self, node_id: str, preempted: bool, reason: str | None = None) -> None:
        """The allocation ended under the node (its processes are gone): the node leaves as on Azure,
        `preempted` for a preemption, `unusable` otherwise (`reason` in its error), and its running tasks
        are requeued."""


class NodeProvider(Protocol):
    #: The name pools choose it by (pool metadata `batchyard-provider`).
    name: str
    #: Whether the service starts this provider's agents. False: agents start elsewhere and claim a
    #: node of the pool with its join token (`external`); reboot and reimage are then asked of the agent.
    starts_agents: bool

    def bind(self, events: NodeEvents) -> None:
        """Called once, before any other call, with the engine's side of the port."""

    def node_address(self, node_id: str, taken: set[str]) -> str:
        """The `ipAddress` a new node reports, not one of `taken` where the provider chooses them."""

    async def start_node(self, launch: NodeLaunch) -> None:
        """Request the node's allocation and start (or restart) its agent; it connects back to the service."""

    async def stop_node(self, node_id: str, wipe: bool) -> None:
        """Stop the node's agent and its tasks and release the allocation; `wipe` also removes its disk."""

    async def fence(self, node_id: str) -> None:
        """End every process of the node's runs, wherever its agent is: the node was lost and its runs
        are about to be requeued (a task runs at most once at a time). The agent itself may stay."""

    def agent_connected(self, node_id: str, hello: Mapping[str, Any]) -> None:
        """A node's agent said hello (after a start, a reconnect or a service restart): take charge of it
        again. `hello` is the agent's hello message; what the provider reads from it is its own business."""

    def is_alive(self, node_id: str) -> bool | None:
        """Whether the node's agent process still exists; None when the provider cannot tell."""

    async def stop_all(self) -> None:
        """Stop every agent this provider started (service shutdown)."""
