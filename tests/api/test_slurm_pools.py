"""Pools whose nodes are Slurm jobs (providers/slurm.py), through the official SDK against the real
service and a real single-host Slurm cluster (tests/slurm_cluster.py)."""

from __future__ import annotations

import os
import random
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m

from tests.api.helpers import completed, create_job, pool_exists, processes_with, vm_config
from tests.conftest import Service, make_client, start_service, wait_for
from tests.slurm_cluster import SlurmCluster, running_cluster

Unique = Callable[[str], str]
VM_SIZE = "standard_d2s_v3"  # 2 cores, 8 GiB: four such nodes fill the test cluster's 8 CPUs
JOB_PREFIX = "batchyard-devbatchaccount1-"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    yield from running_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def slurm_service(slurm: SlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("slurm-service")
    node_dir = data_dir / "slurm-nodes"
    service = start_service(
        data_dir,
        "--slurm-node-dir",
        str(node_dir),
        "--slurm-poll-interval",
        "0.5",
        "--heartbeat-timeout",
        "3",
        # Autoscale on a short clock (test_autoscale_follows_pending_tasks_with_slurm_jobs).
        "--autoscale-sample-period",
        "1",
        "--autoscale-min-interval",
        "2",
        env=slurm.env,
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def client(slurm_service: Service) -> Any:
    return make_client(slurm_service.url)


def create_slurm_pool(
    client: Any, pool_id: str, nodes: int, metadata: dict[str, str] | None = None, **kwargs: Any
) -> None:
    settings = {"batchyard-provider": "slurm", "batchyard-slurm-partition": "batch", **(metadata or {})}
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size=VM_SIZE,
            virtual_machine_configuration=vm_config(),
            target_dedicated_nodes=nodes,
            metadata=[m.BatchMetadataItem(name=name, value=value) for name, value in settings.items()],
            **kwargs,
        )
    )


def node_states(client: Any, pool_id: str) -> dict[str, str]:
    return {node.id: node.state for node in client.list_nodes(pool_id)}


def all_idle(client: Any, pool_id: str, count: int) -> dict[str, str] | None:
    states = node_states(client, pool_id)
    return states if len(states) == count and set(states.values()) == {"idle"} else None


def active_jobs(slurm: SlurmCluster) -> dict[str, dict[str, str]]:
    """The Slurm jobs of Batch nodes that still wait or run: node id -> job id, state, CPUs, memory."""
    out = slurm.command("squeue", "--noheader", "--format=%i|%j|%T|%C|%m")
    jobs = {}
    for line in out.splitlines():
        job_id, name, state, cpus, memory = line.strip().split("|")
        if name.startswith(JOB_PREFIX):
            jobs[name.removeprefix(JOB_PREFIX)] = {"id": job_id, "state": state, "cpus": cpus, "memory": memory}
    return jobs


def delete_and_wait(client: Any, slurm: SlurmCluster, pool_id: str) -> None:
    client.begin_delete_pool(pool_id)
    wait_for(lambda: not pool_exists(client, pool_id), timeout=90, what="the pool to be deleted")


def test_pool_of_slurm_nodes_becomes_idle_runs_tasks_and_leaves_no_job(
    client: Any, slurm: SlurmCluster, unique: Unique
) -> None:
    pool_id, job_id = unique("slurmpool"), unique("slurmjob")
    create_slurm_pool(client, pool_id, 3, {"batchyard-slurm-time-limit": "30"})
    nodes = wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="3 idle Slurm nodes")
    jobs = active_jobs(slurm)
    # One running job per node, with the cores and memory of standard_d2s_v3 (2 cores, 8 GiB).
    assert set(jobs) == set(nodes)
    assert {(job["state"], job["cpus"], job["memory"]) for job in jobs.values()} == {("RUNNING", "2", "8G")}
    time_limits = slurm.command(
        "squeue", "--noheader", "--format=%l", "--jobs", ",".join(j["id"] for j in jobs.values())
    )
    assert set(time_limits.split()) == {"30:00"}

    create_job(client, job_id, pool_id)
    task_ids = [f"t{i}" for i in range(6)]
    client.create_tasks(
        job_id,
        [
            m.BatchTaskCreateOptions(id=task_id, command_line="/bin/bash -c 'echo ran on $AZ_BATCH_NODE_ID'")
            for task_id in task_ids
        ],
    )
    done = [
        wait_for(lambda t=task_id: completed(client, job_id, t), timeout=60, what=f"task {task_id}")
        for task_id in task_ids
    ]
    assert {task.execution_info.exit_code for task in done} == {0}
    assert {task.node_info.node_id for task in done} <= set(nodes)

    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def test_node_stays_creating_while_its_job_pends_and_resize_down_cancels_the_released_jobs(
    client: Any, slurm: SlurmCluster, unique: Unique
) -> None:
    pool_id = unique("slurmresize")
    create_slurm_pool(client, pool_id, 3)
    first = wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="3 idle Slurm nodes")
    first_jobs = {node_id: job["id"] for node_id, job in active_jobs(slurm).items()}
    # Five nodes of 2 cores do not fit on 8 CPUs: the fifth node's job pends, and the node is `creating`.
    client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=5))
    states = wait_for(
        lambda: (s := node_states(client, pool_id)) and len(s) == 5 and sorted(s.values()).count("idle") == 4 and s,
        timeout=90,
        what="4 idle nodes of 5",
    )
    (waiting,) = [node_id for node_id, state in states.items() if state != "idle"]
    assert states[waiting] == "creating"
    assert active_jobs(slurm)[waiting]["state"] == "PENDING"

    client.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=3))
    wait_for(lambda: len(node_states(client, pool_id)) == 3, timeout=90, what="the pool back at 3 nodes")
    staying = set(node_states(client, pool_id))
    jobs = active_jobs(slurm)
    # Exactly the released nodes' jobs were cancelled; the staying nodes keep theirs.
    assert set(jobs) == staying
    assert waiting not in staying
    for node_id in staying & set(first):
        assert jobs[node_id]["id"] == first_jobs[node_id]
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


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


