"""Compute nodes, scheduling and start tasks through the SDK over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import ResourceNotFoundError

from tests.api.helpers import (
    completed,
    create_job,
    delete_pool_quietly,
    error_code,
    idle_nodes,
    read_task_file,
    run_task,
    serve_directory,
    temp_pool,
    unique_sleep,
    vm_config,
)
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]
SLOTS = 4


@pytest.fixture(scope="module")
def pool(client: Any) -> Iterator[str]:
    """Two nodes with four slots each, shared by the scheduling tests (each leaves the nodes idle)."""
    pool_id = f"nodes-pool-{os.getpid()}"
    with temp_pool(client, pool_id, nodes=2, slots=SLOTS):
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        yield pool_id


@pytest.fixture
def job(client: Any, pool: str, unique: Unique) -> Iterator[str]:
    job_id = unique("job")
    create_job(client, job_id, pool)
    yield job_id
    client.begin_delete_job(job_id, polling_interval=0.2)
    wait_for(lambda: all(n.running_tasks_count == 0 for n in client.list_nodes(pool)), what="the nodes to be free")


def _running(client: Any, job_id: str, count: int) -> list[Any] | None:
    tasks = [t for t in client.list_tasks(job_id) if t.state == "running"]
    return tasks if len(tasks) >= count else None


def _node(client: Any, pool_id: str, predicate: Callable[[Any], bool]) -> Any:
    nodes = [n for n in client.list_nodes(pool_id) if predicate(n)]
    return nodes[0] if nodes else None


# --- nodes --------------------------------------------------------------------------------------------


def test_node_fields(client: Any, pool: str, job: str, service: Service) -> None:
    before = datetime.now().astimezone() - timedelta(minutes=5)
    run_task(client, job, "one", "/bin/echo one")
    nodes = list(client.list_nodes(pool))
    assert len(nodes) == 2
    ran = client.get_task(job, "one").node_info.node_id
    for node in nodes:
        assert node.state == "idle"
        assert node.scheduling_state == "enabled"
        assert node.ip_address
        assert node.vm_size == "standard_d2s_v3"
        assert node.is_dedicated is True
        assert before < node.allocation_time <= node.last_boot_time
        assert node.state_transition_time >= node.allocation_time
        assert node.running_tasks_count == 0
        assert node.running_task_slots_count == 0
        assert node.url == f"{service.url}/pools/{pool}/nodes/{node.id}"
        assert node.affinity_id
        assert node.node_agent_info.version
        assert node.start_task_info is None  # the pool has no start task
        got = client.get_node(pool, node.id)
        assert got.id == node.id and got.state == node.state
    node = client.get_node(pool, ran)
    assert node.total_tasks_run >= 1
    assert node.total_tasks_succeeded >= 1
    recent = [t for t in node.recent_tasks if t.task_id == "one" and t.job_id == job]
    assert recent and recent[0].task_state == "completed"
    assert recent[0].task_url.endswith(f"/jobs/{job}/tasks/one")
    assert recent[0].execution_info.exit_code == 0
    selected = client.get_node(pool, ran, select=["id", "state"])
    assert selected.id == ran and selected.vm_size is None


def test_running_counts_on_a_node(client: Any, pool: str, job: str) -> None:
    client.create_task(job, m.BatchTaskCreateOptions(id="two", command_line=unique_sleep(30), required_slots=2))
    (task,) = wait_for(lambda: _running(client, job, 1), what="the task to run")
    node = client.get_node(pool, task.node_info.node_id)
    assert node.state == "running"
    assert node.running_tasks_count == 1
    assert node.running_task_slots_count == 2
    assert any(t.task_id == "two" and t.task_state == "running" for t in node.recent_tasks)
    client.terminate_task(job, "two")
    node = wait_for(
        lambda: (n := client.get_node(pool, task.node_info.node_id)).state == "idle" and n,
        what="the node to be idle again",
    )
    assert node.running_task_slots_count == 0


def test_node_not_found(client: Any, pool: str) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_node(pool, "tvmps_0000000000000000000000000000000_d")
    assert error_code(info.value) == "NodeNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_node("no-such-pool-anywhere", "tvmps_0000000000000000000000000000000_d")
    assert error_code(info.value) == "PoolNotFound"


# --- scheduling -------------------------------------------------------------------------------------


def _intervals(client: Any, job_id: str, task_ids: list[str]) -> list[tuple[str, float, float]]:
    out = []
    for task_id in task_ids:
        start, end = read_task_file(client, job_id, task_id, "stdout.txt").split()
        out.append((client.get_task(job_id, task_id).node_info.node_id, float(start), float(end)))
    return out


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def test_no_more_tasks_than_slots_run_at_once(client: Any, pool: str, job: str) -> None:
    ids = [f"c{i:02}" for i in range(20)]
    client.create_tasks(
        job,
        [
            m.BatchTaskCreateOptions(id=i, command_line="/bin/bash -c 'date +%s.%N; sleep 0.4; date +%s.%N'")
            for i in ids
        ],
    )
    peak = 0

    def done() -> bool:
        nonlocal peak
        for node in client.list_nodes(pool):
            assert node.running_task_slots_count <= SLOTS
            peak = max(peak, node.running_task_slots_count)
        return client.get_job_task_counts(job).task_counts.completed == len(ids)

    wait_for(done, what="all tasks to complete", interval=0.05)
    intervals = _intervals(client, job, ids)
    per_node: dict[str, list[tuple[float, float]]] = {}
    for node_id, start, end in intervals:
        per_node.setdefault(node_id, []).append((start, end))
    assert len(per_node) == 2
    for spans in per_node.values():
        assert _max_overlap(spans) <= SLOTS
    assert _max_overlap([(start, end) for _, start, end in intervals]) > SLOTS  # both nodes were used at once
    assert peak >= 2
    assert all(client.get_task(job, i).execution_info.result == "success" for i in ids)


def test_spread_and_pack_placement(client: Any, pool: str, job: str, unique: Unique) -> None:
    for task_id in ("s1", "s2"):
        client.create_task(job, m.BatchTaskCreateOptions(id=task_id, command_line=unique_sleep(30)))
    running = wait_for(lambda: _running(client, job, 2), what="two running tasks")
    assert len({t.node_info.node_id for t in running}) == 2, "spread puts one task on each node"
    for task in running:
        client.terminate_task(job, task.id)

    pack_pool, pack_job = unique("pack"), unique("packjob")
    policy = m.BatchTaskSchedulingPolicy(node_fill_type="pack")
    with temp_pool(client, pack_pool, nodes=2, slots=SLOTS, task_scheduling_policy=policy):
        assert client.get_pool(pack_pool).task_scheduling_policy.node_fill_type == "pack"
        wait_for(lambda: idle_nodes(client, pack_pool, 2), what="two idle nodes in the pack pool")
        create_job(client, pack_job, pack_pool)
        for task_id in ("p1", "p2", "p3"):
            client.create_task(pack_job, m.BatchTaskCreateOptions(id=task_id, command_line=unique_sleep(30)))
        running = wait_for(lambda: _running(client, pack_job, 3), what="three running tasks")
        assert len({t.node_info.node_id for t in running}) == 1, "pack fills one node first"
        client.begin_delete_job(pack_job, polling_interval=0.2)


def test_higher_priority_job_starts_first(client: Any, pool: str, unique: Unique) -> None:
    blockers, low, high = unique("block"), unique("low"), unique("high")
    create_job(client, blockers, pool)
    create_job(client, low, pool, priority=0)
    create_job(client, high, pool, priority=500)
    try:
        client.create_tasks(
            blockers, [m.BatchTaskCreateOptions(id=f"b{i}", command_line=unique_sleep(30)) for i in range(2 * SLOTS)]
        )
        wait_for(lambda: _running(client, blockers, 2 * SLOTS), what="every slot busy")
        client.create_task(low, m.BatchTaskCreateOptions(id="l", command_line=unique_sleep(30)))
        client.create_task(high, m.BatchTaskCreateOptions(id="h", command_line=unique_sleep(30)))
        assert client.get_task(low, "l").state == "active"
        client.terminate_task(blockers, "b0")
        wait_for(lambda: client.get_task(high, "h").state == "running", what="the high-priority task to start")
        assert client.get_task(low, "l").state == "active"
        client.terminate_task(blockers, "b1")
        wait_for(lambda: client.get_task(low, "l").state == "running", what="the low-priority task next")
    finally:
        for job_id in (blockers, low, high):
            client.begin_delete_job(job_id, polling_interval=0.2)
        wait_for(lambda: all(n.running_tasks_count == 0 for n in client.list_nodes(pool)), what="free nodes")


# --- start tasks ------------------------------------------------------------------------------------


def test_start_task_wait_for_success_and_staging(client: Any, unique: Unique, tmp_path: Path, service: Service) -> None:
    pool_id, job_id = unique("start"), unique("job")
    (tmp_path / "tool.sh").write_text("#!/bin/sh\necho tool says $1\n")
    staged = unique("tool")
    command = f"/bin/bash -c 'sleep 1; cp tool.sh \"$AZ_BATCH_NODE_SHARED_DIR/{staged}.sh\"; echo staged'"
    with (
        serve_directory(tmp_path) as base,
        temp_pool(
            client,
            pool_id,
            nodes=1,
            start_task=m.BatchStartTask(
                command_line=command,
                resource_files=[m.ResourceFile(http_url=f"{base}/tool.sh", file_path="tool.sh", file_mode="0755")],
                environment_settings=[m.EnvironmentSetting(name="STAGE", value="1")],
                wait_for_success=True,
            ),
        ),
    ):
        node = wait_for(
            lambda: _node(client, pool_id, lambda n: n.state == "waitingforstarttask"),
            what="the node to wait for its start task",
        )
        assert node.start_task_info.state == "running"
        create_job(client, job_id, pool_id)
        client.create_task(
            job_id,
            m.BatchTaskCreateOptions(
                id="use", command_line=f"/bin/bash -c '\"$AZ_BATCH_NODE_SHARED_DIR/{staged}.sh\" hello'"
            ),
        )
        assert client.get_task(job_id, "use").state == "active"  # nothing runs before the start task succeeds
        node = wait_for(
            lambda: _node(client, pool_id, lambda n: n.state in ("idle", "running")), what="the node to become usable"
        )
        info = node.start_task_info
        assert info.state == "completed"
        assert info.result == "success"
        assert info.exit_code == 0
        assert info.retry_count == 0
        assert info.start_time <= info.end_time
        assert info.end_time - info.start_time >= timedelta(seconds=0.9)
        assert node.start_task.command_line == command
        task = wait_for(lambda: completed(client, job_id, "use"), what="the task using the staged script")
        assert task.execution_info.result == "success"
        assert read_task_file(client, job_id, "use", "stdout.txt") == "tool says hello\n"
        assert task.execution_info.start_time >= info.end_time - timedelta(seconds=1)


def test_failing_start_task_makes_the_node_unusable_for_tasks(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("badstart"), unique("job")
    lock = unique("lock")
    # The nodes' roots are siblings: the first node to take the lock succeeds, the other always fails.
    command = f"/bin/bash -c 'mkdir \"$AZ_BATCH_NODE_ROOT_DIR/../{lock}\" || exit 3'"
    with temp_pool(
        client,
        pool_id,
        nodes=2,
        start_task=m.BatchStartTask(
            command_line=command,
            max_task_retry_count=2,
            wait_for_success=True,
            # The lock is beside the node roots, where only an admin writes (a root service's task users do not).
            user_identity=m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level="admin")),
        ),
    ):
        bad = wait_for(
            lambda: _node(client, pool_id, lambda n: n.state == "starttaskfailed"),
            what="a node with a failed start task",
        )
        good = wait_for(lambda: _node(client, pool_id, lambda n: n.state == "idle"), what="the other node idle")
        info = bad.start_task_info
        assert info.state == "completed"
        assert info.result == "failure"
        assert info.exit_code == 3
        assert info.retry_count == 2
        assert info.failure_info is not None and info.failure_info.category == "usererror"
        assert bad.errors and bad.errors[0].code
        assert good.start_task_info.result == "success"

        create_job(client, job_id, pool_id)
        client.create_tasks(job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line="/bin/true") for i in range(4)])
        wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed == 4, what="the tasks to run")
        assert {client.get_task(job_id, f"t{i}").node_info.node_id for i in range(4)} == {good.id}
        assert client.get_node(pool_id, bad.id).total_tasks_run == 0
        assert client.get_node(pool_id, bad.id).state == "starttaskfailed"


def test_a_nodes_extensions_are_its_pools(client: Any, unique: Unique) -> None:
    pool_id = unique("ext-pool")
    monitor = m.VMExtension(
        name="monitor",
        publisher="Microsoft.Azure.Monitor",
        type="AzureMonitorLinuxAgent",
        type_handler_version="1.0",
        auto_upgrade_minor_version=True,
        settings={"level": "info"},
        protected_settings={"workspaceKey": "never-shown"},
    )
    config = vm_config()
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=m.VirtualMachineConfiguration(
                image_reference=config.image_reference, node_agent_sku_id=config.node_agent_sku_id, extensions=[monitor]
            ),
            target_dedicated_nodes=1,
        )
    )
    try:
        (node,) = wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=60, what="an idle node")
        listed, agent = list(client.list_node_extensions(pool_id, node.id))
        assert (agent.vm_extension.name, agent.vm_extension.type) == ("batchNodeExtension", "CustomScript")
        assert listed.provisioning_state == "Succeeded"
        assert listed.vm_extension.name == "monitor" and listed.vm_extension.type == "AzureMonitorLinuxAgent"
        assert listed.vm_extension.settings == {"level": "info"}
        assert listed.vm_extension.protected_settings is None  # a secret: never answered
        assert listed.instance_view.name == "monitor"
        assert listed.instance_view.statuses[0].code == "ProvisioningState/succeeded"
        got = client.get_node_extension(pool_id, node.id, "monitor")
        assert got.vm_extension.publisher == "Microsoft.Azure.Monitor"
        with pytest.raises(ResourceNotFoundError) as missing:
            client.get_node_extension(pool_id, node.id, "no-such-extension")
        assert error_code(missing.value) == "NodeExtensionNotFound"
        with pytest.raises(ResourceNotFoundError) as no_node:
            list(client.list_node_extensions(pool_id, "tvmps_nope_d"))
        assert error_code(no_node.value) == "NodeNotFound"
    finally:
        delete_pool_quietly(client, pool_id)
