"""Service Log records written by the engine's units of work, in-process (tests/engine/world.py): a record
commits with the change it tells or not at all, and one that cannot be built does not stop the change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from batchyard.service import errors
from batchyard.service.diagnostics import bodies
from batchyard.service.diagnostics.recorder import DiagnosticRecorder
from batchyard.service.diagnostics.records import AccountResource
from batchyard.service.models import pools as pool_models
from tests.api.helpers import pool_body
from tests.engine.world import World


def operations(world: World) -> list[str]:
    return [orjson.loads(record)["operationName"] for _, record in world.store.outbox_records(0, 1000)]


def recorded(tmp_path: Path) -> World:
    world = World(tmp_path)
    DiagnosticRecorder(world.engine, AccountResource("acct", "sub", "rg"), lambda: True)
    return world


def test_a_change_that_fails_leaves_no_record(tmp_path: Path) -> None:
    async def main() -> None:
        async with recorded(tmp_path) as world:
            await world.create_pool("p", nodes=1)
            assert operations(world) == ["PoolCreateEvent", "PoolResizeStartEvent", "PoolResizeCompleteEvent"]

            def create_then_fail() -> None:
                world.engine.pool_ops.create_pool(pool_models.parse_pool_create(pool_body("q")), None)
                assert operations(world)[3:] == ["PoolCreateEvent", "PoolResizeStartEvent", "PoolResizeCompleteEvent"]
                raise errors.operation_invalid("a later step of the request failed")

            with pytest.raises(errors.BatchError):
                world.unit(create_then_fail)  # the unit of work rolls back, its records with it
            assert len(operations(world)) == 3

    asyncio.run(main())


def test_a_record_that_cannot_be_built_is_left_out_and_the_change_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unforeseen(*args: object) -> bodies.Body:
        raise KeyError("vmSize")

    monkeypatch.setattr(bodies, "pool_create", unforeseen)

    async def main() -> None:
        async with recorded(tmp_path) as world:
            (node,) = await world.create_pool("p", nodes=1)
            assert world.engine.pools["p"].node_ids == [node]
            assert operations(world) == ["PoolResizeStartEvent", "PoolResizeCompleteEvent"]

    asyncio.run(main())
    assert "diagnostic logs: no record for PoolAdded" in caplog.text


def test_without_the_recorder_nothing_is_written(tmp_path: Path) -> None:
    async def main() -> None:
        async with World(tmp_path) as world:
            await world.create_pool("p", nodes=1)
            assert operations(world) == []

    asyncio.run(main())


def test_deleting_a_pool_stops_its_resize_with_a_complete_record(tmp_path: Path) -> None:
    async def main() -> None:
        async with recorded(tmp_path) as world:
            nodes = await world.create_pool("p", nodes=2)
            for node in nodes:
                await world.connect(node)
            pool = world.engine.pools["p"]
            world.unit(
                world.engine.pool_ops.resize_pool,
                pool,
                {"targetDedicatedNodes": 0, "nodeDeallocationOption": "taskcompletion"},
            )
            world.unit(world.engine.pool_ops.delete_pool, pool)
            await world.settle()
            records = [orjson.loads(record) for _, record in world.store.outbox_records(0, 1000)]
            tail = [(r["operationName"], r["properties"].get("resultCode")) for r in records][-4:]
            assert tail[:3] == [
                ("PoolResizeStartEvent", None),
                ("PoolDeleteStartEvent", None),
                ("PoolResizeCompleteEvent", "ResizeStopped"),
            ]
            starts = sum(r["operationName"] == "PoolResizeStartEvent" for r in records)
            completes = sum(r["operationName"] == "PoolResizeCompleteEvent" for r in records)
            assert starts == completes == 2

    asyncio.run(main())


def test_another_accounts_changes_are_not_in_the_services_logs(tmp_path: Path) -> None:
    async def main() -> None:
        async with recorded(tmp_path) as world:
            spec = pool_models.parse_pool_create(pool_body("p", targetDedicatedNodes=0))
            world.unit(world.engine.pool_ops.create_pool, spec, "teamb")
            assert "teamb/p" in world.engine.pools and operations(world) == []
            world.unit(world.engine.pool_ops.create_pool, pool_models.parse_pool_create(pool_body("p")), None)
            assert operations(world)[:1] == ["PoolCreateEvent"]

    asyncio.run(main())
