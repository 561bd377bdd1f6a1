"""What `batchyard` has beyond az: job/task wait with progress, task tail -f, events -f, pool heatmap.
One service (with the Service Log stream on) and one four-slot pool serve the module."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import models as m

from tests.api.cli_support import as_json, batchyard, ok, table_rows
from tests.api.helpers import create_job, create_pool, idle_nodes
from tests.conftest import Service, make_client, start_service, wait_for

POOL = "live"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Any]]:
    service = start_service(tmp_path_factory.mktemp("cli-live"), "--diagnostic-logs", "stream")
    client = make_client(service.url)
    create_pool(client, POOL, nodes=1, slots=4)
    wait_for(lambda: idle_nodes(client, POOL, 1), what="an idle node")
    yield service, client
    service.stop()


def _popen(service: Service, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")} | {"BATCHYARD_ENDPOINT": service.url}
    return subprocess.Popen([sys.executable, "-m", "batchyard.cli.main", *args], env=env, text=True, **kwargs)


def _add_tasks(client: Any, job_id: str, commands: dict[str, str]) -> None:
    create_job(client, job_id, POOL)
    for task_id, command in commands.items():
        client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line=command))


def test_job_wait_prints_progress_and_says_a_task_failed(live: tuple[Service, Any]) -> None:
    service, client = live
    _add_tasks(client, "waited", {"a": "sleep 1", "b": "sleep 2", "bad": "sh -c 'sleep 1; exit 3'"})
    done = batchyard(service, "job", "wait", "--job-id", "waited", "--interval", "0.2")
    assert done.returncode == 4, done.stderr  # a task failed
    progress = [line for line in done.stderr.splitlines() if line.startswith("job waited: ")]
    assert len(progress) >= 2 and "/3 complete" in progress[0]  # seen before the end, then as it went
    assert progress[-1] == "job waited: 3/3 complete (active 0, running 0, succeeded 2, failed 1)"
    assert "1 task(s) of job waited failed" in done.stderr
    assert table_rows(done.stdout) == [
        ["Total", "Active", "Running", "Succeeded", "Failed"],
        ["3", "0", "0", "2", "1"],
    ]
    timed_out = batchyard(service, "task", "wait", "--job-id", "waited", "--task-id", "nope", "--timeout", "1")
    assert timed_out.returncode == 1 and "TaskNotFound" in timed_out.stderr


def test_task_wait_draws_a_progress_bar_on_a_terminal(live: tuple[Service, Any]) -> None:
    service, client = live
    _add_tasks(client, "barred", {"x": "sleep 1", "y": "sleep 1"})
    controller, terminal = pty.openpty()
    process = _popen(
        service, "task", "wait", "--job-id", "barred", "--interval", "0.2", stdout=subprocess.PIPE, stderr=terminal
    )
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal's other end closed: the command is done
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    assert process.wait(30) == 0
    assert process.stdout is not None and table_rows(process.stdout.read())[1] == ["2", "0", "0", "2", "0"]
    screen = drawn.decode(errors="replace")
    assert "job barred" in screen and "succeeded 2" in screen and "2/2" in screen
    assert "━" in screen and "\x1b[" in screen  # rich's bar, in colour


def test_task_tail_follows_the_output_while_the_task_runs(live: tuple[Service, Any]) -> None:
    service, client = live
    script = "sh -c 'for i in 1 2 3; do echo line-$i; sleep 1; done'"
    _add_tasks(client, "tailed", {"talker": script})
    tail = _popen(
        service, "task", "tail", "--job-id", "tailed", "--task-id", "talker", "-f", "--interval", "0.2",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert tail.stdout is not None and tail.stderr is not None
    assert tail.stdout.readline() == "line-1\n"
    assert client.get_task("tailed", "talker").state == "running"  # shown while the task still runs
    assert tail.stdout.read() == "line-2\nline-3\n"
    assert tail.wait(30) == 0
    assert "task talker completed (exit code 0)" in tail.stderr.read()
    last = ok(service, "task", "tail", "--job-id", "tailed", "--task-id", "talker", "--lines", "2")
    assert last == "line-2\nline-3\n"
    missing = batchyard(service, "task", "tail", "--job-id", "tailed", "--task-id", "nope")
    assert missing.returncode == 1 and "TaskNotFound" in missing.stderr


def test_events_follow_the_service_log(live: tuple[Service, Any]) -> None:
    service, _ = live
    follow = _popen(service, "events", "-f", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # connected before the pool is made: -f shows only what comes next
        ok(service, "pool", "create", "--id", "evented", "--target-dedicated-nodes", "0", "-o", "none")
        assert follow.stdout is not None
        line = follow.stdout.readline()
        assert "PoolCreateEvent" in line and "id=evented" in line
    finally:
        follow.terminate()
        follow.wait(10)
    kept = ok(service, "events", "--query", "operationName").splitlines()  # JSON lines
    assert '"PoolCreateEvent"' in kept  # without -f: the records kept, then it stops
    ok(service, "pool", "delete", "--pool-id", "evented")


def test_pool_heatmap(live: tuple[Service, Any]) -> None:
    service, _ = live
    plain = ok(service, "pool", "heatmap", "--pool-id", POOL)
    assert plain.splitlines()[0] == f"pool {POOL}: 1 node(s)"
    assert "■ idle 1" in plain or "■ running 1" in plain
    coloured = ok(service, "pool", "heatmap", "--pool-id", POOL, FORCE_COLOR="1")
    assert "\x1b[" in coloured
    assert as_json(service, "pool", "heatmap", "--pool-id", POOL)["nodes"] == 1


def test_serve_starts_without_a_deprecation_warning(live: tuple[Service, Any]) -> None:
    service, _ = live  # its agents reached it over the sansio WebSockets (the module's tasks ran)
    assert "DeprecationWarning" not in service.log()
