"""SQLite persistence (the `Store` port): every entity is its wire document, its private fields, and the
indexed columns queries need (see schema.py).

(Over 400 lines on purpose: one class implementing the whole `Store` port, its statements grouped by
entity; the schema and migrations are in schema.py, `$filter` to SQL in filters.py.)

One connection, used only from the event loop thread. WAL with synchronous=NORMAL survives a killed
process (only an OS crash can lose the last commits). Callers group writes with `transaction()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from batchyard.service.documents import Private, TaskDocument, TaskPrivate, load_private
from batchyard.service.odata import Filter
from batchyard.service.persistence.sqlite.filters import IndexHint, to_index_hint, to_sql
from batchyard.service.persistence.sqlite.outbox import OutboxStatements
from batchyard.service.persistence.sqlite.schema import open_database

# Filtered task pages go through a hinted index when fewer rows than this match its condition.
INDEX_PROBE = 5000
# Top-level task properties (wire names) held in columns of the tasks table: pages of only these read
# no document.
TASK_FIELD_COLUMNS = {"id": "id", "state": "state", "stateTransitionTime": "transition"}

_dumps = orjson.dumps
_loads = orjson.loads


class SqliteStore(OutboxStatements):
    task_fields = frozenset(TASK_FIELD_COLUMNS)
    transaction_observer: Callable[[float], None] | None = None

    def __init__(self, path: Path) -> None:
        self._db = open_database(path)
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
            self._began = time.perf_counter()
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
            if self.transaction_observer is not None:
                self.transaction_observer(time.perf_counter() - self._began)

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

    def load_all(self, table: str) -> list[tuple[str, int, dict[str, Any], Private]]:
        """(key, seq, doc, private) of every pool, job or schedule, in creation order."""
        assert table in ("pools", "jobs", "schedules")
        return [
            (key, seq, _loads(doc), _loads(private) if private else {})
            for key, seq, doc, private in self._db.execute(f"SELECT key, seq, doc, private FROM {table} ORDER BY seq")
        ]

    def put_pool(self, key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO pools (key, seq, doc, private) VALUES (?, ?, ?, ?)",
            (key, seq, _dumps(doc), _dumps(private)),
        )

    def delete_pool(self, key: str) -> None:
        self._db.execute("DELETE FROM pools WHERE key = ?", (key,))

    def load_nodes(self) -> list[tuple[str, int, dict[str, Any], Private]]:
        """(pool key, seq, doc, private) of every node, in creation order."""
        rows = self._db.execute("SELECT pool_key, seq, doc, private FROM nodes ORDER BY seq")
        return [
            (pool_key, seq, _loads(doc), _loads(private) if private else {}) for pool_key, seq, doc, private in rows
        ]

    def put_node(self, node_id: str, pool_key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO nodes (id, pool_key, seq, doc, private) VALUES (?, ?, ?, ?, ?)",
            (node_id, pool_key, seq, _dumps(doc), _dumps(private)),
        )

    def delete_node(self, node_id: str) -> None:
        self._db.execute("DELETE FROM nodes WHERE id = ?", (node_id,))
        self.forget_retained(node_id)

    def put_job(self, key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO jobs (key, seq, doc, private) VALUES (?, ?, ?, ?)",
            (key, seq, _dumps(doc), _dumps(private)),
        )

    def delete_job(self, key: str) -> None:
        self._db.execute("DELETE FROM jobs WHERE key = ?", (key,))
        self._db.execute("DELETE FROM tasks WHERE job_key = ?", (key,))
        self._db.execute("DELETE FROM prep_status WHERE job_key = ?", (key,))
        self._db.execute("DELETE FROM subtasks WHERE job_key = ?", (key,))

    def put_schedule(self, key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO schedules (key, seq, doc, private) VALUES (?, ?, ?, ?)",
            (key, seq, _dumps(doc), _dumps(private)),
        )

    def delete_schedule(self, key: str) -> None:
        self._db.execute("DELETE FROM schedules WHERE key = ?", (key,))

    # --- tasks (large: never loaded whole) ---------------------------------------------------

    def insert_tasks(self, job_key: str, rows: Iterable[tuple[str, int, str, TaskDocument]]) -> None:
        """rows: (task key, seq, state, doc)."""
        self._db.executemany(
            "INSERT INTO tasks (job_key, key, seq, state, node_id, doc, private, id, exit_code, transition)"
            " VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?)",
            [
                (
                    job_key,
                    key,
                    seq,
                    state,
                    _dumps(doc),
                    _dump_task_private(doc.kept_private),
                    doc["id"],
                    _exit_code(doc),
                    doc.get("stateTransitionTime"),
                )
                for key, seq, state, doc in rows
            ],
        )

    def update_task(self, job_key: str, key: str, state: str, node_id: str | None, doc: TaskDocument) -> None:
        self._db.execute(
            "UPDATE tasks SET state = ?, node_id = ?, doc = ?, private = ?, exit_code = ?, transition = ?"
            " WHERE job_key = ? AND key = ?",
            (
                state,
                node_id,
                _dumps(doc),
                _dump_task_private(doc.kept_private),
                _exit_code(doc),
                doc.get("stateTransitionTime"),
                job_key,
                key,
            ),
        )

    def get_task(self, job_key: str, key: str) -> TaskDocument | None:
        row = self._db.execute(
            "SELECT doc, private FROM tasks WHERE job_key = ? AND key = ?", (job_key, key)
        ).fetchone()
        return _task_document(*row) if row else None

    def get_tasks(self, job_key: str, keys: list[str]) -> dict[str, TaskDocument]:
        found: dict[str, TaskDocument] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, doc, private in self._db.execute(
                f"SELECT key, doc, private FROM tasks WHERE job_key = ? AND key IN ({marks})", (job_key, *chunk)
            ):
                found[key] = _task_document(doc, private)
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
        self, job_key: str, after_seq: int, limit: int, where: Filter | None = None
    ) -> list[tuple[int, bytes]]:
        """A page of (seq, raw doc) in insertion order, of the tasks matching `where` (a validated task filter)."""
        return self._task_page("doc", job_key, after_seq, limit, where)

    def list_task_documents(
        self, job_key: str, after_seq: int, limit: int, where: Filter | None = None
    ) -> list[tuple[int, TaskDocument]]:
        """Like list_tasks, with each task's private fields (what its statistics are made of)."""
        rows = self._task_page("doc, private", job_key, after_seq, limit, where)
        return [(seq, _task_document(doc, private)) for seq, doc, private in rows]

    def list_task_fields(
        self, job_key: str, after_seq: int, limit: int, fields: Collection[str], where: Filter | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """Like list_tasks, but (seq, {field: value}) for properties in `task_fields`: no document is read."""
        names = tuple(dict.fromkeys(fields))
        columns = ", ".join(TASK_FIELD_COLUMNS[name] for name in names)
        rows = self._task_page(columns, job_key, after_seq, limit, where)
        return [(seq, dict(zip(names, values, strict=True))) for seq, *values in rows]

    def _task_page(self, what: str, job_key: str, after_seq: int, limit: int, where: Filter | None) -> list[Any]:
        sql, args = self._task_page_sql(what, job_key, after_seq, limit, where)
        return self._db.execute(sql, args).fetchall()

    def _task_page_sql(
        self, what: str, job_key: str, after_seq: int, limit: int, where: Filter | None
    ) -> tuple[str, tuple[Any, ...]]:
        condition, params = to_sql(where, "tasks")
        hint = to_index_hint(where, "tasks") if where is not None else None
        extra = f" AND ({condition})" if condition else ""
        indexed = f" INDEXED BY {hint.index}" if hint is not None and self._few_match(job_key, hint) else ""
        sql = f"SELECT seq, {what} FROM tasks{indexed} WHERE job_key = ? AND seq > ?{extra} ORDER BY seq LIMIT ?"
        return sql, (job_key, after_seq, *params, limit)

    def _few_match(self, job_key: str, hint: IndexHint) -> bool:
        """Whether fewer than INDEX_PROBE rows of the job satisfy the hint's condition (counted in its index).

        SQLite otherwise walks the job in seq order (no sort, stops at the page size), which costs the job's
        size when few rows match; through the index it costs the matches plus sorting them.
        """
        row = self._db.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM tasks INDEXED BY {hint.index} WHERE job_key = ? AND"
            f" {hint.condition} LIMIT {INDEX_PROBE})",
            (job_key, *hint.params),
        ).fetchone()
        return int(row[0]) < INDEX_PROBE

    def explain_task_list(self, job_key: str, where: Filter | None = None) -> list[str]:
        """The query plan of a filtered task page (tests check which index answers it)."""
        sql, args = self._task_page_sql("doc", job_key, 0, 1000, where)
        return [str(row[-1]) for row in self._db.execute("EXPLAIN QUERY PLAN " + sql, args)]

    def task_keys_in_state(self, job_key: str, states: tuple[str, ...]) -> list[tuple[str, TaskDocument]]:
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT key, doc, private FROM tasks WHERE job_key = ? AND state IN ({marks}) ORDER BY seq",
            (job_key, *states),
        )
        return [(key, _task_document(doc, private)) for key, doc, private in rows]

    # --- certificates (few and small: loaded whole at start) --------------------------------

    def load_certificates(self) -> list[tuple[str, dict[str, Any], Private]]:
        rows = self._db.execute("SELECT key, doc, private FROM certificates ORDER BY key")
        return [(key, _loads(doc), _loads(private) if private else {}) for key, doc, private in rows]

    def put_certificate(self, key: str, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO certificates (key, doc, private) VALUES (?, ?, ?)",
            (key, _dumps(doc), _dumps(private)),
        )

    def delete_certificate(self, key: str) -> None:
        self._db.execute("DELETE FROM certificates WHERE key = ?", (key,))

    # --- applications and their packages (few: loaded whole at start) -------------------------

    def load_applications(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, _loads(doc)) for key, doc in self._db.execute("SELECT key, doc FROM applications ORDER BY key")]

    def put_application(self, key: str, doc: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO applications (key, doc) VALUES (?, ?)", (key, _dumps(doc)))

    def delete_application(self, key: str) -> None:
        self._db.execute("DELETE FROM applications WHERE key = ?", (key,))

    # --- subtasks of multi-instance tasks (engine/multi_instance.py) -------------------------

    def put_subtask(self, job_key: str, task_key: str, subtask_id: int, doc: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO subtasks (job_key, task_key, id, doc) VALUES (?, ?, ?, ?)",
            (job_key, task_key, subtask_id, _dumps(doc)),
        )

    def list_subtasks(self, job_key: str, task_key: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT doc FROM subtasks WHERE job_key = ? AND task_key = ? ORDER BY id", (job_key, task_key)
        )
        return [_loads(row[0]) for row in rows]

    def multi_instance_sizes(self, job_key: str) -> dict[str, int]:
        """Unfinished multi-instance tasks of a job: task key -> numberOfInstances."""
        rows = self._db.execute(
            "SELECT key, json_extract(doc, '$.multiInstanceSettings.numberOfInstances') FROM tasks"
            " WHERE job_key = ? AND state != 'completed'"
            " AND json_extract(doc, '$.multiInstanceSettings') IS NOT NULL",
            (job_key,),
        )
        return {key: int(count or 1) for key, count in rows}

    def delete_subtasks(self, job_key: str, task_key: str | None = None) -> None:
        if task_key is None:
            self._db.execute("DELETE FROM subtasks WHERE job_key = ?", (job_key,))
        else:
            self._db.execute("DELETE FROM subtasks WHERE job_key = ? AND task_key = ?", (job_key, task_key))

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

    def forget_retained(self, node_id: str) -> None:
        """The node's disk is gone (reimaged or removed): nothing is retained there any more."""
        self._db.execute("DELETE FROM retention WHERE node_id = ?", (node_id,))

    def retained_until(self, node_id: str) -> float:
        """When the last retained task directory on a node may be removed (0 when none is kept)."""
        row = self._db.execute("SELECT MAX(expiry) FROM retention WHERE node_id = ?", (node_id,)).fetchone()
        return float(row[0] or 0.0)

    # --- usage: running totals per job, schedule and pool; pool core time per interval ----------

    def load_usage(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(scope, key, _loads(doc)) for scope, key, doc in self._db.execute("SELECT * FROM usage_totals")]

    def put_usage(self, scope: str, key: str, doc: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO usage_totals (scope, key, doc) VALUES (?, ?, ?)", (scope, key, _dumps(doc))
        )

    def add_pool_usage(self, start: float, pool_id: str, vm_size: str, core_seconds: float) -> None:
        self._db.execute(
            "INSERT INTO pool_usage (start, pool_id, vm_size, core_seconds) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (start, pool_id) DO UPDATE SET core_seconds = core_seconds + excluded.core_seconds,"
            " vm_size = excluded.vm_size",
            (start, pool_id, vm_size, core_seconds),
        )

    def pool_usage(self, first: float, last: float) -> list[tuple[float, str, str, float]]:
        """(interval start, pool id, vm size, core seconds) for intervals starting in [first, last]."""
        return self._db.execute(
            "SELECT start, pool_id, vm_size, core_seconds FROM pool_usage WHERE start >= ? AND start <= ?"
            " ORDER BY start, pool_id",
            (first, last),
        ).fetchall()

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


def _exit_code(doc: dict[str, Any]) -> int | None:
    code = (doc.get("executionInfo") or {}).get("exitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


_DEFAULT_TASK_PRIVATE = TaskPrivate()


def _dump_task_private(private: TaskPrivate | None) -> bytes | None:
    """None for the defaults (most tasks while queued): no bytes stored, nothing to parse when read.
    (orjson writes the dataclass itself.)"""
    return None if private is None or private == _DEFAULT_TASK_PRIVATE else _dumps(private)


def _task_document(doc: bytes, private: bytes | None) -> TaskDocument:
    return TaskDocument.with_private(_loads(doc), load_private(TaskPrivate, _loads(private)) if private else None)
