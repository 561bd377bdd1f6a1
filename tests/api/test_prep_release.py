"""Job preparation and release tasks: the seed's JobPrepRelease sample, failures, and the status list."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.batch import models as m
from azure.batch.models._models import BatchNodeRebootOptions  # not exported by azure-batch 15.1.0

from tests.api.helpers import completed, create_job, idle_nodes, temp_pool
from tests.conftest import Service, wait_for

Unique = Callable[[str], str]
SHARED_FILE = "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"


def bash(script: str) -> str:
    return f"/bin/bash -c '{script}'"


def statuses(client: Any, job_id: str) -> dict[str, Any]:
    return {s.node_id: s for s in client.list_job_preparation_and_release_task_status(job_id)}


def test_seed_job_prep_release_sample(client: Any, service: Service, unique: Unique) -> None:
    pool_id, job_id = unique("prep"), unique("prepjob")
    with temp_pool(client, pool_id, nodes=2, slots=1):
        nodes = wait_for(lambda: idle_nodes(client, pool_id, 2), what="two idle nodes")
        create_job(
            client,
            job_id,
            pool_id,
            job_preparation_task=m.BatchJobPreparationTask(
                command_line=bash(f'echo "$AZ_BATCH_NODE_ID tasks:" > {SHARED_FILE}; echo prep > prep.txt')
            ),
            job_release_task=m.BatchJobReleaseTask(command_line=bash(f"rm {SHARED_FILE}")),
        )
        client.create_task_collection(
            job_id,
            m.BatchTaskGroup(
                task_values=[
                    m.BatchTaskCreateOptions(
                        id=f"task{i:03d}",
                        command_line=bash(
                            f'sleep 0.3; echo "    $AZ_BATCH_TASK_ID" >> {SHARED_FILE}; '
                            "cat $AZ_BATCH_JOB_PREP_WORKING_DIR/prep.txt"
                        ),
                    )
                    for i in range(1, 9)
                ]
            ),
        )
        wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed == 8, what="all tasks")
        seen: dict[str, list[str]] = {}
        for node in nodes:
            path = service.data_dir / "nodes" / node.id / "shared" / "job_prep_and_release.txt"
            if path.exists():
                lines = path.read_text().splitlines()
                assert lines[0] == f"{node.id} tasks:"
                seen[node.id] = [line.strip() for line in lines[1:]]
        assert sorted(t for ids in seen.values() for t in ids) == [f"task{i:03d}" for i in range(1, 9)]
        for task in client.list_tasks(job_id):
            assert b"".join(client.download_task_file(job_id, task.id, "stdout.txt")) == b"prep\n"

        before = statuses(client, job_id)
        assert set(before) == set(seen)  # prep ran only on nodes that got tasks
        for status in before.values():
            assert status.job_preparation_task_execution_info.exit_code == 0
            assert status.job_preparation_task_execution_info.state == "completed"
            assert status.job_release_task_execution_info is None

        client.begin_terminate_job(job_id, {"terminateReason": "done"}, polling_interval=0.2).result(timeout=30)
        job = wait_for(lambda: (j := client.get_job(job_id)).state == "completed" and j, what="job completion")
        after = statuses(client, job_id)
        for node_id, status in after.items():
            assert status.job_release_task_execution_info.exit_code == 0
            assert not (service.data_dir / "nodes" / node_id / "shared" / "job_prep_and_release.txt").exists()
        assert job.execution_info.termination_reason == "done"
        # Deleting after terminate does not run the release task again.
        client.begin_delete_job(job_id, polling_interval=0.2).result(timeout=30)


def test_failed_preparation_keeps_the_jobs_tasks_off_that_node(client: Any, unique: Unique) -> None:
    pool_id, job_id, other = unique("prepfail"), unique("badprep"), unique("other")
    with temp_pool(client, pool_id, nodes=1, slots=2):
        (node,) = wait_for(lambda: idle_nodes(client, pool_id, 1), what="the node")
        create_job(
            client,
            job_id,
            pool_id,
            job_preparation_task=m.BatchJobPreparationTask(
                command_line=bash("exit 4"), constraints=m.BatchTaskConstraints(max_task_retry_count=1)
            ),
        )
        client.create_task(job_id, m.BatchTaskCreateOptions(id="held", command_line="/bin/true"))
        status = wait_for(
            lambda: (
                (s := statuses(client, job_id).get(node.id))
                and s.job_preparation_task_execution_info.state == "completed"
                and s
            ),
            what="the preparation task to fail",
        )
        info = status.job_preparation_task_execution_info
        assert (info.exit_code, info.result, info.retry_count) == (4, "failure", 1)
        task = wait_for(lambda: (t := client.get_task(job_id, "held")).state == "active" and t, what="task back")
        assert task.previous_state == "preparing"
        # The node keeps serving other jobs.
        create_job(client, other, pool_id)
        client.create_task(other, m.BatchTaskCreateOptions(id="fine", command_line="/bin/true"))
        fine = wait_for(lambda: completed(client, other, "fine"), what="the other job's task")
        assert fine.node_info.node_id == node.id
        assert client.get_task(job_id, "held").state == "active"


def test_release_runs_on_delete_and_the_job_waits_for_it(
    client: Any, service: Service, unique: Unique, tmp_path: Path
) -> None:
    pool_id, job_id = unique("reldel"), unique("reljob")
    marker = tmp_path / "released"
    with temp_pool(client, pool_id, nodes=1):
        wait_for(lambda: idle_nodes(client, pool_id, 1), what="the node")
        create_job(
            client,
            job_id,
            pool_id,
            job_preparation_task=m.BatchJobPreparationTask(command_line="/bin/true"),
            job_release_task=m.BatchJobReleaseTask(command_line=bash(f"sleep 1; touch {marker}")),
        )
        client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
        wait_for(lambda: completed(client, job_id, "t"), what="the task")
        client.begin_delete_job(job_id, polling_interval=0.2)
        assert client.get_job(job_id).state == "deleting"
        wait_for(lambda: marker.exists(), what="the release task")
        wait_for(lambda: job_id not in {j.id for j in client.list_jobs()}, what="the job to go")


def test_preparation_reruns_after_a_reboot_when_asked(client: Any, service: Service, unique: Unique) -> None:
    pool_id = unique("prepboot")
    with temp_pool(client, pool_id, nodes=1):
        (node,) = wait_for(lambda: idle_nodes(client, pool_id, 1), what="the node")
        counts = {}
        for rerun in (True, False):
            job_id = unique(f"rerun{rerun}".lower())
            counter = f"$AZ_BATCH_NODE_SHARED_DIR/{job_id}.count"
            create_job(
                client,
                job_id,
                pool_id,
                job_preparation_task=m.BatchJobPreparationTask(
                    command_line=bash(f"echo x >> {counter}"), rerun_on_node_reboot_after_success=rerun
                ),
            )
            client.create_task(job_id, m.BatchTaskCreateOptions(id="before", command_line="/bin/true"))
            wait_for(lambda j=job_id: completed(client, j, "before"), what="the first task")
            counts[rerun] = (job_id, service.data_dir / "nodes" / node.id / "shared" / f"{job_id}.count")
        boot = client.get_node(pool_id, node.id).last_boot_time
        reboot = BatchNodeRebootOptions(node_reboot_kind="requeue")
        client.begin_reboot_node(pool_id, node.id, reboot).result(timeout=60)
        wait_for(
            lambda: (n := client.get_node(pool_id, node.id)).state == "idle" and n.last_boot_time > boot,
            what="the reboot",
        )
        for rerun, (job_id, path) in counts.items():
            client.create_task(job_id, m.BatchTaskCreateOptions(id="after", command_line="/bin/true"))
            wait_for(lambda j=job_id: completed(client, j, "after"), what="the task after the reboot")
            assert len(path.read_text().splitlines()) == (2 if rerun else 1)
