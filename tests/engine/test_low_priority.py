"""Spot/low-priority nodes in-process: their own target and count, preemption and reallocation
(engine/preemption.py), driven by the fake provider and agents of tests/engine/world.py."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchyard.protocol.messages import AGENT_REFUSED
from batchyard.providers.registry import ProviderRegistry
from batchyard.service.engine.engine import Engine
from batchyard.service.errors import BatchError
from batchyard.service.models import pools as pool_models
from tests.engine.test_lifecycles import play
from tests.engine.world import FakeAgent, FakeProvider, World


async def mixed_pool(world: World, dedicated: int = 1, low: int = 2, **extra: object) -> tuple[list[str], list[str]]:
    """A pool `p` with both kinds of nodes, every agent connected: (dedicated ids, low-priority ids)."""
    nodes = await world.create_pool("p", nodes=dedicated, targetLowPriorityNodes=low, **extra)
    for node in nodes:
        await world.connect(node)
    is_dedicated = {node: world.engine.nodes[node].doc["isDedicated"] for node in nodes}
    return [n for n in nodes if is_dedicated[n]], [n for n in nodes if not is_dedicated[n]]


def preempt(world: World, node_id: str) -> None:
    world.unit(world.engine.preemption.preempt, world.engine.nodes[node_id])


def test_a_pool_makes_low_priority_nodes_for_its_low_priority_target(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        dedicated, low = await mixed_pool(world, dedicated=1, low=2)
        assert len(dedicated) == 1 and len(low) == 2
        assert dedicated[0].endswith("_d") and all(node.endswith("_p") for node in low)
        pool = world.engine.pools["p"].doc
        assert (pool["currentDedicatedNodes"], pool["currentLowPriorityNodes"]) == (1, 2)
        welcome = next(m for m in world.agents[low[0]].sent if m["t"] == "welcome")
        assert welcome["dedicated"] is False  # the agent's AZ_BATCH_NODE_IS_DEDICATED

    play(scenario, tmp_path)


def test_a_preempted_node_requeues_its_task_without_using_a_retry(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        _, low = await mixed_pool(world, dedicated=0, low=2)
        world.create_job("j", "p")
        await world.add_task("j", "t", constraints={"maxTaskRetryCount": 0})
        victim = world.task("j", "t")["nodeInfo"]["nodeId"]
        (survivor,) = [node for node in low if node != victim]
        preempt(world, victim)
        assert world.node_state(victim) == "preempted"  # at once, before its processes are ended
        assert world.agents[victim].close_code == AGENT_REFUSED
        await world.settle()
        assert world.provider.asked("fence")[-1:] == [victim]
        assert victim in world.provider.asked("stop")
        task = world.task("j", "t")
        assert task["state"] == "running" and task["nodeInfo"]["nodeId"] == survivor
        assert task["executionInfo"]["requeueCount"] == 1
        assert task["executionInfo"]["retryCount"] == 0
        assert world.engine.pools["p"].doc["currentLowPriorityNodes"] == 2  # preempted nodes still count
        back = FakeAgent(victim)  # an agent of a preempted node (its VM is gone) is refused
        await asyncio.wait_for(world.engine.sessions.agent_session(back), 1)
        assert back.closed and back.close_code == AGENT_REFUSED

    play(scenario, tmp_path)


@dataclass
class HeldFence(FakeProvider):
    """A provider that ends a node's processes only when the test says they are gone."""

    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def fence(self, node_id: str) -> None:
        self.calls.append(("fence", node_id))
        await self.released.wait()


