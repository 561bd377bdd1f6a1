"""A container task whose agent is killed runs once at a time and leaves no container behind, both ways
back (see test_lost_agent_runs_once.py): the node's new agent ends and removes what the old one left
before it says hello (agent/main.py), or, the node declared lost, the local provider does when it
fences the node (providers/local.py), and the task runs again on the pool's other node."""

from __future__ import annotations

import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.batch import models as m

from tests.api.container_support import (
    container_config,
    containers_of,
    create_container_pool,
    module_image,
    requires_rootful_podman,
    settings,
    sh,
)
from tests.api.helpers import create_job, idle_nodes, read_task_file
from tests.api.test_durability import agent_processes
from tests.conftest import make_client, start_service, wait_for

pytestmark = requires_rootful_podman

RUN_ID = secrets.token_hex(4)


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    yield from module_image("loss", RUN_ID)


MODES = {
    "new-agent-on-the-node": (1, ["--node-lost-grace", "600", "--adopt-grace", "1"]),
    "requeued-elsewhere": (2, ["--node-lost-grace", "1", "--adopt-grace", "600"]),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_the_container_of_a_killed_agent_is_removed(tmp_path: Path, image: str, mode: str) -> None:
    nodes, options = MODES[mode]
    service = start_service(tmp_path / "svc", *options)
    try:
        client = make_client(service.url)
        create_container_pool(client, "p", container_config([image]), nodes=nodes)
        wait_for(lambda: idle_nodes(client, "p", nodes), timeout=60, what="idle nodes")
        create_job(client, "j", "p")
        # The first run waits long after leaving a mark; the rerun (on either node) ends at once.
        marks = tmp_path / "marks"
        marks.mkdir()
        marks.chmod(0o1777)
        mark = f"{marks}/first-run"
        script = f"if [ -e {mark} ]; then echo rerun; else touch {mark}; sleep 120; fi"
        container = settings(image, container_run_options=f"--volume {marks}:{marks}")  # outside the node root
        client.create_task("j", m.BatchTaskCreateOptions(id="t", command_line=sh(script), container_settings=container))
        node_id = wait_for(lambda: (t := client.get_task("j", "t")).state == "running" and t.node_info.node_id)
        first = wait_for(lambda: containers_of(name_part=node_id), timeout=30, what="the first container")
        wait_for((marks / "first-run").exists, what="the first run")
        (agent,) = [p for p in agent_processes(service.data_dir) if node_id in " ".join(p.cmdline())]
        agent.send_signal(signal.SIGKILL)
        task = wait_for(lambda: (t := client.get_task("j", "t")).state == "completed" and t, timeout=90)
        assert task.execution_info.result == "success" and task.execution_info.requeue_count == 1
        assert read_task_file(client, "j", "t", "stdout.txt") == "rerun\n"
        assert first[0] not in containers_of(name_part=node_id)
        assert containers_of(name_part=node_id) == []
    finally:
        service.stop()
