"""Heartbeats: a stopped (SIGSTOP) agent keeps its connection open but goes silent.

With --heartbeat-timeout 1.5 and --node-lost-grace 3 the node is `unknown` about 2 s after the
agent stops and `unusable` 3 s later (its running tasks are requeued then). A killed agent is
covered by test_durability.py (the connection drops; the same rules apply).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from azure.batch import models as m

from tests.api.helpers import completed, create_job, create_pool, idle_nodes
from tests.api.test_multi_instance import bash, mi_task
from tests.api.test_multi_instance_lifetime import (
    APPLICATION,
    COORDINATION,
    instance_nodes,
    instance_processes,
    wait_all_gone,
)
from tests.conftest import Service, make_client, start_service, wait_for


@pytest.fixture(scope="module")
def hb_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("heartbeat"), "--heartbeat-timeout", "1.5", "--node-lost-grace", "3")
    yield svc
    svc.stop()


def _agent_of(service: Service, node_id: str) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "batchyard.agent" in cmdline and node_id in cmdline and any(str(service.data_dir) in a for a in cmdline):
            return proc
    raise AssertionError(f"no agent process for {node_id}")


def test_a_stopped_agent_goes_unknown_and_reports_what_finished_meanwhile(hb_service: Service) -> None:
    client = make_client(hb_service.url)
    create_pool(client, "hb1", nodes=1)
    node_id = wait_for(lambda: idle_nodes(client, "hb1", 1), timeout=60, what="an idle node")[0].id
    create_job(client, "hbj1", "hb1")
    client.create_task("hbj1", m.BatchTaskCreateOptions(id="t", command_line="/bin/bash -c 'sleep 1.5; echo once'"))
    wait_for(lambda: client.get_task("hbj1", "t").state == "running", what="running task")
    agent = _agent_of(hb_service, node_id)
    agent.send_signal(signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        wait_for(lambda: client.get_node("hb1", node_id).state == "unknown", timeout=5, what="unknown node")
        assert time.monotonic() - stopped < 4
        time.sleep(max(0.0, 2.0 - (time.monotonic() - stopped)))  # the task ends while its agent is stopped
        assert client.get_task("hbj1", "t").state == "running"  # nobody has told the service yet
    finally:
        agent.send_signal(signal.SIGCONT)
    task = wait_for(lambda: completed(client, "hbj1", "t"), timeout=15, what="the result after SIGCONT")
    assert task.execution_info.result == "success"
    assert task.execution_info.requeue_count == 0  # reported, not rerun
    assert b"".join(client.download_task_file("hbj1", "t", "stdout.txt")) == b"once\n"
    wait_for(lambda: client.get_node("hb1", node_id).state == "idle", timeout=15, what="the node back to idle")


def test_a_long_stopped_agent_becomes_unusable_its_task_moves_and_it_recovers(
    hb_service: Service, tmp_path: Path
) -> None:
    client = make_client(hb_service.url)
    create_pool(client, "hb2", nodes=2)
    wait_for(lambda: idle_nodes(client, "hb2", 2), timeout=60, what="two idle nodes")
    create_job(client, "hbj2", "hb2")
    marker = tmp_path / "marker"
    command = f"/bin/bash -c 'if [ -e {marker} ]; then echo rerun; else touch {marker}; sleep 60; fi'"
    client.create_task("hbj2", m.BatchTaskCreateOptions(id="t", command_line=command))
    running = wait_for(lambda: (t := client.get_task("hbj2", "t")).state == "running" and t, what="running task")
    wait_for(marker.exists, what="the task's process to start")  # `running` is set when it is sent to the node
    victim = running.node_info.node_id
    agent = _agent_of(hb_service, victim)
    agent.send_signal(signal.SIGSTOP)
    try:
        node = wait_for(
            lambda: (n := client.get_node("hb2", victim)).state == "unusable" and n, timeout=12, what="unusable"
        )
        assert [error.code for error in node.errors or []] == ["NodeAgentUnreachable"]
        task = wait_for(lambda: completed(client, "hbj2", "t"), timeout=20, what="the task to finish elsewhere")
        assert task.node_info.node_id != victim
        assert task.execution_info.requeue_count == 1
        assert b"".join(client.download_task_file("hbj2", "t", "stdout.txt")) == b"rerun\n"
    finally:
        agent.send_signal(signal.SIGCONT)
    node = wait_for(
        lambda: (n := client.get_node("hb2", victim)).state == "idle" and n, timeout=15, what="recovered node"
    )
    assert not node.errors
    assert agent.is_running()  # the same agent came back (no restart)


def test_a_node_away_when_its_multi_instance_task_ended_ends_what_the_task_left_there(hb_service: Service) -> None:
    client = make_client(hb_service.url)
    create_pool(client, "hb3", nodes=3, enable_inter_node_communication=True)
    wait_for(lambda: idle_nodes(client, "hb3", 3), timeout=60, what="three idle nodes")
    create_job(client, "hbj3", "hb3")
    client.create_task("hbj3", mi_task("t", bash(APPLICATION), 2, bash(COORDINATION)))
    nodes = instance_nodes(client, "hbj3", "t")
    left_behind = instance_processes(hb_service, nodes[1:], "hbj3", "t")  # on the subtask's node
    agent = _agent_of(hb_service, nodes[1])
    agent.send_signal(signal.SIGSTOP)
    try:
        # The node is lost (its connection closed): the task is requeued and then terminated, and the
        # `endtask` for that node goes nowhere.
        wait_for(lambda: client.get_node("hb3", nodes[1]).state == "unusable", timeout=12, what="unusable")
        wait_for(lambda: client.get_task("hbj3", "t").execution_info.requeue_count >= 1, what="the requeue")
        client.terminate_task("hbj3", "t")
        wait_for(lambda: client.get_task("hbj3", "t").state == "completed", what="the terminated task")
    finally:
        agent.send_signal(signal.SIGCONT)
    # Back, the agent learns which multi-instance tasks still run there (none) and ends the rest.
    wait_for(lambda: client.get_node("hb3", nodes[1]).state == "idle", timeout=15, what="the node back")
    wait_all_gone(left_behind)