def test_a_job_slurm_refuses_makes_the_node_unusable(client: Any, slurm: SlurmCluster, unique: Unique) -> None:
    pool_id = unique("slurmbad")
    create_slurm_pool(client, pool_id, 1, {"batchyard-slurm-partition": "nosuchpartition"})
    (node,) = wait_for(
        lambda: [n for n in client.list_nodes(pool_id) if n.state == "unusable"], timeout=30, what="an unusable node"
    )
    assert node.errors and node.errors[0].code == "NodeAllocationLost"
    assert not active_jobs(slurm)
    delete_and_wait(client, slurm, pool_id)


def test_multi_instance_task_across_slurm_nodes(
    client: Any, slurm: SlurmCluster, unique: Unique, tmp_path: Path
) -> None:
    pool_id, job_id = unique("slurmmi"), unique("slurmmijob")
    create_slurm_pool(client, pool_id, 3, enable_inter_node_communication=True)
    nodes = wait_for(lambda: all_idle(client, pool_id, 3), timeout=90, what="3 idle Slurm nodes")
    # A node's ipAddress is the address of the Slurm node its job runs on (here: this host, 3 times).
    host = socket.gethostbyname(socket.gethostname())
    assert {node.ip_address for node in client.list_nodes(pool_id)} == {host}
    create_job(client, job_id, pool_id)
    marks = tmp_path / "coordination.txt"
    marks.touch()
    marks.chmod(0o666)
    client.create_task(
        job_id,
        m.BatchTaskCreateOptions(
            id="mi",
            command_line="/bin/bash -c 'echo hosts=$AZ_BATCH_HOST_LIST'",
            multi_instance_settings=m.MultiInstanceSettings(
                number_of_instances=3, coordination_command_line=f"/bin/bash -c 'echo $AZ_BATCH_NODE_ID >> {marks}'"
            ),
        ),
    )
    task = wait_for(lambda: completed(client, job_id, "mi"), timeout=60, what="the multi-instance task")
    assert task.execution_info.exit_code == 0
    assert sorted(marks.read_text().split()) == sorted(nodes)  # one instance on each Slurm node
    subtasks = list(client.list_subtasks(job_id, "mi"))
    assert {s.state for s in subtasks} == {"completed"} and {s.exit_code for s in subtasks} == {0}
    stdout = b"".join(client.download_task_file(job_id, "mi", "stdout.txt")).decode()
    assert stdout.strip() == "hosts=" + ",".join([host] * 3)
    delete_and_wait(client, slurm, pool_id)
    assert not active_jobs(slurm)


def test_autoscale_follows_pending_tasks_with_slurm_jobs(
    client: Any, slurm: SlurmCluster, unique: Unique, tmp_path: Path
) -> None:
    pool_id, job_id = unique("slurmauto"), unique("slurmautojob")
    formula = "$TargetDedicatedNodes = min(3, max(0, $PendingTasks.GetSample(1)));"
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size=VM_SIZE,
            virtual_machine_configuration=vm_config(),
            enable_auto_scale=True,
            auto_scale_formula=formula,
            auto_scale_evaluation_interval="PT2S",
            metadata=[m.BatchMetadataItem(name="batchyard-provider", value="slurm")],
        )
    )
    create_job(client, job_id, pool_id)
    release = tmp_path / "release"
    wait = f"/bin/bash -c 'while [ ! -f {release} ]; do sleep 0.1; done'"
    client.create_tasks(job_id, [m.BatchTaskCreateOptions(id=f"t{i}", command_line=wait) for i in range(2)])
    # Two pending tasks: two nodes, each a running Slurm job, each running one of the tasks.
    running = wait_for(
        lambda: (ts := list(client.list_tasks(job_id))) and all(t.state == "running" for t in ts) and ts,
        timeout=90,
        what="both tasks running on new Slurm nodes",
    )
    nodes = {task.node_info.node_id for task in running}
    assert client.get_pool(pool_id).target_dedicated_nodes == 2
    assert set(active_jobs(slurm)) == nodes and len(nodes) == 2

    release.write_text("go")
    # Nothing pending: the formula asks for no node, and their Slurm jobs are cancelled.
    wait_for(lambda: not list(client.list_nodes(pool_id)), timeout=90, what="the pool to shrink to 0")
    assert not active_jobs(slurm)
    delete_and_wait(client, slurm, pool_id)


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
    data_dir = tmp_path_factory.mktemp("slurm-restart")
    options = ["--slurm-node-dir", str(data_dir / "slurm-nodes"), "--slurm-poll-interval", "0.5"]
    service = start_service(data_dir, *options, env=slurm.env)
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
    data_dir = tmp_path_factory.mktemp("slurm-clean-stop")
    options = ["--slurm-node-dir", str(data_dir / "slurm-nodes"), "--slurm-poll-interval", "0.5"]
    service = start_service(data_dir, *options, env=slurm.env)
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
