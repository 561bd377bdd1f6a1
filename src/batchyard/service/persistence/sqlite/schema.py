"""The SQLite database's tables and indexes, and the migrations an existing database gets when opened.

Every entity is its wire document (`doc`, JSON), the fields only the service uses (`private`, JSON;
service/documents.py), and the columns queries need; migrations are additive, so an older service's data
opens unchanged.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pools (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL, private BLOB);
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, pool_key TEXT NOT NULL, seq INTEGER NOT NULL,
    doc BLOB NOT NULL, private BLOB);
CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL, private BLOB);
CREATE TABLE IF NOT EXISTS schedules (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL,
    private BLOB);
CREATE TABLE IF NOT EXISTS tasks (
    job_key TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,
    node_id TEXT, doc BLOB NOT NULL, private BLOB, PRIMARY KEY (job_key, key));
CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_seq ON tasks (job_key, seq);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (job_key, state, seq);
CREATE INDEX IF NOT EXISTS tasks_by_node ON tasks (node_id) WHERE node_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS prep_status (job_key TEXT NOT NULL, node_id TEXT NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (job_key, node_id));
CREATE TABLE IF NOT EXISTS retention (expiry REAL NOT NULL, node_id TEXT NOT NULL, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS retention_by_expiry ON retention (expiry);
CREATE TABLE IF NOT EXISTS certificates (key TEXT PRIMARY KEY, doc BLOB NOT NULL, private BLOB);
CREATE TABLE IF NOT EXISTS subtasks (job_key TEXT NOT NULL, task_key TEXT NOT NULL, id INTEGER NOT NULL,
    doc BLOB NOT NULL, PRIMARY KEY (job_key, task_key, id));
CREATE TABLE IF NOT EXISTS usage_totals (scope TEXT NOT NULL, key TEXT NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (scope, key));
CREATE TABLE IF NOT EXISTS pool_usage (start REAL NOT NULL, pool_id TEXT NOT NULL, vm_size TEXT NOT NULL,
    core_seconds REAL NOT NULL, PRIMARY KEY (start, pool_id));
CREATE TABLE IF NOT EXISTS applications (key TEXT PRIMARY KEY, doc BLOB NOT NULL);
"""

# Task columns added after the first schema, so list queries read them instead of parsing documents:
# (name, type, how to fill it from an existing row's document).
_TASK_COLUMNS = (
    ("id", "TEXT", "json_extract(doc, '$.id')"),
    ("exit_code", "INTEGER", "json_extract(doc, '$.executionInfo.exitCode')"),
    ("transition", "TEXT", "json_extract(doc, '$.stateTransitionTime')"),
)
# For `$filter` on executionInfo/exitCode and stateTransitionTime (a change feed) in time proportional
# to what matches.
_TASK_INDEXES = """
CREATE INDEX IF NOT EXISTS tasks_by_exit_code ON tasks (job_key, exit_code) WHERE exit_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_by_transition ON tasks (job_key, transition);
"""

# Older services kept private fields in the documents, under names starting with "_": where each went.
_LEGACY_PRIVATE: dict[str, dict[str, str]] = {
    "pools": {
        "_dealloc": "deallocation_option",
        "_resizeStarted": "resize_started",
        "_asNext": "autoscale_next",
        "_asEnabled": "autoscale_enabled_at",
        "_autoFor": "auto_pool_for",
        "_autoLifetime": "auto_pool_lifetime",
        "_keepAlive": "keep_alive",
    },
    "nodes": {
        "_provider": "provider",
        "_leaving": "leaving",
        "_claimed": "claimed",
        "_action": "action",
        "_users": "users",
        "_certs": "certificates",
        "_boot": "boot",
    },
    "jobs": {"_schedule": "schedule", "_released": "released"},
    "schedules": {"_jobs": "jobs_created", "_activeJob": "active_job", "_autoPool": "auto_pool"},
    "tasks": {
        "_aid": "run_id",
        "_dep": "dependency_action",
        "_jm": "job_manager",
        "_ending": "ending",
        "_stats": "run_stats",
        "_miRetention": "subtask_retention",
    },
    "certificates": {"_pem": "pem", "_key": "key"},
}
# Where older services kept the application registry: one JSON document in `meta`.
_APPLICATIONS_META_KEY = "applications"


