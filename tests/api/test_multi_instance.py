"""Multi-instance tasks: gang placement, coordination, subtasks, lifetime (the seed's MPI section)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from azure.batch import models as m

from tests.api.helpers import create_job, create_pool, idle_nodes, signed_request
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


@contextmanager
def mi_pool(client: Any, pool_id: str, nodes: int, inter_node: bool = True) -> Iterator[list[Any]]:
    create_pool(client, pool_id, nodes=nodes, enable_inter_node_communication=inter_node)
    try:
        yield wait_for(lambda: idle_nodes(client, pool_id, nodes), what=f"{nodes} idle nodes")
    finally:
        client.begin_delete_pool(pool_id)


def mi_task(task_id: str, command: str, instances: int, coordination: str = "/bin/true", **kw: Any) -> Any:
    return m.BatchTaskCreateOptions(
        id=task_id,
        command_line=command,
        multi_instance_settings=m.MultiInstanceSettings(
            number_of_instances=instances, coordination_command_line=coordination
        ),
        **kw,
    )


def done(client: Any, job_id: str, task_id: str) -> Any:
    task = client.get_task(job_id, task_id)
    return task if task.state == "completed" else None


def raw_task(service: Service, job_id: str, task_id: str) -> dict[str, Any]:
    response = signed_request(service.url, "GET", f"/jobs/{job_id}/tasks/{task_id}")
    assert response.status_code == 200
    return orjson.loads(response.content)


def test_primary_subtasks_environment_and_exit_code(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mi"), unique("mijob")
    with mi_pool(client, pool_id, 3) as nodes:
        create_job(client, job_id, pool_id)
        coordination = bash(
            'env | grep -E "^(CCP_NODES|AZ_BATCH_[A-Z_]*)=" | sort > "$AZ_BATCH_TASK_SHARED_DIR/coord-env.txt"'
        )
        client.create_task(
            job_id, mi_task("t", bash("cat $AZ_BATCH_TASK_SHARED_DIR/coord-env.txt; exit 7"), 3, coordination)
        )
        task = wait_for(lambda: done(client, job_id, "t"), what="the multi-instance task")
        assert task.execution_info.exit_code == 7  # the primary's exit code is the task's
        assert task.execution_info.result == "failure"
        master = task.node_info.node_id
        subtasks = list(client.list_subtasks(job_id, "t"))
        assert [s.id for s in subtasks] == [1, 2]  # the primary (0) is the task itself
        used = {master} | {s.node_info.node_id for s in subtasks}
        assert used == {node.id for node in nodes}  # three distinct nodes
        for sub in subtasks:
            assert sub.state == "completed" and sub.previous_state == "running"
            assert sub.exit_code == 0 and sub.result == "success"
            assert sub.start_time and sub.end_time and sub.node_info.pool_id == pool_id
            assert sub.node_info.task_root_directory == f"workitems/{job_id}/job-1/t"
        addresses = {node.id: node.ip_address for node in client.list_nodes(pool_id)}
        assert len(set(addresses.values())) == 3  # each local node has an address of its own
        order = [master] + [s.node_info.node_id for s in subtasks]
        ips = [addresses[node_id] for node_id in order]
        for index, node_id in enumerate(order):
            shared = service.data_dir / "nodes" / node_id / "workitems" / job_id / "job-1" / "t"
            env = dict(line.split("=", 1) for line in (shared / "coord-env.txt").read_text().splitlines())
            assert env["AZ_BATCH_TASK_SHARED_DIR"] == str(shared)
            assert env["AZ_BATCH_IS_CURRENT_NODE_MASTER"] == ("true" if index == 0 else "false")
            assert env["AZ_BATCH_HOST_LIST"] == ",".join(ips)
            assert env["AZ_BATCH_NODE_LIST"] == ";".join(ips)
            assert env["CCP_NODES"] == "3 " + " ".join(f"{ip} 1" for ip in ips)
            assert env["AZ_BATCH_MASTER_NODE"] == f"{ips[0]}:6000"
        stdout = b"".join(client.download_task_file(job_id, "t", "stdout.txt")).decode()
        assert "AZ_BATCH_IS_CURRENT_NODE_MASTER=true" in stdout
        recent = client.get_node(pool_id, order[1]).recent_tasks
        assert any(item.task_id == "t" and item.subtask_id == 1 for item in recent)

        client.delete_task(job_id, "t")  # every instance's files go
        for node_id in order:
            shared = service.data_dir / "nodes" / node_id / "workitems" / job_id / "job-1" / "t"
            wait_for(lambda shared=shared: not shared.exists(), what=f"{shared} removed")


def test_coordination_failure_fails_and_retries_the_whole_task(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mif"), unique("mifjob")
    with mi_pool(client, pool_id, 2):
        create_job(client, job_id, pool_id)
        coordination = bash('[ "$AZ_BATCH_IS_CURRENT_NODE_MASTER" = true ] || exit 5')
        client.create_task(
            job_id,
            mi_task(
                "t",
                bash("echo application ran"),
                2,
                coordination,
                constraints=m.BatchTaskConstraints(max_task_retry_count=1),
            ),
        )
        task = wait_for(lambda: done(client, job_id, "t"), what="the failing task")
        assert task.execution_info.result == "failure"
        assert task.execution_info.retry_count == 1  # retried as a whole, then failed
        assert task.execution_info.failure_info.code == "FailureExitCode"
        details = {d.name: d.value for d in task.execution_info.failure_info.details or []}
        assert details["SubtaskId"] == "1"
        (sub,) = client.list_subtasks(job_id, "t")
        assert sub.exit_code == 5 and sub.result == "failure" and sub.state == "completed"
        names = {f.name for f in client.list_task_files(job_id, "t")}
        assert "coordination-stdout.txt" in names  # the primary's coordination command ran
        stdout = b"".join(client.download_task_file(job_id, "t", "stdout.txt")) if "stdout.txt" in names else b""
        assert b"application ran" not in stdout  # the application command never started
        wait_for(lambda: idle_nodes(client, pool_id, 2), what="the nodes freed")


def test_task_that_cannot_fit_stays_active_and_says_why(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("minic"), unique("minicjob")
    with mi_pool(client, pool_id, 2, inter_node=False):
        create_job(client, job_id, pool_id)
        client.create_task(job_id, mi_task("never", "/bin/true", 2))
        client.create_task(job_id, m.BatchTaskCreateOptions(id="plain", command_line="/bin/true"))
        wait_for(lambda: done(client, job_id, "plain"), what="the ordinary task")  # not blocked behind it
        body = raw_task(service, job_id, "never")
        assert body["state"] == "active"
        assert body["multiInstanceStatus"]["state"] == "cannotrun"
        assert "enableInterNodeCommunication" in body["multiInstanceStatus"]["reason"]
        # Too few nodes: waits (the pool could grow), also visibly.
        client.create_task(job_id, mi_task("big", "/bin/true", 5))
    pool2, job2 = unique("mifew"), unique("mifewjob")
    with mi_pool(client, pool2, 2):
        create_job(client, job2, pool2)
        client.create_task(job2, mi_task("big", "/bin/true", 3))
        client.create_task(job2, mi_task("fits", "/bin/true", 2))
        wait_for(lambda: done(client, job2, "fits"), what="the gang that fits")
        body = raw_task(service, job2, "big")
        assert body["state"] == "active" and body["multiInstanceStatus"]["state"] == "waitingfornodes"
        assert list(client.list_subtasks(job2, "big")) == []


def test_gangs_wait_for_busy_nodes_all_or_none(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mig"), unique("migjob")
    with mi_pool(client, pool_id, 3):
        create_job(client, job_id, pool_id)
        client.create_task(job_id, m.BatchTaskCreateOptions(id="busy", command_line="/bin/sleep 3"))
        wait_for(lambda: client.get_task(job_id, "busy").state == "running", what="the busy task")
        client.create_task(job_id, mi_task("gang3", bash("sleep 0.5"), 3))
        client.create_task(job_id, mi_task("gang2", bash("sleep 0.5"), 2))
        # gang3 waits for the busy node and keeps the two free ones for itself, without taking them:
        # no subtask, no node running anything of it. gang2 would fit there, but comes after it.
        assert client.get_task(job_id, "gang3").state == "active"
        assert list(client.list_subtasks(job_id, "gang3")) == []
        states = sorted(node.state for node in client.list_nodes(pool_id))
        assert states == ["idle", "idle", "running"], states
        assert client.get_task(job_id, "gang2").state == "active"
        big = wait_for(lambda: done(client, job_id, "gang3"), what="the big gang after the busy task")
        small = wait_for(lambda: done(client, job_id, "gang2"), what="the second gang")
        assert big.execution_info.result == small.execution_info.result == "success"
        assert len(list(client.list_subtasks(job_id, "gang3"))) == 2
        assert small.execution_info.start_time >= big.execution_info.start_time


def test_primary_keeps_coordination_and_application_output(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mio"), unique("miojob")
    with mi_pool(client, pool_id, 2):
        create_job(client, job_id, pool_id)
        client.create_task(
            job_id,
            mi_task(
                "t",
                bash("echo application out; echo application err >&2"),
                2,
                bash("echo coordination out; echo coordination err >&2"),
            ),
        )
        task = wait_for(lambda: done(client, job_id, "t"), what="the task")
        assert task.execution_info.result == "success"

        def read(name: str) -> bytes:
            return b"".join(client.download_task_file(job_id, "t", name))

        assert read("stdout.txt") == b"application out\n"  # what users read: the application command's
        assert read("stderr.txt") == b"application err\n"
        assert read("coordination-stdout.txt") == b"coordination out\n"  # the primary's coordination command
        assert read("coordination-stderr.txt") == b"coordination err\n"
        (sub,) = client.list_subtasks(job_id, "t")
        path = f"{sub.node_info.task_root_directory}/stdout.txt"  # as the seed reads a subtask's output
        assert b"".join(client.download_node_file(pool_id, sub.node_info.node_id, path)) == b"coordination out\n"


def resize(client: Any, pool_id: str, nodes: int) -> None:
    options = m.BatchPoolResizeOptions(target_dedicated_nodes=nodes)
    client.begin_resize_pool(pool_id, options, polling_interval=0.2).result(timeout=60)


def marker(service: Service, job_id: str, task_id: str) -> str | None:
    return (raw_task(service, job_id, task_id).get("multiInstanceStatus") or {}).get("state")


def test_waiting_for_nodes_follows_the_pool_size(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mirs"), unique("mirsjob")
    with mi_pool(client, pool_id, 3):
        create_job(client, job_id, pool_id)
        client.create_task(job_id, m.BatchTaskCreateOptions(id="blocker", command_line="/bin/sleep 600"))
        wait_for(lambda: client.get_task(job_id, "blocker").state == "running", what="the blocker")
        client.create_task(job_id, mi_task("big", "/bin/true", 3))
        assert raw_task(service, job_id, "big")["state"] == "active"
        assert marker(service, job_id, "big") is None  # three nodes: it waits for the busy one only
        resize(client, pool_id, 2)  # an idle node leaves; the busy one stays
        wait_for(lambda: marker(service, job_id, "big") == "waitingfornodes", what="the marker after shrinking")
        wait_for(lambda: client.get_pool(pool_id).allocation_state == "steady", what="a steady pool")
        resize(client, pool_id, 3)
        wait_for(lambda: marker(service, job_id, "big") is None, what="the marker gone after growing")
        client.terminate_task(job_id, "blocker")
        task = wait_for(lambda: done(client, job_id, "big"), what="the gang on the grown pool")
        assert task.execution_info.result == "success"


def test_job_preparation_runs_first_on_every_instance_node(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mip"), unique("mipjob")
    with mi_pool(client, pool_id, 3) as nodes:
        bad = nodes[0].id
        prepared = f"$AZ_BATCH_NODE_SHARED_DIR/{job_id}-prepared"
        prep = bash(f'[ "$AZ_BATCH_NODE_ID" != {bad} ] || exit 4; sleep 1; touch {prepared}')
        create_job(client, job_id, pool_id, job_preparation_task=m.BatchJobPreparationTask(command_line=prep))
        # Fails unless this node's preparation task succeeded before it.
        check = bash(f'[ -e {prepared} ] && [ -d "$AZ_BATCH_JOB_PREP_DIR" ] || exit 9')
        # On all three nodes: preparation fails on one, so the task returns to the queue, and can no longer fit.
        client.create_task(job_id, mi_task("three", check, 3, check))

        def prep_failed_on_bad() -> bool:
            status = {s.node_id: s for s in client.list_job_preparation_and_release_task_status(job_id)}.get(bad)
            info = status.job_preparation_task_execution_info if status else None
            return info is not None and info.state == "completed" and info.result == "failure"

        wait_for(prep_failed_on_bad, what="the preparation task to fail on one node")
        three = client.get_task(job_id, "three")
        assert three.state == "active" and three.execution_info.retry_count == 0
        bad_dir = service.data_dir / "nodes" / bad / "workitems" / job_id / "job-1" / "three"
        assert not (bad_dir / "stdout.txt").exists() and not (bad_dir / "coordination-stdout.txt").exists()

        client.create_task(job_id, mi_task("two", check, 2, check))
        task = wait_for(lambda: done(client, job_id, "two"), what="the gang on the prepared nodes")
        assert task.execution_info.result == "success", task.execution_info.failure_info
        subtasks = list(client.list_subtasks(job_id, "two"))
        used = {task.node_info.node_id} | {s.node_info.node_id for s in subtasks}
        assert bad not in used and len(used) == 2
        assert all(s.state == "completed" and s.exit_code == 0 for s in subtasks)
        statuses = {s.node_id: s for s in client.list_job_preparation_and_release_task_status(job_id)}
        for node_id in used:
            assert statuses[node_id].job_preparation_task_execution_info.result == "success"
        assert client.get_task(job_id, "three").state == "active"


def test_a_waiting_gang_is_not_starved_by_tasks_added_after_it(client: Any, unique: Unique) -> None:
    pool_id, job_id = unique("mi-starve"), unique("mijob")
    with mi_pool(client, pool_id, 3):
        create_job(client, job_id, pool_id)
        # The nodes free up one at a time; each time, a later small task would fit where the gang does not.
        for index, seconds in enumerate((1, 2, 3)):
            client.create_task(
                job_id, m.BatchTaskCreateOptions(id=f"early{index}", command_line=f"/bin/sleep {seconds}")
            )
        wait_for(lambda: all(client.get_task(job_id, f"early{i}").state == "running" for i in range(3)), what="busy")
        client.create_task(job_id, mi_task("gang", "/bin/true", 3))
        for index in range(6):
            client.create_task(job_id, m.BatchTaskCreateOptions(id=f"late{index}", command_line="/bin/sleep 1"))
        gang = wait_for(lambda: done(client, job_id, "gang"), timeout=60, what="the gang")
        assert gang.execution_info.exit_code == 0
        late = [wait_for(lambda i=i: done(client, job_id, f"late{i}"), what="late tasks") for i in range(6)]
        # The gang kept the nodes that freed up: it started before every task added after it.
        assert all(task.execution_info.start_time >= gang.execution_info.start_time for task in late)


def test_subtasks_keep_the_retention_time_of_creation(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mi-keep"), unique("mijob")
    with mi_pool(client, pool_id, 2):
        create_job(client, job_id, pool_id)
        constraints = m.BatchTaskConstraints(retention_time=dt.timedelta(seconds=2))
        client.create_task(job_id, mi_task("t", bash("sleep 2"), 2, constraints=constraints))
        wait_for(lambda: client.get_task(job_id, "t").state == "running", what="the running task")
        # Changed while it runs: the primary keeps its files a day, the subtask still 2 s (the seed).
        task = client.get_task(job_id, "t")
        task.constraints.retention_time = dt.timedelta(days=1)
        client.replace_task(job_id, "t", task)
        task = wait_for(lambda: done(client, job_id, "t"), what="the task")
        (subtask,) = client.list_subtasks(job_id, "t")
        directory = task.node_info.task_root_directory
        primary_dir = service.data_dir / "nodes" / task.node_info.node_id / directory
        subtask_dir = service.data_dir / "nodes" / subtask.node_info.node_id / directory
        wait_for(lambda: not subtask_dir.exists(), timeout=20, what="the subtask's files to go")
        time.sleep(1.5)  # what the primary's removal would take had it kept the old retention too
        assert primary_dir.is_dir()
