"""`serve --database postgresql://...`: the state lives in the database, not in the data directory, and a
database the service cannot use stops it with a message. (With --store postgresql every API test runs on
PostgreSQL; these run on it always.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from azure.batch import models as m

from tests.conftest import make_client, postgres_cluster, start_service
from tests.postgres_cluster import PostgresCluster, chosen_store


def test_a_service_on_another_data_directory_finds_the_state_in_the_database(tmp_path: Path) -> None:
    url = postgres_cluster().new_database("moved")
    first = start_service(tmp_path / "first", "--database", url)
    try:
        client = make_client(first.url)
        client.create_job(m.BatchJobCreateOptions(id="kept", pool_info=m.BatchPoolInfo(pool_id="nowhere")))
        client.create_task_collection(
            "kept",
            m.BatchTaskGroup(
                task_values=[m.BatchTaskCreateOptions(id=f"t{i}", command_line="true") for i in range(100)]
            ),
        )
    finally:
        first.stop()
    second = start_service(tmp_path / "second", "--database", url)
    try:
        client = make_client(second.url)
        assert client.get_job("kept").pool_info.pool_id == "nowhere"
        assert [t.id for t in client.list_tasks("kept")] == [f"t{i}" for i in range(100)]
        assert [t.id for t in client.list_tasks("kept", filter="startswith(id, 'T9')")] == [
            "t9",
            *(f"t9{i}" for i in range(10)),
        ]
    finally:
        second.stop()
    assert not list(tmp_path.glob("*/batchyard.db*"))  # nothing of it was kept in SQLite


def _serve(tmp_path: Path, database: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "batchyard.cli.main", "serve", "--port", "0", "--data-dir", str(tmp_path / "d")]
    return subprocess.run(
        [*command, "--database", database], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_a_database_the_service_cannot_use_stops_it_with_a_message(tmp_path: Path) -> None:
    not_postgres = _serve(tmp_path, "mysql://localhost/batch")
    assert not_postgres.returncode == 2 and "--database takes a PostgreSQL URL" in not_postgres.stderr
    cluster = postgres_cluster()
    missing = cluster.url("no_such_database").replace("batchyard@", "batchyard:secret@")
    unreachable = _serve(tmp_path, missing)
    assert unreachable.returncode == 2 and "cannot connect to" in unreachable.stderr, unreachable.stderr
    assert "no_such_database" in unreachable.stderr and "secret" not in unreachable.stderr
    assert "Traceback" not in not_postgres.stderr + unreachable.stderr


def test_the_service_connects_again_after_the_database_server_restarts(tmp_path: Path) -> None:
    cluster = PostgresCluster(postgres_cluster().bindir)  # one of its own: the others' connections stay
    try:
        service = start_service(tmp_path / "svc", "--database", cluster.new_database("restarted"))
        try:
            client = make_client(service.url)
            client.create_job(m.BatchJobCreateOptions(id="before", pool_info=m.BatchPoolInfo(pool_id="nowhere")))
            cluster.restart()
            # The request that finds the connection gone fails with a 500, which the SDK retries.
            client.create_job(m.BatchJobCreateOptions(id="after", pool_info=m.BatchPoolInfo(pool_id="nowhere")))
            assert sorted(job.id for job in client.list_jobs()) == ["after", "before"]
            assert "connecting again" in service.log()
            service.stop()
            service.restart()  # both were committed
            assert sorted(job.id for job in client.list_jobs()) == ["after", "before"]
        finally:
            service.stop()
    finally:
        cluster.stop()


def test_a_service_a_test_starts_keeps_its_state_in_the_store_the_run_chose(tmp_path: Path) -> None:
    """Test modules import tests.conftest, a module apart from the conftest pytest loads: the choice of
    --store must reach the services they start themselves (as test_durability.py's do)."""
    service = start_service(tmp_path / "svc")
    try:
        client = make_client(service.url)
        client.create_job(m.BatchJobCreateOptions(id="here", pool_info=m.BatchPoolInfo(pool_id="nowhere")))
    finally:
        service.stop()
    on_postgres = "--database" in service.args
    assert on_postgres == (chosen_store() == "postgresql")
    assert (tmp_path / "svc" / "batchyard.db").exists() != on_postgres