# The diagnostic log outbox (service/diagnostics): AUTOINCREMENT, so a number is never used twice, even
# after the rows before it were shipped and deleted (the shipper's block ids and marks rely on it).
_OUTBOX = "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, record BLOB NOT NULL);"


def _null(value: None) -> None:
    return value


# sqlite3 binds int, float, str and bytearray parameters directly; for bytes and None it first looks for an
# adapter, and finding none costs two failed attribute lookups (`__adapt__`, `__conform__`), each an
# AttributeError built and dropped. Documents are bytes and unset columns None, so every task written paid
# that about three times (~5% of the CPU of adding a task). A registered adapter that changes nothing is found
# at once. (Registering one for bytes or None does not make sqlite3 adapt its directly bound types.)
sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b itself for a bytes object: no copy
sqlite3.register_adapter(type(None), _null)


def open_database(path: Path) -> sqlite3.Connection:
    """The database at `path` (created if new), with the current schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _private(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=OFF")
    db.executescript(SCHEMA)
    _add_task_columns(db)
    _move_private_fields_out_of_documents(db)
    _move_applications_out_of_meta(db)
    _add_outbox(db)
    return db


def _private(path: Path) -> None:
    """Keys, password hashes and certificate keys live here: for the service's user only.

    SQLite gives the -wal and -shm files the database file's mode; older ones are narrowed too.
    """
    if str(path) == ":memory:":
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            os.chmod(file, 0o600)


def _add_task_columns(db: sqlite3.Connection) -> None:
    """Additive migration: new columns on an existing tasks table, filled from the documents."""
    have = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
    missing = [(name, kind, fill) for name, kind, fill in _TASK_COLUMNS if name not in have]
    if missing:
        db.execute("BEGIN")
        for name, kind, _ in missing:
            db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind}")
        sets = ", ".join(f"{name} = {fill}" for name, _, fill in missing)
        db.execute(f"UPDATE tasks SET {sets}")
        db.execute("COMMIT")
    db.executescript(_TASK_INDEXES)


def _add_outbox(db: sqlite3.Connection) -> None:
    """Additive migration: the outbox table, empty, in a database made before it existed."""
    db.execute(_OUTBOX)


def _move_applications_out_of_meta(db: sqlite3.Connection) -> None:
    """Migration: the registry's one meta document becomes a row per application, in one transaction."""
    row = db.execute("SELECT v FROM meta WHERE k = ?", (_APPLICATIONS_META_KEY,)).fetchone()
    if row is None:
        return
    apps = orjson.loads(row[0]) or {}
    db.execute("BEGIN")
    db.executemany(
        "INSERT OR REPLACE INTO applications (key, doc) VALUES (?, ?)",
        [(key, orjson.dumps(app)) for key, app in apps.items()],
    )
    db.execute("DELETE FROM meta WHERE k = ?", (_APPLICATIONS_META_KEY,))
    db.execute("COMMIT")


def _move_private_fields_out_of_documents(db: sqlite3.Connection) -> None:
    """Migration: an older service's "_" fields leave the documents for the `private` column."""
    for table, names in _LEGACY_PRIVATE.items():
        if "private" in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            continue
        db.execute("BEGIN")
        db.execute(f"ALTER TABLE {table} ADD COLUMN private BLOB")
        rows = db.execute(f"SELECT rowid, doc FROM {table} WHERE instr(doc, '\"_') > 0").fetchall()
        for rowid, raw in rows:
            doc = orjson.loads(raw)
            private = {names[key]: doc.pop(key) for key in list(doc) if key in names}
            if table == "nodes" and doc.pop("_external", None):  # the first way of marking agents on other hosts
                private.setdefault("provider", "external")
            for key in [key for key in doc if key.startswith("_")]:
                del doc[key]  # kept in columns (`_seq`, `_pool`) or no longer used
            db.execute(
                f"UPDATE {table} SET doc = ?, private = ? WHERE rowid = ?",
                (orjson.dumps(doc), orjson.dumps(private), rowid),
            )
        db.execute("COMMIT")
