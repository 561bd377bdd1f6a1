"""Opening a database an older service wrote: its data is moved into the current tables."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchyard.providers.external import ExternalProvider
from batchyard.providers.registry import ProviderRegistry
from batchyard.service.config import Settings
from batchyard.service.documents import TaskDocument, TaskPrivate
from batchyard.service.engine.core import EngineCore
from batchyard.service.persistence import schema
from batchyard.service.persistence.postgres import PostgresStore
from batchyard.service.persistence.postgres import schema as postgres_schema
from batchyard.service.persistence.schema import SCHEMA_VERSION, VERSION_KEY, SchemaTooNew
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.persistence.sqlite import schema as sqlite_schema
from batchyard.service.ports import Store
from batchyard.service.storage.applications import ApplicationRegistry
from tests.conftest import postgres_cluster


def test_the_application_registry_moves_from_meta_to_its_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    apps = {
        "render": {
            "id": "Render",
            "displayName": "Renderer",
            "allowUpdates": True,
            "defaultVersion": "1.0",
            "packages": {"1.0": {"version": "1.0", "state": "active", "format": "zip", "blob": "render/1.0/a.zip"}},
        },
        "empty": {"id": "empty", "displayName": None, "allowUpdates": False, "defaultVersion": None, "packages": {}},
    }
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('applications', ?)", (orjson.dumps(apps).decode(),))
    conn.execute("INSERT INTO meta VALUES ('node_secret', 'ab')")
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    try:
        assert dict(store.load_applications()) == apps
        assert store.get_meta("applications") is None
        assert store.get_meta("node_secret") == "ab"
        registry = ApplicationRegistry(store, None, 20, 40)
        assert registry.apps == apps
        registry.update("render", {"displayName": "New"})
        registry.delete("empty")
    finally:
        store.close()

    again = SqliteStore(path)  # the move happens once; later changes are in the table
    try:
        loaded = again.load_applications()
        assert [(key, app["id"], app["displayName"]) for key, app in loaded] == [("render", "Render", "New")]
    finally:
        again.close()


def _old_database(path: Path) -> None:
    """Tables as a service before the `private` column wrote them, private fields inside the documents."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
        CREATE TABLE pools (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL);
        CREATE TABLE nodes (id TEXT PRIMARY KEY, pool_key TEXT NOT NULL, seq INTEGER NOT NULL, doc BLOB NOT NULL);
        CREATE TABLE jobs (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL);
        CREATE TABLE schedules (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL);
        CREATE TABLE tasks (job_key TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,
            node_id TEXT, doc BLOB NOT NULL, PRIMARY KEY (job_key, key));
        CREATE TABLE certificates (key TEXT PRIMARY KEY, doc BLOB NOT NULL);
        """
    )
    rows = {
        "pools": (
            "p",
            1,
            {"id": "p", "state": "active", "_seq": 1, "_asNext": "2026-01-01T00:00:00Z", "_keepAlive": 1},
        ),
        "jobs": ("j", 3, {"id": "j", "state": "active", "_seq": 3, "_schedule": "s", "_released": True}),
        "schedules": ("s", 4, {"id": "s", "state": "active", "_seq": 4, "_jobs": 2, "_activeJob": "j"}),
    }
    for table, (key, seq, doc) in rows.items():
        conn.execute(f"INSERT INTO {table} VALUES (?, ?, ?)", (key, seq, orjson.dumps(doc)))
    node = {"id": "n1", "state": "idle", "_seq": 2, "_pool": "p", "_external": True, "_boot": "b1", "_users": {}}
    conn.execute("INSERT INTO nodes VALUES ('n1', 'p', 2, ?)", (orjson.dumps(node),))
    task = {"id": "t", "state": "running", "commandLine": 'echo "_aid"', "nodeInfo": {"nodeId": "n1"}, "_aid": "r1"}
    task |= {"_jm": True, "_stats": {"x": 1}}
    conn.execute("INSERT INTO tasks VALUES ('j', 't', 5, 'running', 'n1', ?)", (orjson.dumps(task),))
    plain = {"id": "u", "state": "active", "commandLine": "true"}
    conn.execute("INSERT INTO tasks VALUES ('j', 'u', 6, 'active', NULL, ?)", (orjson.dumps(plain),))
    cert = {"thumbprint": "ab", "thumbprintAlgorithm": "sha1", "state": "active", "_pem": "PEM", "_key": None}
    conn.execute("INSERT INTO certificates VALUES ('sha1-ab', ?)", (orjson.dumps(cert),))
    conn.commit()
    conn.close()


def test_private_fields_move_out_of_an_older_services_documents(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_database(path)
    store = SqliteStore(path)
    try:
        [(key, seq, pool, pool_private)] = store.load_all("pools")
        assert (key, seq, pool) == ("p", 1, {"id": "p", "state": "active"})
        assert pool_private == {"autoscale_next": "2026-01-01T00:00:00Z", "keep_alive": 1}
        [(pool_key, seq, node, node_private)] = store.load_nodes()
        assert (pool_key, seq, node) == ("p", 2, {"id": "n1", "state": "idle"})
        assert node_private == {"provider": "external", "boot": "b1", "users": {}}
        [(_, _, job, job_private)] = store.load_all("jobs")
        assert (job, job_private) == ({"id": "j", "state": "active"}, {"schedule": "s", "released": True})
        [(_, _, schedule, schedule_private)] = store.load_all("schedules")
        assert schedule_private == {"jobs_created": 2, "active_job": "j"} and "_jobs" not in schedule
        task = store.get_task("j", "t")
        assert task == {"id": "t", "state": "running", "commandLine": 'echo "_aid"', "nodeInfo": {"nodeId": "n1"}}
        assert task is not None and task.private == TaskPrivate(run_id="r1", job_manager=True, run_stats={"x": 1})
        assert store.get_task("j", "u") == {"id": "u", "state": "active", "commandLine": "true"}
        [(_, raw)] = store.list_tasks("j", 0, 1)
        assert orjson.loads(raw) == task  # lists read exactly the wire document
        [(_, cert, cert_private)] = store.load_certificates()
        assert "_pem" not in cert and cert_private == {"pem": "PEM", "key": None}
    finally:
        store.close()

    core = EngineCore(
        Settings(data_dir=tmp_path), SqliteStore(path), ProviderRegistry([ExternalProvider()], default="external")
    )
    try:  # the engine reads them back as typed fields
        assert core.pools["p"].private.autoscale_next == "2026-01-01T00:00:00Z"
        assert core.nodes["n1"].private.provider == "external" and core.nodes["n1"].private.boot == "b1"
        assert core.jobs["j"].private.schedule == "s"
        assert "r1" in core.nodes["n1"].runs
    finally:
        core.store.close()


def test_new_documents_keep_private_fields_apart(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "new.sqlite")
    try:
        with store.transaction():
            store.insert_tasks(
                "j", [("t", 1, "active", TaskDocument.with_private({"id": "t"}, TaskPrivate(run_id="r")))]
            )
        conn = store._db
        doc, private = conn.execute("SELECT doc, private FROM tasks").fetchone()
        assert orjson.loads(doc) == {"id": "t"} and orjson.loads(private)["run_id"] == "r"
        with store.transaction():
            store.insert_tasks("j", [("u", 2, "active", TaskDocument({"id": "u"}))])
        assert conn.execute("SELECT private FROM tasks WHERE key = 'u'").fetchone() == (None,)  # defaults: nothing
    finally:
        store.close()


# --- schema versions, for both stores ----------------------------------------------------------------------


def _where(kind: str, tmp_path: Path) -> str | Path:
    return tmp_path / "batchyard.db" if kind == "sqlite" else postgres_cluster().new_database("migrations")


def _open(where: str | Path) -> Store:
    return SqliteStore(where) if isinstance(where, Path) else PostgresStore(where)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_new_database_records_the_schema_version(kind: str, tmp_path: Path) -> None:
    store = _open(_where(kind, tmp_path))
    try:
        assert store.get_meta(VERSION_KEY) == str(SCHEMA_VERSION)
    finally:
        store.close()


def test_an_older_sqlite_file_is_brought_to_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_database(path)
    store = SqliteStore(path)
    try:
        assert store.get_meta(VERSION_KEY) == str(SCHEMA_VERSION)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_from_a_newer_service_is_refused_untouched(kind: str, tmp_path: Path) -> None:
    where = _where(kind, tmp_path)
    store = _open(where)
    store.put_job("j", 1, {"id": "j"}, {})
    store.set_meta(VERSION_KEY, str(SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}, written by a newer batchyard"):
        _open(where)
    # The service says so and stops, instead of starting on data it may misread.
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "batchyard.cli.main", "serve", "--port", "0", "--data-dir", str(data_dir)]
    if isinstance(where, Path):
        data_dir.mkdir()
        shutil.copy(where, data_dir / "batchyard.db")
    else:
        command += ["--database", where]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert "written by a newer batchyard" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_later_migrations_run_once_in_order_on_an_existing_database(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = _where(kind, tmp_path)
    store = _open(where)
    store.put_job("j", 1, {"id": "j"}, {})
    store.close()
    add_column = "ALTER TABLE jobs ADD COLUMN priority INTEGER"
    fill = "UPDATE jobs SET priority = 7"
    current = schema.SCHEMA_VERSION
    later = (
        schema.Migration(current + 1, (add_column,), (add_column,)),
        schema.Migration(current + 2, (fill,), (fill,)),
    )
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current + 2)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, *later))
    for module in (sqlite_schema, postgres_schema):
        monkeypatch.setattr(module, "SCHEMA_VERSION", current + 2)
    for _ in range(2):  # the second opening finds the last version and runs nothing (the ALTER would fail)
        store = _open(where)
        try:
            assert store.get_meta(VERSION_KEY) == str(current + 2)
            db: Any = store._db
            assert db.execute("SELECT priority FROM jobs").fetchall() == [(7,)]
        finally:
            store.close()
