"""Slurm nodes whose jobs end under them (scancel, preemption, a cut-off agent) and a service that
restarts, through the official SDK against the real service and a real single-host Slurm cluster."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m

from tests.api.helpers import completed, create_job, processes_with
from tests.api.slurm_support import (
    active_jobs,
    all_idle,
    create_slurm_pool,
    delete_and_wait,
    module_service,
    node_states,
    start_slurm_service,
)
from tests.conftest import Service, make_client, wait_for
from tests.slurm_cluster import SlurmCluster, running_cluster

Unique = Callable[[str], str]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    yield from running_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def slurm_service(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from module_service(slurm, tmp_path_factory)


@pytest.fixture(scope="module")
def client(slurm_service: Service) -> Any:
    return make_client(slurm_service.url)


def test_scancel_of_a_nodes_job_requeues_its_task_and_the_node_comes_back(
    client: Any, slurm: SlurmCluster, unique: Unique, tmp_path: Path
) -> None:
    pool_id, job_id = unique("slurmlost"), unique("slurmlostjob")
    create_slurm_pool(client, pool_id, 3)
    wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="3 idle Slurm nodes")
    create_job(client, job_id, pool_id)
    marks = tmp_path / "marks.txt"
    marks.touch()
    marks.chmod(0o666)
    command = (
        f"/bin/bash -c 'echo start $AZ_BATCH_NODE_ID >> {marks}; sleep 6 && echo end $AZ_BATCH_NODE_ID >> {marks}'"
    )
    client.create_task(job_id, m.BatchTaskCreateOptions(id="long", command_line=command))
    running = wait_for(
        lambda: (t := client.get_task(job_id, "long")).state == "running" and marks.read_text() and t,
        timeout=60,
        what="the task to run",
    )
    lost_node = running.node_info.node_id
    lost_job = active_jobs(slurm)[lost_node]["id"]
    # Slurm signals every process of the job: the task's `sleep` dies, so its run ends by the signal (not
    # by `echo end`) and is lost with the node rather than finished.
    slurm.command("scancel", lost_job)

    task = wait_for(lambda: completed(client, job_id, "long"), timeout=90, what="the requeued task to complete")
    assert task.execution_info.exit_code == 0
    assert (task.execution_info.requeue_count, task.execution_info.retry_count) == (1, 0)
    assert task.node_info.node_id != lost_node
    lines = marks.read_text().splitlines()
    assert lines.count(f"start {lost_node}") == 1
    assert [line for line in lines if line.startswith("end")] == [f"end {task.node_info.node_id}"]

    # The pool's target still asks for 3 nodes: the lost node gets a new job and is idle again.
    wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="the lost node back")
    jobs = active_jobs(slurm)
    assert jobs[lost_node]["id"] != lost_job and jobs[lost_node]["state"] == "RUNNING"
    assert len(jobs) == 3
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def test_slurm_preemption_is_batch_preemption(client: Any, slurm: SlurmCluster, unique: Unique, tmp_path: Path) -> None:
    pool_id, job_id = unique("slurmpre"), unique("slurmprejob")
    create_slurm_pool(client, pool_id, 1)
    (node_id,) = wait_for(lambda: all_idle(client, pool_id, 1), timeout=90, what="an idle Slurm node")
    create_job(client, job_id, pool_id)
    marks = tmp_path / "marks.txt"
    marks.touch()
    marks.chmod(0o666)
    command = f"/bin/bash -c 'echo start >> {marks}; sleep 4 && echo end >> {marks}'"
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=command))
    wait_for(lambda: marks.read_text(), timeout=60, what="the task to start")
    # A job of the higher-tier partition wants the whole Slurm node: Slurm preempts the Batch node's job.
    urgent = slurm.command(
        "sbatch", "--parsable", "--partition=urgent", "--cpus-per-task=8", "--output=/dev/null", "--wrap", "sleep 5"
    )
    wait_for(lambda: client.get_node(pool_id, node_id).state == "preempted", timeout=30, what="the node preempted")
    # Once the urgent job is done, the node's new job runs, and the requeued task runs there to the end.
    task = wait_for(lambda: completed(client, job_id, "t"), timeout=90, what="the requeued task to complete")
    assert task.execution_info.exit_code == 0
    assert (task.execution_info.requeue_count, task.execution_info.retry_count) == (1, 0)
    assert marks.read_text().split() == ["start", "start", "end"]
    assert urgent.strip() not in {job["id"] for job in active_jobs(slurm).values()}
    assert client.get_node(pool_id, node_id).state == "idle"
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def test_low_priority_nodes_run_in_the_preemptible_partition_and_only_they_are_preempted(
    client: Any, slurm: SlurmCluster, unique: Unique
) -> None:
    pool_id = unique("slurmspot")
    # Dedicated nodes in `urgent`, Spot/low-priority ones in `batch`, which `urgent` preempts.
    metadata = {"batchyard-slurm-partition": "urgent", "batchyard-slurm-low-priority-partition": "batch"}
    create_slurm_pool(client, pool_id, 1, metadata, target_low_priority_nodes=1)
    nodes = wait_for(lambda: all_idle(client, pool_id, 2), timeout=90, what="two idle Slurm nodes")
    (spot,) = [node for node in nodes if node.endswith("_p")]
    (dedicated,) = [node for node in nodes if node.endswith("_d")]
    jobs = active_jobs(slurm)
    assert (jobs[spot]["partition"], jobs[dedicated]["partition"]) == ("batch", "urgent")
    # A job of `urgent` that needs the CPUs the Spot node holds: Slurm preempts that node's job only.
    urgent = slurm.command(
        "sbatch",
        "--parsable",
        "--partition=urgent",
        "--cpus-per-task=6",
        "--mem=1G",
        "--output=/dev/null",
        *("--wrap", "sleep 3"),
    )
    wait_for(lambda: client.get_node(pool_id, spot).state == "preempted", timeout=30, what="the Spot node preempted")
    assert client.get_node(pool_id, dedicated).state == "idle"
    assert not client.get_node(pool_id, spot).is_dedicated
    wait_for(lambda: urgent.strip() not in {job["id"] for job in active_jobs(slurm).values()}, timeout=30)
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def test_a_node_cut_off_has_its_job_cancelled_before_its_task_runs_again(
    client: Any, slurm: SlurmCluster, unique: Unique, tmp_path: Path
) -> None:
    pool_id, job_id = unique("slurmcut"), unique("slurmcutjob")
    create_slurm_pool(client, pool_id, 2)
    wait_for(lambda: all_idle(client, pool_id, 2), timeout=90, what="2 idle Slurm nodes")
    create_job(client, job_id, pool_id)
    marker = f"6.{random.randrange(10**8, 10**9)}"  # the sleep's argument finds its processes
    marks = tmp_path / "marks.txt"
    marks.touch()
    marks.chmod(0o666)
    command = f"/bin/bash -c '/bin/sleep {marker} && echo end $AZ_BATCH_NODE_ID >> {marks}'"
    client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line=command))
    running = wait_for(
        lambda: (t := client.get_task(job_id, "t")).state == "running" and _sleeps(marker) and t,
        timeout=60,
        what="the task's process",
    )
    cut_node = running.node_info.node_id
    first_run = _sleeps(marker)
    cut_job = active_jobs(slurm)[cut_node]["id"]
    # The node's agent stops answering (frozen), its task still running: the service cannot tell the
    # agent to end it, so it cancels the node's Slurm job and waits for its end before requeueing.
    (agent,) = [pid for pid in processes_with(f"--node-id {cut_node}") if "batchyard.agent" in _cmdline(pid)]
    os.kill(agent, signal.SIGSTOP)
    again = wait_for(
        lambda: (t := client.get_task(job_id, "t")).state == "running" and t.node_info.node_id != cut_node and t,
        timeout=60,
        what="the task running again on the other node",
    )
    assert not set(first_run) & set(_sleeps(marker))  # gone before it ran again
    assert cut_job not in {job["id"] for job in active_jobs(slurm).values()}
    task = wait_for(lambda: completed(client, job_id, "t"), timeout=60, what="the task to complete")
    assert task.execution_info.exit_code == 0 and task.execution_info.requeue_count == 1
    assert marks.read_text().split() == ["end", again.node_info.node_id]
    wait_for(lambda: all_idle(client, pool_id, 2), timeout=90, what="the cut-off node back with a new job")
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def _sleeps(marker: str) -> list[int]:
    """The `/bin/sleep <marker>` processes (not the shells whose command lines mention them)."""
    return [pid for pid in processes_with(f"sleep {marker}") if _cmdline(pid).startswith("/bin/sleep")]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_restarted_service_finds_its_nodes_jobs_and_resubmits_a_vanished_one(
    slurm: SlurmCluster, unique: Unique, tmp_path_factory: pytest.TempPathFactory
) -> None:
    service = start_slurm_service(slurm, tmp_path_factory.mktemp("slurm-restart"))
    try:
        client = make_client(service.url)
        # 6 of the 8 CPUs taken: one node's job runs, the other's pends.
        blocker = slurm.command(
            "sbatch", "--parsable", "--cpus-per-task=6", "--mem=1G", "--output=/dev/null", "--wrap", "sleep 300"
        )
        pool_id = unique("slurmrestart")
        create_slurm_pool(client, pool_id, 2)
        states = wait_for(
            lambda: sorted((s := node_states(client, pool_id)).values()) == ["creating", "idle"] and s,
            timeout=90,
            what="one idle node and one waiting for its job",
        )
        before = {node_id: job["id"] for node_id, job in active_jobs(slurm).items()}
        assert set(before) == set(states)

        (waiting,) = [node_id for node_id, state in states.items() if state == "creating"]
        (running,) = set(states) - {waiting}

        service.stop(signal.SIGKILL)  # the agents and their jobs stay
        slurm.command("scancel", before[waiting])  # while the service is down, the waiting node's job goes
        service.restart()
        slurm.command("scancel", blocker.strip())
        wait_for(lambda: all_idle(client, pool_id, 2), timeout=90, what="both nodes idle after the restart")
        after = {node_id: job["id"] for node_id, job in active_jobs(slurm).items()}
        # The running node kept its job (its agent came back); the waiting one got a new job.
        assert after[running] == before[running]
        assert after[waiting] != before[waiting]
        assert set(after) == set(before)
        delete_and_wait(client, slurm, pool_id)
        assert not active_jobs(slurm)
    finally:
        service.stop()


def test_a_clean_stop_ends_the_nodes_jobs_and_the_nodes_get_new_ones_after_it(
    slurm: SlurmCluster, unique: Unique, tmp_path_factory: pytest.TempPathFactory
) -> None:
    service = start_slurm_service(slurm, tmp_path_factory.mktemp("slurm-clean-stop"))
    try:
        client = make_client(service.url)
        pool_id = unique("slurmstop")
        create_slurm_pool(client, pool_id, 1)
        (node_id,) = wait_for(lambda: all_idle(client, pool_id, 1), timeout=90, what="an idle Slurm node")
        before = active_jobs(slurm)[node_id]["id"]
        service.stop()  # a clean stop cancels the nodes' jobs
        wait_for(lambda: not active_jobs(slurm), timeout=60, what="the node's job to end")
        service.restart()
        wait_for(lambda: all_idle(client, pool_id, 1), timeout=90, what="the node idle again")
        assert active_jobs(slurm)[node_id]["id"] != before
        delete_and_wait(client, slurm, pool_id)
        assert not active_jobs(slurm)
    finally:
        service.stop()
