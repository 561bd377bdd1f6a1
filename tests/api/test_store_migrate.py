"""`batchyard store migrate --to URL`: a stopped SQLite service's state moves to PostgreSQL, and the service
started on it goes on where it stopped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from azure.batch import models as m

from tests.api.helpers import completed, create_job, create_pool, idle_nodes
from tests.conftest import make_client, postgres_cluster, start_service, wait_for


def _migrate(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "batchyard.cli.main", "store", "migrate", "--data-dir", str(data_dir)]
    return subprocess.run(
        [*command, "--to", url], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def _state(client: Any) -> dict[str, Any]:
    tasks = {
        job.id: [
            (t.id, t.state, t.execution_info.exit_code if t.execution_info else None) for t in client.list_tasks(job.id)
        ]
        for job in client.list_jobs()
    }
    return {"pools": [p.id for p in client.list_pools()], "tasks": tasks}


def test_a_sqlite_services_state_moves_to_postgresql(tmp_path: Path) -> None:
    data_dir = tmp_path / "svc"
    sqlite = start_service(data_dir, "--database", "")  # SQLite, whatever --store the tests run with
    try:
        client = make_client(sqlite.url)
        create_pool(client, "p", nodes=1)
        wait_for(lambda: idle_nodes(client, "p", 1), what="an idle node")
        create_job(client, "j", "p")
        for i, code in enumerate((0, 3, 0)):
            client.create_task("j", m.BatchTaskCreateOptions(id=f"ran{i}", command_line=f"/bin/sh -c 'exit {code}'"))
        for i in range(3):
            wait_for(lambda i=i: completed(client, "j", f"ran{i}"), what=f"ran{i} completed")
        create_job(client, "waiting", "nowhere")
        tasks = [m.BatchTaskCreateOptions(id=f"w{i}", command_line="true") for i in range(60)]
        client.create_task_collection("waiting", m.BatchTaskGroup(task_values=tasks))
        before = _state(client)
    finally:
        sqlite.stop()
    assert before["tasks"]["j"] == [("ran0", "completed", 0), ("ran1", "completed", 3), ("ran2", "completed", 0)]

    url = postgres_cluster().new_database("moved")
    done = _migrate(data_dir, url)
    assert done.returncode == 0, done.stderr
    assert "63 tasks" in done.stdout and "--database" in done.stdout

    moved = start_service(data_dir, "--database", url)
    try:
        client = make_client(moved.url)
        assert _state(client) == before
        wait_for(lambda: idle_nodes(client, "p", 1), what="the node back, idle")
        client.create_task("j", m.BatchTaskCreateOptions(id="after", command_line="/bin/sh -c 'exit 0'"))
        task = wait_for(lambda: completed(client, "j", "after"), what="a task added after the move to complete")
        assert task.execution_info.exit_code == 0
        ids = [t.id for t in client.list_tasks("j")]
        assert ids == ["ran0", "ran1", "ran2", "after"]  # creation numbers go on from where they were
    finally:
        moved.stop()

    again = _migrate(data_dir, url)
    assert again.returncode == 2 and "already holds batchyard data" in again.stderr, again.stderr


def test_migrate_says_what_is_wrong(tmp_path: Path) -> None:
    missing = _migrate(tmp_path / "none", postgres_cluster().new_database("unused"))
    assert missing.returncode == 2 and "there is no batchyard database at" in missing.stderr
    not_postgres = _migrate(tmp_path, "sqlite:///x.db")
    assert not_postgres.returncode == 2 and "--to takes a PostgreSQL URL" in not_postgres.stderr
    assert "Traceback" not in missing.stderr + not_postgres.stderr
