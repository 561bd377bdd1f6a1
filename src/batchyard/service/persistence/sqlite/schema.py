"""Opening the SQLite database: the tables and indexes (persistence/schema.py), what a file from before
schema versions needs (found by looking at its tables: these migrations are additive, so an older
service's data opens unchanged), then the versioned migrations.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson

from batchyard.service.persistence.schema import SCHEMA_VERSION, VERSION_KEY, index_ddl, pending, table_ddl

# Task columns added after the first schema, so list queries read them instead of parsing documents:
# (name, type, how to fill it from an existing row's document).
_TASK_COLUMNS = (
    ("id", "TEXT", "json_extract(doc, '$.id')"),
    ("exit_code", "INTEGER", "json_extract(doc, '$.executionInfo.exitCode')"),
    ("transition", "TEXT", "json_extract(doc, '$.stateTransitionTime')"),
)

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
    for statement in table_ddl("sqlite"):
        db.execute(statement)
    _add_task_columns(db)
    for statement in index_ddl():
        db.execute(statement)
    _move_private_fields_out_of_documents(db)
    _move_applications_out_of_meta(db)
    _migrate(db, str(path))
    return db


def _migrate(db: sqlite3.Connection, where: str) -> None:
    """The versioned migrations above the file's version, in one transaction with the version they reach."""
    row = db.execute("SELECT v FROM meta WHERE k = ?", (VERSION_KEY,)).fetchone()
    found = int(row[0]) if row else None
    statements = pending(where, found, "sqlite")
    if found == SCHEMA_VERSION:
        return
    db.execute("BEGIN")
    for statement in statements:
        db.execute(statement)
    db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (VERSION_KEY, str(SCHEMA_VERSION)))
    db.execute("COMMIT")


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
