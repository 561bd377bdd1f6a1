"""Nothing lost: lost agents, a killed service, a clean stop and restart, all with real processes."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from azure.batch import models as m

from tests.api.helpers import completed, create_job, create_pool, idle_nodes
from tests.conftest import Service, make_client, start_service, wait_for


def agent_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "batchyard.agent" in cmdline and any(str(data_dir) in part for part in cmdline):
            found.append(proc)
    return found


@pytest.fixture
def own_service(tmp_path: Path) -> Any:
    svc = start_service(tmp_path / "svc")
    yield svc
    svc.stop()


def _sleep_tasks(client: Any, job_id: str, count: int, seconds: float) -> None:
    client.create_task_collection(
        job_id,
        m.BatchTaskGroup(
            task_values=[
                m.BatchTaskCreateOptions(id=f"t{i}", command_line=f"/bin/bash -c 'sleep {seconds}; echo done-{i}'")
                for i in range(count)
            ]
        ),
    )


def test_killed_agent_makes_node_unusable_and_requeues_its_task(own_service: Service) -> None:
    client = make_client(own_service.url)
    create_pool(client, "p", nodes=2)
    wait_for(lambda: idle_nodes(client, "p", 2), what="two idle nodes")
    create_job(client, "j", "p")
    client.create_task("j", m.BatchTaskCreateOptions(id="long", command_line="/bin/bash -c 'sleep 4; echo ok'"))
    running = wait_for(lambda: (t := client.get_task("j", "long")).state == "running" and t, what="running task")
    victim = running.node_info.node_id
    victim_agent = next(p for p in agent_processes(own_service.data_dir) if victim in " ".join(p.cmdline()))
    victim_agent.send_signal(signal.SIGKILL)

    wait_for(lambda: client.get_node("p", victim).state == "unusable", timeout=15, what="unusable node")
    task = wait_for(lambda: completed(client, "j", "long"), timeout=30, what="requeued task to finish")
    assert task.execution_info.requeue_count == 1
    assert task.execution_info.retry_count == 0
    assert task.execution_info.result == "success"
    assert task.node_info.node_id != victim
    # The node gets a fresh agent and comes back.
    wait_for(lambda: client.get_node("p", victim).state == "idle", timeout=30, what="node recovery")


def test_clean_stop_ends_agents_and_restart_reruns_interrupted_tasks(own_service: Service) -> None:
    client = make_client(own_service.url)
    create_pool(client, "p", nodes=1, slots=2)
    wait_for(lambda: idle_nodes(client, "p", 1), what="an idle node")
    create_job(client, "j", "p")
    # The first attempt leaves a marker and hangs; a rerun finds the marker and finishes at once.
    marker = "$AZ_BATCH_NODE_SHARED_DIR/$AZ_BATCH_TASK_ID.marker"
    command = f"/bin/bash -c 'if [ -e {marker} ]; then echo rerun; else touch {marker}; sleep 60; fi'"
    client.create_task_collection(
        "j",
        m.BatchTaskGroup(task_values=[m.BatchTaskCreateOptions(id=f"t{i}", command_line=command) for i in range(2)]),
    )
    wait_for(lambda: client.get_job_task_counts("j").task_counts.running == 2, what="two running tasks")
    wait_for(lambda: len(list((own_service.data_dir / "nodes").glob("*/shared/*.marker"))) == 2, what="markers")
    assert own_service.stop(signal.SIGTERM) == 0
    assert wait_for(lambda: not agent_processes(own_service.data_dir), timeout=10, what="agents to stop")

    own_service.restart()
    client = make_client(own_service.url)
    assert [p.id for p in client.list_pools()] == ["p"]
    for task_id in ("t0", "t1"):
        task = wait_for(lambda tid=task_id: completed(client, "j", tid), timeout=30, what=f"{task_id} rerun")
        assert task.execution_info.result == "success"
        assert task.execution_info.requeue_count == 1
        assert b"".join(client.download_task_file("j", task_id, "stdout.txt")) == b"rerun\n"


def test_killed_service_loses_nothing_and_running_tasks_report_in(own_service: Service) -> None:
    client = make_client(own_service.url)
    create_pool(client, "p", nodes=1, slots=4)
    wait_for(lambda: idle_nodes(client, "p", 1), what="an idle node")
    create_job(client, "j", "p")
    _sleep_tasks(client, "j", 3, 3)
    client.create_task("j", m.BatchTaskCreateOptions(id="quick", command_line="/bin/true"))
    wait_for(lambda: client.get_job_task_counts("j").task_counts.running >= 3, what="running tasks")
    own_service.process.send_signal(signal.SIGKILL)
    own_service.process.wait(10)
    agents = agent_processes(own_service.data_dir)
    assert agents, "agents keep running while the service is down"
    time.sleep(1)
    own_service.restart()
    client = make_client(own_service.url)
    for task_id in ("t0", "t1", "t2", "quick"):
        task = wait_for(lambda tid=task_id: completed(client, "j", tid), timeout=30, what=f"{task_id} completion")
        assert task.execution_info.result == "success"
    # Tasks that were running when the service died finished on their node and were not rerun.
    for task_id in ("t0", "t1", "t2"):
        task = client.get_task("j", task_id)
        assert task.execution_info.requeue_count == 0
        out = b"".join(client.download_task_file("j", task_id, "stdout.txt")).decode()
        assert out == f"done-{task_id[1:]}\n"
    # The restarted service took charge of the surviving agents: a clean stop ends them too.
    assert own_service.stop(signal.SIGTERM) == 0
    assert wait_for(lambda: not agent_processes(own_service.data_dir), timeout=15, what="adopted agents to stop")


def test_dependencies_survive_a_restart(own_service: Service) -> None:
    client = make_client(own_service.url)
    create_pool(client, "p", nodes=1)
    wait_for(lambda: idle_nodes(client, "p", 1), what="an idle node")
    create_job(client, "j", "p", uses_task_dependencies=True)
    client.create_task(
        "j",
        m.BatchTaskCreateOptions(
            id="child", command_line="/bin/true", depends_on=m.BatchTaskDependencies(task_ids=["parent"])
        ),
    )
    assert own_service.stop(signal.SIGTERM) == 0
    own_service.restart()
    client = make_client(own_service.url)
    assert client.get_task("j", "child").state == "active"  # still waiting after the restart
    client.create_task("j", m.BatchTaskCreateOptions(id="parent", command_line="/bin/sleep 1"))
    parent = wait_for(lambda: completed(client, "j", "parent"), what="the parent")
    child = wait_for(lambda: completed(client, "j", "child"), what="the child")
    assert child.execution_info.start_time >= parent.execution_info.end_time


def test_running_multi_instance_task_is_rerun_whole_after_a_killed_service(own_service: Service) -> None:
    client = make_client(own_service.url)
    create_pool(client, "p", nodes=2, enable_inter_node_communication=True)
    wait_for(lambda: idle_nodes(client, "p", 2), what="two idle nodes")
    create_job(client, "j", "p")
    marker = "$AZ_BATCH_NODE_SHARED_DIR/mi.marker"
    client.create_task(
        "j",
        m.BatchTaskCreateOptions(
            id="mi",
            command_line=f"/bin/bash -c 'if [ -e {marker} ]; then echo rerun; else touch {marker}; sleep 60; fi'",
            multi_instance_settings=m.MultiInstanceSettings(
                number_of_instances=2, coordination_command_line="/bin/true"
            ),
        ),
    )
    wait_for(lambda: len(list((own_service.data_dir / "nodes").glob("*/shared/mi.marker"))) == 1, what="first run")
    own_service.process.send_signal(signal.SIGKILL)
    own_service.process.wait(10)
    own_service.restart()
    client = make_client(own_service.url)
    task = wait_for(lambda: completed(client, "j", "mi"), timeout=60, what="the rerun")
    assert task.execution_info.requeue_count == 1
    assert task.execution_info.result == "success"
    assert b"".join(client.download_task_file("j", "mi", "stdout.txt")) == b"rerun\n"
    # Nothing of the first run is left holding the nodes: both go back to idle.
    wait_for(lambda: all(n.running_tasks_count == 0 for n in client.list_nodes("p")), what="free nodes")
