"""End to end with an injected clock (`--adjustable-clock`) and Azure's own timings (30 s samples,
a 5-minute interval): a task-based formula grows the pool as tasks queue, then shrinks it with
`taskcompletion` while they run, and the running tasks finish instead of being killed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azure.batch import models as m

from tests.api.helpers import create_job, vm_config
from tests.conftest import advance_clock, make_client, start_service, wait_for

FORMULA = """
// Queued tasks, as the service sampled them (a sample is readable a minute after it is taken).
$queued = max(0, $ActiveTasks.GetSample(1));
$TargetDedicatedNodes = min(3, $queued);
$NodeDeallocationOption = taskcompletion;
"""


def advance_samples(service: Any, count: int) -> None:
    for _ in range(count):
        advance_clock(service, 30)  # one sample period; each step also runs housekeeping (samples, runs)


def test_task_based_formula_grows_and_shrinks_without_killing_tasks(tmp_path: Path) -> None:
    service = start_service(tmp_path / "svc", "--adjustable-clock")
    release = tmp_path / "release"
    try:
        client = make_client(service.url)
        client.create_pool(
            m.BatchPoolCreateOptions(
                id="auto",
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=vm_config(),
                enable_auto_scale=True,
                auto_scale_formula=FORMULA,
                auto_scale_evaluation_interval="PT5M",
            )
        )
        first = client.get_pool("auto").auto_scale_run
        assert first.results.startswith("$TargetDedicatedNodes=0;")  # no samples yet: nothing queued
        create_job(client, "work", "auto")
        wait = f"/bin/bash -c 'while [ ! -f {release} ]; do sleep 0.05; done; echo done'"
        client.create_tasks("work", [m.BatchTaskCreateOptions(id=f"t{i}", command_line=wait) for i in range(3)])

        # Nine sample periods: the next run is not due yet, so nothing changes.
        advance_samples(service, 9)
        pool = client.get_pool("auto")
        assert pool.target_dedicated_nodes == 0 and pool.auto_scale_run.timestamp == first.timestamp
        # The tenth reaches the 5-minute mark: the formula sees 3 queued tasks.
        advance_samples(service, 1)
        pool = client.get_pool("auto")
        assert pool.auto_scale_run.results == (
            "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion;$queued=3"
        )
        assert pool.target_dedicated_nodes == 3
        tasks = wait_for(
            lambda: (ts := list(client.list_tasks("work"))) and all(t.state == "running" for t in ts) and ts,
            what="the three tasks running on the new nodes",
        )
        nodes = {t.node_info.node_id for t in tasks}
        assert len(nodes) == 3

        # Ten more periods with nothing queued: the next run asks for 0 nodes, removed on task completion.
        advance_samples(service, 10)
        pool = client.get_pool("auto")
        assert pool.auto_scale_run.results.startswith("$TargetDedicatedNodes=0;")
        assert pool.target_dedicated_nodes == 0
        states = {n.id: n.state for n in client.list_nodes("auto")}
        assert states == dict.fromkeys(nodes, "leavingpool")
        assert all(t.state == "running" for t in client.list_tasks("work"))  # not killed, not requeued

        release.write_text("go")
        done = wait_for(
            lambda: (ts := list(client.list_tasks("work"))) and all(t.state == "completed" for t in ts) and ts,
            what="the tasks to finish on the leaving nodes",
        )
        for task in done:
            assert task.execution_info.result == "success"
            assert task.execution_info.requeue_count == 0 and task.execution_info.retry_count == 0
        wait_for(lambda: not list(client.list_nodes("auto")), what="the nodes to leave")
        pool = client.get_pool("auto")
        assert pool.current_dedicated_nodes == 0 and pool.allocation_state == "steady"
    finally:
        release.write_text("go")
        service.stop()
