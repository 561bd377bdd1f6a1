"""The engine in-process, with a fake node provider and fake agents: no HTTP, no processes, no sockets.

`World` builds the real engine (real state tables, scheduler, SQLite store in memory) and lets a test
play the provider's and the agents' parts: grant or lose allocations, say hello, report results, drop
connections. Requests go through the engine's methods with the contract's own body parsers, as the API
routes call them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from batchyard.protocol.messages import PROTOCOL_VERSION
from batchyard.providers.base import NodeEvents, NodeLaunch
from batchyard.providers.external import ExternalProvider
from batchyard.providers.registry import ProviderRegistry
from batchyard.service.clock import AdjustableClock
from batchyard.service.config import Settings, Timing
from batchyard.service.engine.engine import Engine
from batchyard.service.models import jobs as job_models
from batchyard.service.models import pools as pool_models
from batchyard.service.models import tasks as task_models
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.ports import AgentGone
from batchyard.service.storage.runs import linked_resources
from tests.api.helpers import pool_body

T = TypeVar("T")


@dataclass
class FakeProvider:
    """A provider that only records what it is asked; allocations are granted at once unless `grant` is off."""

    name: str = "local"
    starts_agents: bool = True
    grant: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)
    alive: set[str] = field(default_factory=set)
    events: NodeEvents | None = None
    _addresses: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def bind(self, events: NodeEvents) -> None:
        self.events = events

    def node_address(self, node_id: str, taken: set[str]) -> str:
        return f"192.0.2.{next(self._addresses)}"  # TEST-NET-1: a name, never a destination

    async def start_node(self, launch: NodeLaunch) -> None:
        self.calls.append(("start", launch.node_id))
        self.alive.add(launch.node_id)
        if self.grant:
            self.granted(launch.node_id)

    def granted(self, node_id: str) -> None:
        assert self.events is not None
        self.events.allocation_granted(node_id)

    async def stop_node(self, node_id: str, wipe: bool) -> None:
        self.calls.append(("stop", node_id))
        self.alive.discard(node_id)

    async def fence(self, node_id: str) -> None:
        self.calls.append(("fence", node_id))

    def agent_connected(self, node_id: str, hello: Mapping[str, Any]) -> None:
        self.calls.append(("connected", node_id))

    def is_alive(self, node_id: str) -> bool | None:
        return node_id in self.alive

    async def stop_all(self) -> None:
        self.alive.clear()

    def asked(self, what: str) -> list[str]:
        return [node_id for call, node_id in self.calls if call == what]


class FakeAgent:
    """One agent connection, as the gateway's AgentSession: messages out are recorded, messages in are
    delivered with `say`."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.sent: list[dict[str, Any]] = []
        self.closed = False
        self.close_code: int | None = None
        self._gone = asyncio.Event()
        self._on_message: Callable[[Any, dict[str, Any]], Any] | None = None
        self.boot = "boot-1"

    # --- the session's side (what the engine calls) -------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self.sent.append(message)

    async def request(self, message: dict[str, Any], timeout: float = 1.0) -> dict[str, Any]:
        raise AgentGone(self.node_id)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True
        self.close_code = code
        self._gone.set()

    async def serve(self, on_message: Callable[[Any, dict[str, Any]], Any]) -> None:
        self._on_message = on_message
        await self._gone.wait()

    # --- the agent's side (what a test does) --------------------------------------------------------

    def say(self, message: dict[str, Any]) -> None:
        assert self._on_message is not None, "not connected"
        self._on_message(self, message)

    def runs(self) -> list[dict[str, Any]]:
        return [run for message in self.sent if message["t"] == "run" for run in message["runs"]]

    def task_runs(self) -> list[dict[str, Any]]:
        return [run for run in self.runs() if run.get("kind") == "task"]

    def killed(self) -> list[str]:
        return [run_id for message in self.sent if message["t"] == "kill" for run_id in message["aids"]]

    def finish(self, run: dict[str, Any], exit_code: int = 0) -> None:
        self.say({"t": "done", "results": [result_of(run, exit_code)]})