def test_a_task_is_requeued_only_once_its_preempted_nodes_processes_are_gone(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        assert isinstance(world.provider, HeldFence)
        _, low = await mixed_pool(world, dedicated=0, low=2)
        world.create_job("j", "p")
        await world.add_task("j", "t")
        victim = world.task("j", "t")["nodeInfo"]["nodeId"]
        preempt(world, victim)
        pool = world.engine.pools["p"]
        shrink = pool_models.parse_pool_resize({"targetLowPriorityNodes": 1})
        world.unit(world.engine.pool_ops.resize_pool, pool, shrink)  # the preempted node leaves at once
        await world.settle()
        assert victim not in world.node_ids("p")
        assert world.task("j", "t")["nodeInfo"]["nodeId"] == victim  # its process may still be running
        world.provider.released.set()
        await world.settle()
        (survivor,) = world.node_ids("p")
        task = world.task("j", "t")
        assert task["state"] == "running" and task["nodeInfo"]["nodeId"] == survivor
        assert task["executionInfo"]["requeueCount"] == 1

    play(scenario, tmp_path, provider=HeldFence())


def test_an_eviction_the_service_did_not_finish_is_finished_when_it_starts_again(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        _, (node,) = await mixed_pool(world, dedicated=0, low=1)
        world.create_job("j", "p")
        await world.add_task("j", "t")
        preempt(world, node)
        await world.settle()
        assert world.task("j", "t")["state"] == "running"  # its processes are not known to be gone yet
        provider = FakeProvider()
        registry = ProviderRegistry([provider], default=provider.name)
        again = Engine(world.settings, world.store, registry, world.clock)
        registry.bind(again.node_ops)
        await again.start()
        await world.settle()
        assert provider.asked("fence") == [node]
        task = again.task_ops.get_task(again.job_ops.get_job("j"), "t")
        assert task["state"] == "active" and task["executionInfo"]["requeueCount"] == 1
        await again.stop()

    play(scenario, tmp_path, provider=HeldFence())  # never released: the service stops in the middle


def test_only_low_priority_nodes_that_are_up_can_be_preempted(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        dedicated, low = await mixed_pool(world, dedicated=1, low=1)
        with pytest.raises(BatchError) as refused:
            preempt(world, dedicated[0])
        assert (refused.value.status, refused.value.code) == (409, "OperationNotValidOnNode")
        preempt(world, low[0])
        with pytest.raises(BatchError) as again:
            preempt(world, low[0])
        assert (again.value.status, again.value.code) == (409, "OperationInvalidForCurrentState")

    play(scenario, tmp_path)


def test_a_preempted_node_is_reallocated_after_the_recovery_time(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        _, (node,) = await mixed_pool(world, dedicated=0, low=1, metadata=[_item("recovery-seconds", "120")])
        preempt(world, node)
        await world.settle()
        starts = len(world.provider.asked("start"))
        world.clock.advance(60)
        world.housekeeping()
        await world.settle()
        assert world.node_state(node) == "preempted"
        world.clock.advance(61)
        world.housekeeping()
        await world.settle()
        assert world.node_state(node) == "starting"
        assert len(world.provider.asked("start")) == starts + 1
        await world.connect(node, boot="boot-2")
        assert world.node_state(node) == "idle"

    play(scenario, tmp_path)


def test_a_shrinking_pool_lets_its_preempted_nodes_go_first(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        _, low = await mixed_pool(world, dedicated=0, low=2)
        victim = low[0]  # the older one: among equals the newest node would leave first
        preempt(world, victim)
        await world.settle()
        pool = world.engine.pools["p"]
        world.unit(
            world.engine.pool_ops.resize_pool, pool, pool_models.parse_pool_resize({"targetLowPriorityNodes": 1})
        )
        await world.settle()
        assert world.node_ids("p") == [low[1]]  # the preempted node left, the one that was up stayed
        assert world.engine.pools["p"].doc["currentLowPriorityNodes"] == 1

    play(scenario, tmp_path)


def test_a_preemption_rate_evicts_low_priority_nodes_on_the_services_clock(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        world.engine.preemption.chance = random.Random(1)  # its first draws are far from 0.003
        dedicated, low = await mixed_pool(world, dedicated=1, low=2, metadata=[_item("rate", "5")])
        world.housekeeping()  # each node's exposure starts
        world.clock.advance(1)
        world.housekeeping()
        assert [world.node_state(node) for node in low] == ["idle", "idle"]  # a second: ~0.3% each
        world.clock.advance(10 * 3600)  # fifty evictions per node expected: surely at least one
        world.housekeeping()
        assert [world.node_state(node) for node in low] == ["preempted", "preempted"]
        assert world.node_state(dedicated[0]) == "idle"

    play(scenario, tmp_path)


def test_preemption_settings_must_be_numbers(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        with pytest.raises(BatchError) as refused:
            await world.create_pool("p", metadata=[_item("rate", "often")])
        assert (refused.value.status, refused.value.code) == (400, "InvalidPropertyValue")

    play(scenario, tmp_path)


def _item(setting: str, value: str) -> dict[str, str]:
    return {"name": f"batchyard-preemption-{setting}", "value": value}


def test_a_job_manager_that_allows_no_low_priority_node_waits_for_a_dedicated_one(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        _, low = await mixed_pool(world, dedicated=0, low=2)
        manager = {"id": "jm", "commandLine": "/bin/true", "allowLowPriorityNode": False, "runExclusive": False}
        world.create_job("j", "p", jobManagerTask=manager)
        await world.add_task("j", "t")
        await world.settle()
        assert world.task("j", "jm")["state"] == "active"  # only low-priority nodes so far
        assert world.task("j", "t")["nodeInfo"]["nodeId"] in low  # the job's other tasks may use them
        pool = world.engine.pools["p"]
        resize = pool_models.parse_pool_resize({"targetDedicatedNodes": 1, "targetLowPriorityNodes": 2})
        world.unit(world.engine.pool_ops.resize_pool, pool, resize)
        await world.settle()
        (dedicated,) = [node for node in world.node_ids("p") if node not in low]
        await world.connect(dedicated)
        jm = world.task("j", "jm")
        assert jm["state"] == "running" and jm["nodeInfo"]["nodeId"] == dedicated

    play(scenario, tmp_path)
