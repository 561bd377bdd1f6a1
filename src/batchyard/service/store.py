"""SQLite persistence: every entity is its wire-shaped JSON document plus the indexed columns queries need.

One connection, used only from the event loop thread. WAL with synchronous=NORMAL survives a killed
process (only an OS crash can lose the last commits). Callers group writes with `transaction()`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pools (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, pool_key TEXT NOT NULL, seq INTEGER NOT NULL,
    doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS schedules (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    job_key TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL,
    node_id TEXT, doc BLOB NOT NULL, PRIMARY KEY (job_key, key));
CREATE UNIQUE INDEX IF NOT EXISTS tasks_by_seq ON tasks (job_key, seq);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (job_key, state, seq);
CREATE INDEX IF NOT EXISTS tasks_by_node ON tasks (node_id) WHERE node_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS prep_status (job_key TEXT NOT NULL, node_id TEXT NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (job_key, node_id));
CREATE TABLE IF NOT EXISTS retention (expiry REAL NOT NULL, node_id TEXT NOT NULL, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS retention_by_expiry ON retention (expiry);
CREATE TABLE IF NOT EXISTS certificates (key TEXT PRIMARY KEY, doc BLOB NOT NULL);
"""

_dumps = orjson.dumps
_loads = orjson.loads


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=OFF")
        self._db.executescript(SCHEMA)
        self._depth = 0
        self._seq = int(self.get_meta("seq") or 0)
        self._saved_seq = self._seq

    def close(self) -> None:
        self._db.close()

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested use joins the outer transaction; the outermost commits or rolls back."""
        if self._depth == 0:
            self._db.execute("BEGIN")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
                self._seq = int(self.get_meta("seq") or 0)
            raise
        self._depth -= 1
        if self._depth == 0:
            if self._seq != self._saved_seq:
                self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('seq', ?)", (str(self._seq),))
                self._saved_seq = self._seq
            self._db.execute("COMMIT")

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def next_seqs(self, count: int) -> range:
        start = self._seq + 1
        self._seq += count
        return range(start, start + count)

    # --- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    # --- pools, nodes, jobs (small tables, loaded whole at start) ----------------------------

    def load_all(self, table: str) -> list[dict[str, Any]]:
        assert table in ("pools", "nodes", "jobs", "schedules")
        return [_loads(row[0]) for row in self._db.execute(f"SELECT doc FROM {table} ORDER BY seq")]

    def put_pool(self, key: str, seq: int, doc: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO pools (key, seq, doc) VALUES (?, ?, ?)", (key, seq, _dumps(doc)))

    def delete_pool(self, key: str) -> None:
        self._db.execute("DELETE FROM pools WHERE key = ?", (key,))

    def put_node(self, node_id: str, pool_key: str, seq: int, doc: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO nodes (id, pool_key, seq, doc) VALUES (?, ?, ?, ?)",
            (node_id, pool_key, seq, _dumps(doc)),
        )

    def delete_node(self, node_id: str) -> None:
        self._db.execute("DELETE FROM nodes WHERE id = ?", (node_id,))

    def put_job(self, key: str, seq: int, doc: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO jobs (key, seq, doc) VALUES (?, ?, ?)", (key, seq, _dumps(doc)))

    def delete_job(self, key: str) -> None:
        self._db.execute("DELETE FROM jobs WHERE key = ?", (key,))
        self._db.execute("DELETE FROM tasks WHERE job_key = ?", (key,))
        self._db.execute("DELETE FROM prep_status WHERE job_key = ?", (key,))

    def put_schedule(self, key: str, seq: int, doc: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO schedules (key, seq, doc) VALUES (?, ?, ?)", (key, seq, _dumps(doc))
        )

    def delete_schedule(self, key: str) -> None:
        self._db.execute("DELETE FROM schedules WHERE key = ?", (key,))

    # --- tasks (large: never loaded whole) ---------------------------------------------------

    def insert_tasks(self, job_key: str, rows: Iterable[tuple[str, int, str, dict[str, Any]]]) -> None:
        """rows: (task key, seq, state, doc)."""
        self._db.executemany(
            "INSERT INTO tasks (job_key, key, seq, state, node_id, doc) VALUES (?, ?, ?, ?, NULL, ?)",
            [(job_key, key, seq, state, _dumps(doc)) for key, seq, state, doc in rows],
        )

    def update_task(self, job_key: str, key: str, state: str, node_id: str | None, doc: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE tasks SET state = ?, node_id = ?, doc = ? WHERE job_key = ? AND key = ?",
            (state, node_id, _dumps(doc), job_key, key),
        )

    def get_task(self, job_key: str, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT doc FROM tasks WHERE job_key = ? AND key = ?", (job_key, key)).fetchone()
        return _loads(row[0]) if row else None

    def get_tasks(self, job_key: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, doc in self._db.execute(
                f"SELECT key, doc FROM tasks WHERE job_key = ? AND key IN ({marks})", (job_key, *chunk)
            ):
                found[key] = _loads(doc)
        return found

    def existing_task_keys(self, job_key: str, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in self._db.execute(
                    f"SELECT key FROM tasks WHERE job_key = ? AND key IN ({marks})", (job_key, *chunk)
                )
            )
        return found

    def delete_task(self, job_key: str, key: str) -> None:
        self._db.execute("DELETE FROM tasks WHERE job_key = ? AND key = ?", (job_key, key))

    def list_tasks(
        self, job_key: str, after_seq: int, limit: int, where: str = "", params: tuple[Any, ...] = ()
    ) -> list[tuple[int, bytes]]:
        """A page of (seq, raw doc) in insertion order; `where` is an SQL fragment over the columns."""
        extra = f" AND ({where})" if where else ""
        return self._db.execute(
            f"SELECT seq, doc FROM tasks WHERE job_key = ? AND seq > ?{extra} ORDER BY seq LIMIT ?",
            (job_key, after_seq, *params, limit),
        ).fetchall()

    def task_keys_in_state(self, job_key: str, states: tuple[str, ...]) -> list[tuple[str, bytes]]:
        marks = ",".join("?" * len(states))
        return self._db.execute(
            f"SELECT key, doc FROM tasks WHERE job_key = ? AND state IN ({marks}) ORDER BY seq",
            (job_key, *states),
        ).fetchall()

    def tasks_on_node(self, node_id: str) -> list[tuple[str, str, bytes]]:
        return self._db.execute(
            "SELECT job_key, key, doc FROM tasks WHERE node_id = ? AND state IN ('running', 'preparing')",
            (node_id,),
        ).fetchall()

    # --- certificates (few and small: loaded whole at start) --------------------------------

    def load_certificates(self) -> list[dict[str, Any]]:
        return [_loads(row[0]) for row in self._db.execute("SELECT doc FROM certificates ORDER BY key")]

    def put_certificate(self, key: str, doc: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO certificates (key, doc) VALUES (?, ?)", (key, _dumps(doc)))

    def delete_certificate(self, key: str) -> None:
        self._db.execute("DELETE FROM certificates WHERE key = ?", (key,))

    # --- job preparation and release status, per job and node --------------------------------

    def put_prep_status(self, job_key: str, node_id: str, doc: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO prep_status (job_key, node_id, doc) VALUES (?, ?, ?)",
            (job_key, node_id, _dumps(doc)),
        )

    def delete_prep_status(self, job_key: str, node_id: str) -> None:
        self._db.execute("DELETE FROM prep_status WHERE job_key = ? AND node_id = ?", (job_key, node_id))

    def load_prep_statuses(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(job, node, _loads(doc)) for job, node, doc in self._db.execute("SELECT * FROM prep_status")]

    # --- retention: task directories to remove from nodes when their retention time is over ----

    def retain(self, expiry: float, node_id: str, path: str) -> None:
        self._db.execute("INSERT INTO retention (expiry, node_id, path) VALUES (?, ?, ?)", (expiry, node_id, path))

    def take_expired(self, now: float) -> list[tuple[str, str]]:
        rows = self._db.execute("SELECT node_id, path FROM retention WHERE expiry <= ?", (now,)).fetchall()
        if rows:
            self._db.execute("DELETE FROM retention WHERE expiry <= ?", (now,))
        return rows

    def retained_until(self, node_id: str) -> float:
        """When the last retained task directory on a node may be removed (0 when none is kept)."""
        row = self._db.execute("SELECT MAX(expiry) FROM retention WHERE node_id = ?", (node_id,)).fetchone()
        return float(row[0] or 0.0)

    def count_task_states(self) -> list[tuple[str, str, int]]:
        return self._db.execute("SELECT job_key, state, COUNT(*) FROM tasks GROUP BY job_key, state").fetchall()

    def task_results(self, job_key: str) -> tuple[int, int]:
        """(succeeded, failed) among completed tasks of a job."""
        row = self._db.execute(
            "SELECT SUM(json_extract(doc, '$.executionInfo.result') = 'success'),"
            " SUM(json_extract(doc, '$.executionInfo.result') = 'failure')"
            " FROM tasks WHERE job_key = ? AND state = 'completed'",
            (job_key,),
        ).fetchone()
        return int(row[0] or 0), int(row[1] or 0)
