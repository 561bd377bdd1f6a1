"""Pool, node, job and task lifecycles, driven in-process by provider and agent events (tests/engine/world.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from batchyard.protocol.messages import AGENT_REFUSED
from tests.engine.world import FakeProvider, World


def play(scenario: Callable[[World], Awaitable[None]], tmp_path: Path, **options: object) -> None:
    async def main() -> None:
        provider = options.pop("provider", None)
        async with World(tmp_path, provider, **options) as world:  # type: ignore[arg-type]
            await scenario(world)

    asyncio.run(main())


# --- nodes ------------------------------------------------------------------------------------------------


def test_a_node_is_creating_until_its_allocation_is_granted_and_idle_after_hello(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p", nodes=1)
        assert world.provider.asked("start") == [node]
        assert world.node_state(node) == "creating"  # the provider has not granted it yet
        world.provider.granted(node)
        assert world.node_state(node) == "starting"
        await world.connect(node)
        assert world.node_state(node) == "idle"
        assert world.provider.asked("connected") == [node]
        assert world.engine.nodes[node].doc["ipAddress"].startswith("192.0.2.")

    play(scenario, tmp_path, provider=FakeProvider(grant=False))


def test_a_start_task_runs_before_the_node_takes_tasks(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p", startTask={"commandLine": "/bin/true", "waitForSuccess": True})
        agent = await world.connect(node)
        assert world.node_state(node) == "waitingforstarttask"
        (start,) = agent.runs()
        assert start["kind"] == "start"
        agent.finish(start, 0)
        await world.settle()
        assert world.node_state(node) == "idle"
        assert world.engine.nodes[node].doc["startTaskInfo"]["result"] == "success"

    play(scenario, tmp_path)


def test_a_failed_start_task_leaves_the_node_starttaskfailed(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p", startTask={"commandLine": "/bin/false", "waitForSuccess": True})
        agent = await world.connect(node)
        agent.finish(agent.runs()[0], 1)
        await world.settle()
        assert world.node_state(node) == "starttaskfailed"
        assert [error["code"] for error in world.engine.nodes[node].doc["errors"]] == ["StartTaskFailed"]

    play(scenario, tmp_path)


def test_resizing_down_stops_the_removed_nodes(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        nodes = await world.create_pool("p", nodes=2)
        for node in nodes:
            await world.connect(node)
        pool = world.engine.pool_ops.get_pool("p")
        from batchyard.service.models import pools as pool_models

        world.unit(world.engine.pool_ops.resize_pool, pool, pool_models.parse_pool_resize({"targetDedicatedNodes": 0}))
        await world.settle()
        world.housekeeping()
        await world.settle()
        assert sorted(world.provider.asked("stop")) == sorted(nodes)
        assert world.node_ids("p") == []
        assert pool.doc["allocationState"] == "steady"

    play(scenario, tmp_path)


def test_deleting_a_pool_stops_its_nodes(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        nodes = await world.create_pool("p", nodes=3)
        for node in nodes:
            await world.connect(node)
        world.unit(world.engine.pool_ops.delete_pool, world.engine.pool_ops.get_pool("p"))
        await world.settle()
        for _ in range(3):
            world.housekeeping()
            await world.settle()
        assert sorted(world.provider.asked("stop")) == sorted(nodes)
        assert "p" not in world.engine.pools

    play(scenario, tmp_path)


# --- tasks ------------------------------------------------------------------------------------------------


def test_a_task_is_sent_to_an_idle_node_and_completes(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p")
        agent = await world.connect(node)
        world.create_job("j", "p")
        await world.add_task("j", "t", "/bin/echo hi")
        assert world.task("j", "t")["state"] == "running"
        assert world.node_state(node) == "running"
        (run,) = agent.task_runs()
        assert run["cmd"] == "/bin/echo hi"
        agent.finish(run, 0)
        await world.settle()
        task = world.task("j", "t")
        assert task["state"] == "completed"
        assert task["executionInfo"]["result"] == "success"
        assert task["executionInfo"]["exitCode"] == 0
        assert world.node_state(node) == "idle"
        assert world.engine.nodes[node].doc["totalTasksSucceeded"] == 1

    play(scenario, tmp_path)


def test_a_failing_task_is_retried_up_to_its_limit_then_fails(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p")
        agent = await world.connect(node)
        world.create_job("j", "p")
        await world.add_task("j", "t", "/bin/false", constraints={"maxTaskRetryCount": 2})
        for attempt in range(3):
            runs = agent.task_runs()
            assert len(runs) == attempt + 1
            agent.finish(runs[-1], 3)
            await world.settle()
        task = world.task("j", "t")
        assert task["state"] == "completed"
        assert task["executionInfo"]["retryCount"] == 2
        assert task["executionInfo"]["result"] == "failure"
        assert task["executionInfo"]["failureInfo"]["code"] == "FailureExitCode"

    play(scenario, tmp_path)


def test_tasks_wait_for_a_free_slot(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p", slots=2)
        agent = await world.connect(node)
        world.create_job("j", "p")
        for index in range(5):
            await world.add_task("j", f"t{index}")
        assert len(agent.task_runs()) == 2
        states = [world.task("j", f"t{index}")["state"] for index in range(5)]
        assert states.count("running") == 2
        assert states.count("active") == 3
        for _ in range(4):
            agent.finish(agent.task_runs()[-1])
            await world.settle()
        assert len(agent.task_runs()) == 5

    play(scenario, tmp_path)


def test_a_dependent_task_runs_after_its_parent_succeeds(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p", slots=2)
        agent = await world.connect(node)
        world.create_job("j", "p", usesTaskDependencies=True)
        await world.add_task("j", "parent")
        await world.add_task("j", "child", dependsOn={"taskIds": ["parent"]})
        assert [run["task"] for run in agent.task_runs()] == ["parent"]
        agent.finish(agent.task_runs()[0])
        await world.settle()
        assert [run["task"] for run in agent.task_runs()] == ["parent", "child"]

    play(scenario, tmp_path)


# --- nodes lost -------------------------------------------------------------------------------------------


def test_a_lost_node_is_fenced_before_its_tasks_are_requeued_elsewhere(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        first, second = await world.create_pool("p", nodes=2, taskSchedulingPolicy={"nodeFillType": "pack"})
        agents = {node: await world.connect(node) for node in (first, second)}
        world.create_job("j", "p")
        await world.add_task("j", "t")
        victim = world.task("j", "t")["nodeInfo"]["nodeId"]
        survivor = second if victim == first else first
        await world.disconnect(victim)
        assert world.node_state(victim) == "unknown"
        world.provider.alive.discard(victim)
        world.housekeeping()  # grace 0: lost now
        await world.settle()
        assert world.provider.asked("fence") == [victim]
        assert world.node_state(victim) == "unusable"
        task = world.task("j", "t")
        assert task["state"] == "running"
        assert task["nodeInfo"]["nodeId"] == survivor
        assert task["executionInfo"]["requeueCount"] == 1
        assert len(agents[survivor].task_runs()) == 1

    play(scenario, tmp_path, adopt_grace=3600.0)


def test_a_preempted_allocation_requeues_its_tasks(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        first, second = await world.create_pool("p", nodes=2)
        for node in (first, second):
            await world.connect(node)
        world.create_job("j", "p")
        await world.add_task("j", "t")
        victim = world.task("j", "t")["nodeInfo"]["nodeId"]
        assert world.provider.events is not None
        world.provider.events.allocation_lost(victim, preempted=True)
        await world.settle()
        assert world.node_state(victim) == "preempted"
        task = world.task("j", "t")
        assert task["executionInfo"]["requeueCount"] == 1
        assert task["nodeInfo"]["nodeId"] != victim

    play(scenario, tmp_path)


def test_a_reconnecting_agent_reports_what_finished_while_it_was_away(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p")
        agent = await world.connect(node)
        world.create_job("j", "p")
        await world.add_task("j", "t")
        (run,) = agent.task_runs()
        await world.disconnect(node)
        assert world.node_state(node) == "unknown"
        back = await world.connect(node, running=[run["aid"]])  # same boot: the agent kept running
        assert world.node_state(node) == "running"
        back.finish(run, 0)
        await world.settle()
        assert world.task("j", "t")["state"] == "completed"
        assert world.task("j", "t")["executionInfo"]["requeueCount"] == 0
        assert world.node_state(node) == "idle"

    play(scenario, tmp_path, node_lost_grace=3600.0)


def test_a_restarted_agent_without_the_run_gets_it_requeued(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p")
        agent = await world.connect(node)
        world.create_job("j", "p")
        await world.add_task("j", "t")
        assert len(agent.task_runs()) == 1
        await world.disconnect(node)
        fresh = await world.connect(node, boot="boot-2")  # a new agent: it runs nothing
        assert world.task("j", "t")["executionInfo"]["requeueCount"] == 1
        assert len(fresh.task_runs()) == 1  # placed again on the same node once it booted

    play(scenario, tmp_path, node_lost_grace=3600.0)


# --- jobs -------------------------------------------------------------------------------------------------


def test_terminating_a_job_ends_its_running_tasks(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p")
        agent = await world.connect(node)
        world.create_job("j", "p")
        await world.add_task("j", "t")
        await world.add_task("j", "waiting")
        (run,) = agent.task_runs()
        job = world.engine.job_ops.get_job("j")
        world.unit(world.engine.job_ops.terminate_job, job, None)
        await world.settle()
        assert run["aid"] in agent.killed()
        assert world.task("j", "waiting")["state"] == "active"  # never started: left as it is, as on Azure
        assert job.doc["state"] == "terminating"  # until the node says the killed run has ended
        agent.finish(run, -9)
        await world.settle()
        assert world.task("j", "t")["state"] == "completed"
        assert job.doc["state"] == "completed"
        assert job.doc["executionInfo"]["terminateReason"] == "UserTerminate"

    play(scenario, tmp_path)


def test_a_job_completes_when_all_its_tasks_do_if_asked(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p")
        agent = await world.connect(node)
        world.create_job("j", "p")
        await world.add_task("j", "t")
        job = world.engine.job_ops.get_job("j")
        from batchyard.service.models import jobs as job_models

        world.unit(
            world.engine.job_ops.update_job,
            job,
            job_models.parse_job_update({"onAllTasksComplete": "terminatejob"}),
            False,
        )
        agent.finish(agent.task_runs()[0])
        await world.settle()
        assert job.doc["state"] == "completed"
        assert job.doc["executionInfo"]["terminateReason"] == "AllTasksComplete"

    play(scenario, tmp_path)


def test_the_engine_says_who_reacts_to_what(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        reactions = world.engine.reactions.describe()
        assert reactions["Tick"][0] == "NodeActionOps._notice_silent_and_restarting_agents"
        assert "NodeOps._check_lost_nodes" in reactions["Tick"]
        assert reactions["NodeFreed"] == ["PoolOps._leave_when_free", "NodeActionOps._restart_when_free"]
        assert reactions["TaskRunFinished"] == ["UsageOps._account_task_run", "TaskRunOps._on_task_run_finished"]

    play(scenario, tmp_path)


def test_an_agent_of_another_protocol_version_is_refused(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p")
        agent = await world.connect(node, version=0)
        assert agent.closed
        assert agent.close_code == AGENT_REFUSED
        assert world.node_state(node) != "idle"
        assert not [message for message in agent.sent if message["t"] == "welcome"]
        current = await world.connect(node)
        assert world.node_state(node) == "idle"
        assert current.sent[0]["t"] == "welcome"

    play(scenario, tmp_path)


def test_the_pool_and_node_concerns_build_and_run_alone(tmp_path: Path) -> None:
    """Concerns are composed, each with only what it calls: pools and nodes (with the certificates a pool
    may reference) work with nothing else built (no tasks, jobs, autoscale or scheduling rounds)."""
    from batchyard.providers.external import ExternalProvider
    from batchyard.providers.registry import ProviderRegistry
    from batchyard.service.clock import AdjustableClock
    from batchyard.service.config import Settings, Timing
    from batchyard.service.engine.certificates import CertificateOps
    from batchyard.service.engine.core import EngineCore
    from batchyard.service.engine.formulas import Formulas
    from batchyard.service.engine.node_sessions import AgentSessionOps
    from batchyard.service.engine.nodes import NodeOps
    from batchyard.service.engine.pools import PoolOps
    from batchyard.service.models import pools as pool_models
    from batchyard.service.persistence.sqlite import SqliteStore
    from tests.api.helpers import pool_body
    from tests.engine.world import FakeAgent

    async def main() -> None:
        provider = FakeProvider()
        registry = ProviderRegistry([provider, ExternalProvider()])
        settings = Settings(data_dir=tmp_path, timing=Timing(housekeeping_interval=3600.0))
        store = SqliteStore(Path(":memory:"))
        core = EngineCore(settings, store, registry, AdjustableClock())
        node_ops = NodeOps(core)
        sessions = AgentSessionOps(core, node_ops)
        pool_ops = PoolOps(core, node_ops, CertificateOps(core), Formulas())
        for concern in (node_ops, sessions, pool_ops):
            core.reactions.add(concern)
        registry.bind(node_ops)
        await core.start()
        body = pool_body("p", targetDedicatedNodes=2)
        with store.transaction():
            pool = pool_ops.create_pool(pool_models.parse_pool_create(body), None)
        await asyncio.sleep(0)
        nodes = list(pool.node_ids)
        assert sorted(provider.asked("start")) == sorted(nodes)
        agents = []
        for node_id in nodes:
            agent = FakeAgent(node_id)
            agents.append(agent)
            asyncio.get_running_loop().create_task(sessions.agent_session(agent))
            await asyncio.sleep(0)
            agent.say({"t": "hello", "node": node_id, "boot": "b", "running": [], "done": [], "version": 1})
        assert [core.nodes[node_id].doc["state"] for node_id in nodes] == ["idle", "idle"]
        with store.transaction():
            pool_ops.resize_pool(pool, pool_models.parse_pool_resize({"targetDedicatedNodes": 0}))
        for _ in range(20):
            await asyncio.sleep(0)
        assert sorted(provider.asked("stop")) == sorted(nodes)
        assert pool.node_ids == []
        for agent in agents:
            agent.close()
        await core.stop()
        store.close()

    asyncio.run(main())