def result_of(run: dict[str, Any], exit_code: int = 0) -> dict[str, Any]:
    return {
        "aid": run["aid"],
        "exit": exit_code,
        "start": "2026-01-01T00:00:00.000000Z",
        "end": "2026-01-01T00:00:01.000000Z",
        "failure": None,
    }


class World:
    def __init__(self, data_dir: Path, provider: FakeProvider | None = None, **timing: float) -> None:
        self.provider = provider or FakeProvider()
        self.settings = Settings(
            data_dir=data_dir, timing=Timing(**({"housekeeping_interval": 3600.0, "node_lost_grace": 0.0} | timing))
        )
        self.store = SqliteStore(Path(":memory:"))
        self.registry = ProviderRegistry([self.provider, ExternalProvider()], default=self.provider.name)
        self.clock = AdjustableClock()
        self.engine = Engine(
            self.settings, self.store, self.registry, self.clock, linked_resources(self.settings, self.store)[0]
        )
        self.registry.bind(self.engine.node_ops)
        self.agents: dict[str, FakeAgent] = {}
        self._sessions: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> World:
        await self.engine.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for agent in self.agents.values():
            agent.close()
        await self.settle()
        await self.engine.stop()
        self.store.close()

    # --- driving ------------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Let spawned work and scheduling rounds run until nothing is left to do."""
        for _ in range(50):
            await asyncio.sleep(0)

    def unit(self, operation: Callable[..., T], *args: Any) -> T:
        """One request's unit of work, as the API runs it."""
        with self.store.transaction():
            return operation(*args)

    def housekeeping(self) -> None:
        self.unit(self.engine.housekeeping)

    # --- requests -----------------------------------------------------------------------------------

    async def create_pool(self, pool_id: str, nodes: int = 1, slots: int = 1, **extra: Any) -> list[str]:
        body = pool_body(pool_id, targetDedicatedNodes=nodes, taskSlotsPerNode=slots, **extra)
        self.unit(self.engine.pool_ops.create_pool, pool_models.parse_pool_create(body), None)
        await self.settle()
        return self.node_ids(pool_id)

    def node_ids(self, pool_id: str) -> list[str]:
        return list(self.engine.pools[pool_id.lower()].node_ids)

    def node_state(self, node_id: str) -> str:
        return str(self.engine.nodes[node_id].doc["state"])

    def create_job(self, job_id: str, pool_id: str, **extra: Any) -> None:
        body = {"id": job_id, "poolInfo": {"poolId": pool_id}, **extra}
        self.unit(self.engine.job_ops.create_job, job_models.parse_job_create(body), None)

    async def add_task(self, job_id: str, task_id: str, command: str = "/bin/true", **extra: Any) -> None:
        job = self.engine.job_ops.get_job(job_id)
        spec = task_models.parse_task_create({"id": task_id, "commandLine": command, **extra})
        (result,) = self.unit(self.engine.task_ops.add_tasks, job, [spec])
        assert isinstance(result, dict), result
        await self.settle()

    def task(self, job_id: str, task_id: str) -> dict[str, Any]:
        return self.engine.task_ops.get_task(self.engine.job_ops.get_job(job_id), task_id)

    # --- agents -------------------------------------------------------------------------------------

    async def connect(
        self, node_id: str, running: list[str] | None = None, boot: str = "boot-1", version: int | None = None
    ) -> FakeAgent:
        """An agent of the node connects and says hello (in the service's protocol version unless given)."""
        agent = FakeAgent(node_id)
        agent.boot = boot
        self.agents[node_id] = agent
        self._sessions.append(asyncio.get_running_loop().create_task(self.engine.sessions.agent_session(agent)))
        await self.settle()
        hello = {"t": "hello", "node": node_id, "boot": boot, "pid": 1, "running": running or [], "done": []}
        agent.say(hello | {"version": PROTOCOL_VERSION if version is None else version})
        await self.settle()
        return agent

    async def disconnect(self, node_id: str) -> None:
        self.agents[node_id].close()
        await self.settle()
