"""The end of a multi-instance task ends every process of every instance (the seed's "Task lifetime").

Coordination commands start background processes (`cmd &`, `nohup cmd &`, and `setsid cmd &`, which
leaves the command's session) and write their pids into AZ_BATCH_TASK_SHARED_DIR; the test checks
they outlive the coordination command while the task runs and are all gone once it has ended
(success, failure, terminate, delete, requeue, maxWallClockTime).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import ResourceNotFoundError

from tests.api.helpers import create_job, idle_nodes
from tests.api.test_multi_instance import bash, done, mi_pool, mi_task
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]

SHARED = "$AZ_BATCH_TASK_SHARED_DIR"
# Every instance leaves three long sleeps behind; the last one in a session of its own.
COORDINATION = (
    f"sleep 3001 & echo $! > {SHARED}/bg.pid; "
    f"nohup sleep 3002 > /dev/null 2>&1 & echo $! > {SHARED}/nohup.pid; "
    f"setsid sleep 3003 & echo $! > {SHARED}/setsid.pid"
)
COORDINATION_PIDS = ("bg.pid", "nohup.pid", "setsid.pid")
# The application leaves one of its own, then waits for the test's go.
APPLICATION = f"sleep 3004 & echo $! > {SHARED}/app.pid; while [ ! -e {SHARED}/go ]; do sleep 0.1; done"


def shared_dir(service: Service, node_id: str, job_id: str, task_id: str) -> Path:
    return service.data_dir / "nodes" / node_id / "workitems" / job_id / "job-1" / task_id


def proc_start(pid: int) -> str | None:
    """The process' start time (clock ticks since boot); None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def running_task(client: Any, job_id: str, task_id: str) -> Any:
    task = client.get_task(job_id, task_id)
    return task if task.state == "running" else None


def instance_nodes(client: Any, job_id: str, task_id: str) -> list[str]:
    """The master, then the subtasks' nodes."""
    master = wait_for(lambda: running_task(client, job_id, task_id), what=f"{task_id} running").node_info.node_id
    return [master] + [sub.node_info.node_id for sub in client.list_subtasks(job_id, task_id)]


def collect(paths: list[Path]) -> dict[int, str]:
    """Wait for every pid file; the processes they name, each with its start time (so a reused pid is not it)."""
    pids = wait_for(lambda: all(read_pid(p) for p in paths) and [read_pid(p) for p in paths], what=str(paths))
    started = {pid: proc_start(pid) for pid in pids if pid is not None}
    assert all(started.values()), f"a background process is not running: {started}"
    return {pid: start for pid, start in started.items() if start is not None}


def instance_processes(service: Service, nodes: list[str], job_id: str, task_id: str) -> dict[int, str]:
    paths = [shared_dir(service, node, job_id, task_id) / name for node in nodes for name in COORDINATION_PIDS]
    return collect(paths)


def wait_all_gone(processes: dict[int, str]) -> None:
    wait_for(
        lambda: not [pid for pid, start in processes.items() if proc_start(pid) == start],
        what="every process of every instance to end",
    )


