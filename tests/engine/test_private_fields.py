"""What only the engine uses stays out of the wire documents: in the records' typed `private` fields, and
stored apart (a `private` column beside each `doc`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from batchyard.service.models import jobs as job_models
from tests.engine.world import World

_TABLES = ("pools", "nodes", "jobs", "schedules", "tasks", "certificates")


def _stored_private_keys(world: World) -> dict[str, list[str]]:
    """Top-level document keys starting with "_", per table (there should be none)."""
    found: dict[str, list[str]] = {}
    for table in _TABLES:
        for (raw,) in world.store._db.execute(f"SELECT doc FROM {table}"):
            found.setdefault(table, []).extend(key for key in orjson.loads(raw) if key.startswith("_"))
    return {table: keys for table, keys in found.items() if keys}


def test_documents_hold_only_wire_properties_through_a_lifecycle(tmp_path: Path) -> None:
    async def scenario(world: World) -> None:
        (node,) = await world.create_pool("p", slots=2)
        agent = await world.connect(node)
        manager = {"id": "jm", "commandLine": "/bin/true", "runExclusive": False}
        world.create_job("j", "p", jobManagerTask=manager, usesTaskDependencies=True)
        await world.add_task("j", "a", "/bin/false", constraints={"maxTaskRetryCount": 0})
        await world.add_task("j", "b", dependsOn={"taskIds": ["a"]})
        schedule = {"id": "s", "schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}}
        world.unit(world.engine.schedule_ops.create_schedule, job_models.parse_job_schedule_create(schedule), None)
        world.housekeeping()
        await world.settle()
        running = {run["aid"]: run for run in agent.task_runs()}
        assert len(running) == 2  # the job manager and "a"
        job_manager = world.task("j", "jm")
        assert job_manager.private.job_manager and job_manager.private.run_id in running
        assert world.engine.jobs["s:job-1"].private.schedule == "s"
        assert world.engine.schedule_ops.schedules["s"].private.active_job == "s:job-1"
        assert _stored_private_keys(world) == {}

        for run in running.values():
            agent.finish(run, 1 if run["cmd"] == "/bin/false" else 0)
        await world.settle()
        failed = world.task("j", "a")
        assert failed["state"] == "completed" and failed.private.run_id is None
        assert failed.private.dependency_action == "block"  # a failure blocks dependents by default
        assert world.task("j", "b")["dependencyStatus"]["state"] == "blocked"
        assert not [key for key in failed if key.startswith("_")]
        assert _stored_private_keys(world) == {}

    async def main() -> None:
        async with World(tmp_path) as world:
            await scenario(world)

    asyncio.run(main())