def test_primary_exit_ends_every_process_of_every_instance(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mie"), unique("miejob")
    with mi_pool(client, pool_id, 3):
        create_job(client, job_id, pool_id)
        client.create_task(job_id, mi_task("t", bash(APPLICATION + "; exit 3"), 3, bash(COORDINATION)))
        nodes = instance_nodes(client, job_id, "t")
        master_dir = shared_dir(service, nodes[0], job_id, "t")
        processes = collect([master_dir / "app.pid"])  # the application runs: every coordination is done
        processes |= instance_processes(service, nodes, job_id, "t")  # and what they started still runs
        (master_dir / "go").touch()  # the primary exits; the subtasks' background work still runs
        task = wait_for(lambda: done(client, job_id, "t"), what="the task")
        assert task.execution_info.exit_code == 3 and task.execution_info.result == "failure"
        subtasks = list(client.list_subtasks(job_id, "t"))
        assert [s.state for s in subtasks] == ["completed", "completed"]
        assert all(s.exit_code == 0 and s.result == "success" for s in subtasks)
        wait_all_gone(processes)
        wait_for(lambda: idle_nodes(client, pool_id, 3), what="the nodes freed")


def test_terminate_and_delete_end_every_process(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mit"), unique("mitjob")
    with mi_pool(client, pool_id, 2):
        create_job(client, job_id, pool_id)
        for task_id in ("terminated", "deleted"):
            client.create_task(job_id, mi_task(task_id, bash(APPLICATION), 2, bash(COORDINATION)))
            nodes = instance_nodes(client, job_id, task_id)
            processes = collect([shared_dir(service, nodes[0], job_id, task_id) / "app.pid"])
            processes |= instance_processes(service, nodes, job_id, task_id)
            if task_id == "terminated":
                client.terminate_task(job_id, task_id)
                task = wait_for(lambda: done(client, job_id, "terminated"), what="the terminated task")
                assert task.execution_info.failure_info.code == "TaskEnded"
            else:
                client.delete_task(job_id, task_id)
                with pytest.raises(ResourceNotFoundError):
                    client.get_task(job_id, task_id)
            wait_all_gone(processes)
            wait_for(lambda: idle_nodes(client, pool_id, 2), what="the nodes freed")

        # Terminated while still coordinating (one coordination command never returns).
        hang = f"{COORDINATION}; sleep 3005 & echo $! > {SHARED}/hang.pid; wait"
        client.create_task(job_id, mi_task("coordinating", bash("echo never"), 2, bash(hang)))
        nodes = instance_nodes(client, job_id, "coordinating")
        processes = collect([shared_dir(service, node, job_id, "coordinating") / "hang.pid" for node in nodes])
        processes |= instance_processes(service, nodes, job_id, "coordinating")
        client.terminate_task(job_id, "coordinating")
        task = wait_for(lambda: done(client, job_id, "coordinating"), what="the task ended while coordinating")
        assert task.execution_info.failure_info.code == "TaskEnded"
        assert [s.state for s in client.list_subtasks(job_id, "coordinating")] == ["completed"]
        wait_all_gone(processes)


def test_requeue_ends_every_process_of_the_lost_try(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("mirq"), unique("mirqjob")
    with mi_pool(client, pool_id, 3):
        create_job(client, job_id, pool_id)
        client.create_task(job_id, mi_task("t", bash(APPLICATION), 2, bash(COORDINATION)))
        nodes = instance_nodes(client, job_id, "t")
        processes = collect([shared_dir(service, nodes[0], job_id, "t") / "app.pid"])
        processes |= instance_processes(service, nodes, job_id, "t")
        client.begin_remove_nodes(
            pool_id, m.BatchNodeRemoveOptions(node_ids=[nodes[1]], node_deallocation_option="requeue")
        )
        wait_for(lambda: client.get_task(job_id, "t").execution_info.requeue_count >= 1, what="the requeue")
        wait_all_gone(processes)  # the running application on the master too
        client.terminate_task(job_id, "t")
        wait_for(lambda: done(client, job_id, "t"), what="the task to end")


def test_max_wall_clock_time_bounds_the_whole_task(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("miw"), unique("miwjob")
    limit = m.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=6), max_task_retry_count=0)
    with mi_pool(client, pool_id, 2):
        create_job(client, job_id, pool_id)
        # Each command alone is well within the limit (it was once per run); together they are not.
        client.create_task(
            job_id, mi_task("slow", bash("sleep 3.5"), 2, bash(f"{COORDINATION}; sleep 3.5"), constraints=limit)
        )
        nodes = instance_nodes(client, job_id, "slow")
        processes = instance_processes(service, nodes, job_id, "slow")
        task = wait_for(lambda: done(client, job_id, "slow"), what="the task past its wall clock time")
        info = task.execution_info
        assert info.result == "failure" and info.failure_info.code == "TaskEnded"
        assert info.failure_info.category == "servererror"
        assert "wall clock" in info.failure_info.message
        assert [s.state for s in client.list_subtasks(job_id, "slow")] == ["completed"]
        wait_all_gone(processes)

        # A coordination command that never returns is ended by the same limit; the application never runs.
        hang = '[ "$AZ_BATCH_IS_CURRENT_NODE_MASTER" = true ] || sleep 3006'
        limit2 = m.BatchTaskConstraints(max_wall_clock_time=timedelta(seconds=2), max_task_retry_count=0)
        client.create_task(job_id, mi_task("hangs", bash("echo never"), 2, bash(hang), constraints=limit2))
        task = wait_for(lambda: done(client, job_id, "hangs"), what="the hanging task past its wall clock time")
        failure = task.execution_info.failure_info
        assert failure.code == "TaskEnded" and "wall clock" in failure.message
        assert {d.name: d.value for d in failure.details or []}["SubtaskId"] == "1"
        (sub,) = client.list_subtasks(job_id, "hangs")
        assert sub.state == "completed" and sub.failure_info.code == "TaskEnded"
        names = {f.name for f in client.list_task_files(job_id, "hangs")}
        assert "stdout.txt" not in names  # the application command never started
