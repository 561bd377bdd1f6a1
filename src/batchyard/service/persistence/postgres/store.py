"""PostgreSQL persistence (the `Store` port), the same tables and semantics as the SQLite store: every entity
is its wire document, its private fields, and the indexed columns queries need (persistence/schema.py).

(Over 400 lines on purpose: one class implementing the whole `Store` port, its statements grouped by
entity, as in sqlite/store.py; opening and migrating the database is in schema.py, `$filter` in filters.py.)

One connection in autocommit mode, used only from the event loop thread: a write outside `transaction()`
is committed when it returns, one inside when the outermost transaction ends, so every change the service
acknowledges is committed (synchronous_commit, PostgreSQL's default, makes that durable) before its answer.

Opened by the holder of the failover lease (lease.py) with `claim_epoch`, the store takes a new fencing epoch
and every outermost transaction first checks it (sent with its BEGIN), holding the epoch row FOR SHARE to its
commit: a newer holder's claim waits for that commit, and once made refuses the older holder's next
transaction (Fenced).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import orjson
import psycopg
from psycopg.rows import TupleRow

from batchyard.service.documents import Private, TaskDocument, TaskPrivate, load_private
from batchyard.service.odata import Filter
from batchyard.service.persistence.postgres.analyzer import Analyzer
from batchyard.service.persistence.postgres.filters import readable, to_sql
from batchyard.service.persistence.postgres.lease import Fenced, epoch_transaction, new_epoch
from batchyard.service.persistence.postgres.schema import connect, open_database

# Top-level task properties (wire names) held in columns of the tasks table: pages of only these read
# no document.
TASK_FIELD_COLUMNS = {"id": "id", "state": "state", "stateTransitionTime": "transition"}


def _upsert(table: str, key: tuple[str, ...], columns: tuple[str, ...]) -> str:
    """INSERT of a whole row that replaces the row with the same key (SQLite's INSERT OR REPLACE)."""
    names = (*key, *columns)
    marks = ", ".join(["%s"] * len(names))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns)
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) {conflict}"


_PUT = {table: _upsert(table, ("key",), ("seq", "doc", "private")) for table in ("pools", "jobs", "schedules")}
_PUT_NODE = _upsert("nodes", ("id",), ("pool_key", "seq", "doc", "private"))
_PUT_META = _upsert("meta", ("k",), ("v",))
_PUT_CERTIFICATE = _upsert("certificates", ("key",), ("doc", "private"))
_PUT_APPLICATION = _upsert("applications", ("key",), ("doc",))
_PUT_SUBTASK = _upsert("subtasks", ("job_key", "task_key", "id"), ("doc",))
_PUT_PREP_STATUS = _upsert("prep_status", ("job_key", "node_id"), ("doc",))
_PUT_USAGE = _upsert("usage_totals", ("scope", "key"), ("doc",))
_COPY_TASKS = "COPY tasks (job_key, key, seq, state, doc, private, id, exit_code, transition) FROM STDIN"

_loads = orjson.loads
log = logging.getLogger(__name__)
_DOC = readable("doc")  # the document as JSON functions read it


def _json(doc: Any) -> str:
    """A document for a `json` column (sent as text: the server checks it and keeps it as written)."""
    return orjson.dumps(doc).decode()


class PostgresStore:
    task_fields = frozenset(TASK_FIELD_COLUMNS)
    # Told how long each outermost transaction took, begin to commit (the service's metrics).
    transaction_observer: Callable[[float], None] | None = None

    def __init__(self, url: str, claim_epoch: bool = False) -> None:
        """claim_epoch: the caller holds the failover lease (lease.py), and this store writes under a new
        fencing epoch."""
        self._url = url
        self._conn = open_database(url)
        self._depth = 0
        # The fencing epoch this store writes under (None: unfenced); claimed before anything is read, so a
        # former holder's last commit is in what this one loads.
        self._epoch = new_epoch(self._conn) if claim_epoch else None
        self.fenced = False
        self._seq = int(self.get_meta("seq") or 0)
        self._saved_seq = self._seq
        self._inserted = 0  # tasks inserted in the open transaction
        row = self._db.execute("SELECT reltuples FROM pg_class WHERE oid = 'tasks'::regclass").fetchone()
        self._analyzer = Analyzer(url, max(int(row[0]), 0) if row else 0)

    def close(self) -> None:
        self._analyzer.close()
        self._conn.close()

    @property
    def _db(self) -> psycopg.Connection[TupleRow]:
        """The connection; a new one when the last was lost (the server restarted, the network dropped),
        outside a transaction. The statement that found it lost failed, as its request did (a 500 the
        client retries); what was committed before is in the database."""
        if self._conn.broken and not self._depth:
            log.warning("the connection to the database was lost: connecting again")
            self._conn.close()
            self._conn = connect(self._url)
            # A commit cut off with the connection may have happened: go on from the number it saved.
            row = self._conn.execute("SELECT v FROM meta WHERE k = 'seq'").fetchone()
            self._seq = self._saved_seq = max(self._saved_seq, int(row[0]) if row else 0)
        return self._conn

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested use joins the outer transaction; the outermost commits or rolls back."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        conn = self._db  # (a new connection if the last was lost)
        self._depth = 1
        began = time.perf_counter()
        try:
            with self._outermost(conn):
                yield
                if self._seq != self._saved_seq:
                    self.set_meta("seq", str(self._seq))
        except BaseException as exc:
            self._seq = self._saved_seq
            if isinstance(exc, Fenced) and not self.fenced:
                self.fenced = True
                log.error("%s: this instance stops writing", exc)
            raise
        finally:
            self._depth = 0
            inserted, self._inserted = self._inserted, 0
        self._saved_seq = self._seq
        if self.transaction_observer is not None:
            self.transaction_observer(time.perf_counter() - began)
        self._analyzer.added(inserted)

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def epoch_is_current(self) -> bool:
        """Whether the database's fencing epoch is still the one this store claimed."""
        row = self._db.execute("SELECT v FROM meta WHERE k = 'epoch'").fetchone()
        return row is not None and int(row[0]) == self._epoch

    def relinquish(self) -> None:
        """This instance is no longer the active one: refuse every transaction from now on."""
        self.fenced = True

    def _outermost(self, conn: psycopg.Connection[TupleRow]) -> AbstractContextManager[object]:
        """An outermost transaction: checked against this store's fencing epoch when it claimed one."""
        if self._epoch is None:
            return conn.transaction()
        if self.fenced:
            raise Fenced("this instance is no longer the active one: another took charge of the database")
        return epoch_transaction(conn, self._epoch)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def next_seqs(self, count: int) -> range:
        start = self._seq + 1
        self._seq += count
        return range(start, start + count)

    # --- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = %s", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(_PUT_META, (key, value))

    # --- the outbox: diagnostic log records saved with the change that raised them -----------------
    # (migration 2 of persistence/schema.py; one writer, the event loop, so the sequence's numbers ascend in
    # commit order)

    def add_outbox_records(self, records: Iterable[bytes]) -> None:
        with self._db.cursor() as cursor:
            cursor.executemany("INSERT INTO outbox (record) VALUES (%s)", [(record,) for record in records])

    def outbox_records(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT seq, record FROM outbox WHERE seq > %s ORDER BY seq LIMIT %s", (after_seq, limit)
        ).fetchall()
        return [(int(seq), bytes(record)) for seq, record in rows]

    def delete_outbox_records(self, through_seq: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE seq <= %s", (through_seq,))

    # --- pools, nodes, jobs, schedules (small tables, loaded whole at start) ------------------

    def load_all(self, table: str) -> list[tuple[str, int, dict[str, Any], Private]]:
        """(key, seq, doc, private) of every pool, job or schedule, in creation order."""
        assert table in ("pools", "jobs", "schedules")
        rows = self._db.execute(f"SELECT key, seq, doc, private FROM {table} ORDER BY seq")
        return [(key, seq, _loads(doc), _loads(private) if private else {}) for key, seq, doc, private in rows]

    def put_pool(self, key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(_PUT["pools"], (key, seq, _json(doc), orjson.dumps(private)))

    def delete_pool(self, key: str) -> None:
        self._db.execute("DELETE FROM pools WHERE key = %s", (key,))

    def load_nodes(self) -> list[tuple[str, int, dict[str, Any], Private]]:
        """(pool key, seq, doc, private) of every node, in creation order."""
        rows = self._db.execute("SELECT pool_key, seq, doc, private FROM nodes ORDER BY seq")
        return [(pool, seq, _loads(doc), _loads(private) if private else {}) for pool, seq, doc, private in rows]

    def put_node(self, node_id: str, pool_key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(_PUT_NODE, (node_id, pool_key, seq, _json(doc), orjson.dumps(private)))

    def delete_node(self, node_id: str) -> None:
        self._db.execute("DELETE FROM nodes WHERE id = %s", (node_id,))
        self.forget_retained(node_id)

    def put_job(self, key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(_PUT["jobs"], (key, seq, _json(doc), orjson.dumps(private)))

    def delete_job(self, key: str) -> None:
        for table in ("jobs", "tasks", "prep_status", "subtasks"):
            column = "key" if table == "jobs" else "job_key"
            self._db.execute(f"DELETE FROM {table} WHERE {column} = %s", (key,))

    def put_schedule(self, key: str, seq: int, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(_PUT["schedules"], (key, seq, _json(doc), orjson.dumps(private)))

    def delete_schedule(self, key: str) -> None:
        self._db.execute("DELETE FROM schedules WHERE key = %s", (key,))

    # --- tasks (large: never loaded whole) ---------------------------------------------------

    def insert_tasks(self, job_key: str, rows: Iterable[tuple[str, int, str, TaskDocument]]) -> None:
        """rows: (task key, seq, state, doc), in one COPY (half the client's CPU of a pipelined executemany)."""
        count = 0
        with self._db.cursor() as cursor, cursor.copy(_COPY_TASKS) as copy:
            for key, seq, state, doc in rows:
                private = _dump_task_private(doc.kept_private)
                transition = doc.get("stateTransitionTime")
                copy.write_row((job_key, key, seq, state, _json(doc), private, doc["id"], _exit_code(doc), transition))
                count += 1
        self._inserted += count
        if not self._depth:  # committed already
            self._analyzer.added(self._inserted)
            self._inserted = 0

    def update_task(self, job_key: str, key: str, state: str, node_id: str | None, doc: TaskDocument) -> None:
        self._db.execute(
            "UPDATE tasks SET state = %s, node_id = %s, doc = %s, private = %s, exit_code = %s, transition = %s"
            " WHERE job_key = %s AND key = %s",
            (
                state,
                node_id,
                _json(doc),
                _dump_task_private(doc.kept_private),
                _exit_code(doc),
                doc.get("stateTransitionTime"),
                job_key,
                key,
            ),
        )

    def get_task(self, job_key: str, key: str) -> TaskDocument | None:
        row = self._db.execute(
            "SELECT doc, private FROM tasks WHERE job_key = %s AND key = %s", (job_key, key)
        ).fetchone()
        return _task_document(row[0], row[1]) if row else None

    def get_tasks(self, job_key: str, keys: list[str]) -> dict[str, TaskDocument]:
        rows = self._db.execute(
            "SELECT key, doc, private FROM tasks WHERE job_key = %s AND key = ANY(%s)", (job_key, keys)
        )
        return {key: _task_document(doc, private) for key, doc, private in rows}

    def existing_task_keys(self, job_key: str, keys: list[str]) -> set[str]:
        rows = self._db.execute("SELECT key FROM tasks WHERE job_key = %s AND key = ANY(%s)", (job_key, keys))
        return {row[0] for row in rows}

    def delete_task(self, job_key: str, key: str) -> None:
        self._db.execute("DELETE FROM tasks WHERE job_key = %s AND key = %s", (job_key, key))

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
        sql, args = _task_page_sql(what, job_key, after_seq, limit, where)
        return self._db.execute(sql, args).fetchall()

    def explain_task_list(self, job_key: str, where: Filter | None = None) -> list[str]:
        """The query plan of a filtered task page (tests check which index answers it)."""
        sql, args = _task_page_sql("doc", job_key, 0, 1000, where)
        return [str(row[0]) for row in self._db.execute("EXPLAIN " + sql, args)]

    def task_keys_in_state(self, job_key: str, states: tuple[str, ...]) -> list[tuple[str, TaskDocument]]:
        rows = self._db.execute(
            "SELECT key, doc, private FROM tasks WHERE job_key = %s AND state = ANY(%s) ORDER BY seq",
            (job_key, list(states)),
        )
        return [(key, _task_document(doc, private)) for key, doc, private in rows]

    def count_task_states(self) -> list[tuple[str, str, int]]:
        return self._db.execute("SELECT job_key, state, COUNT(*) FROM tasks GROUP BY job_key, state").fetchall()

    def task_results(self, job_key: str) -> tuple[int, int]:
        """(succeeded, failed) among completed tasks of a job."""
        row = self._db.execute(
            f"SELECT count(*) FILTER (WHERE {_DOC} #>> '{{executionInfo,result}}' = 'success'),"
            f" count(*) FILTER (WHERE {_DOC} #>> '{{executionInfo,result}}' = 'failure')"
            " FROM tasks WHERE job_key = %s AND state = 'completed'",
            (job_key,),
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def multi_instance_sizes(self, job_key: str) -> dict[str, int]:
        """Unfinished multi-instance tasks of a job: task key -> numberOfInstances."""
        rows = self._db.execute(
            f"SELECT key, {_DOC} #>> '{{multiInstanceSettings,numberOfInstances}}' FROM tasks WHERE job_key = %s"
            f" AND state <> 'completed' AND json_typeof({_DOC} -> 'multiInstanceSettings') = 'object'",
            (job_key,),
        )
        return {key: int(count or 1) for key, count in rows}

    # --- certificates and applications (few and small: loaded whole at start) -----------------

    def load_certificates(self) -> list[tuple[str, dict[str, Any], Private]]:
        rows = self._db.execute("SELECT key, doc, private FROM certificates ORDER BY key")
        return [(key, _loads(doc), _loads(private) if private else {}) for key, doc, private in rows]

    def put_certificate(self, key: str, doc: dict[str, Any], private: Private) -> None:
        self._db.execute(_PUT_CERTIFICATE, (key, _json(doc), orjson.dumps(private)))

    def delete_certificate(self, key: str) -> None:
        self._db.execute("DELETE FROM certificates WHERE key = %s", (key,))

    def load_applications(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, _loads(doc)) for key, doc in self._db.execute("SELECT key, doc FROM applications ORDER BY key")]

    def put_application(self, key: str, doc: dict[str, Any]) -> None:
        self._db.execute(_PUT_APPLICATION, (key, _json(doc)))

    def delete_application(self, key: str) -> None:
        self._db.execute("DELETE FROM applications WHERE key = %s", (key,))

    # --- subtasks of multi-instance tasks; job preparation and release status -----------------

    def put_subtask(self, job_key: str, task_key: str, subtask_id: int, doc: dict[str, Any]) -> None:
        self._db.execute(_PUT_SUBTASK, (job_key, task_key, subtask_id, _json(doc)))

    def list_subtasks(self, job_key: str, task_key: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT doc FROM subtasks WHERE job_key = %s AND task_key = %s ORDER BY id", (job_key, task_key)
        )
        return [_loads(row[0]) for row in rows]

    def delete_subtasks(self, job_key: str, task_key: str | None = None) -> None:
        if task_key is None:
            self._db.execute("DELETE FROM subtasks WHERE job_key = %s", (job_key,))
        else:
            self._db.execute("DELETE FROM subtasks WHERE job_key = %s AND task_key = %s", (job_key, task_key))

    def put_prep_status(self, job_key: str, node_id: str, doc: dict[str, Any]) -> None:
        self._db.execute(_PUT_PREP_STATUS, (job_key, node_id, _json(doc)))

    def delete_prep_status(self, job_key: str, node_id: str) -> None:
        self._db.execute("DELETE FROM prep_status WHERE job_key = %s AND node_id = %s", (job_key, node_id))

    def load_prep_statuses(self) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self._db.execute("SELECT job_key, node_id, doc FROM prep_status")
        return [(job, node, _loads(doc)) for job, node, doc in rows]

    # --- retention: task directories to remove from nodes when their retention time is over ----

    def retain(self, expiry: float, node_id: str, path: str) -> None:
        self._db.execute("INSERT INTO retention (expiry, node_id, path) VALUES (%s, %s, %s)", (expiry, node_id, path))

    def take_expired(self, now: float) -> list[tuple[str, str]]:
        return self._db.execute("DELETE FROM retention WHERE expiry <= %s RETURNING node_id, path", (now,)).fetchall()

    def forget_retained(self, node_id: str) -> None:
        """The node's disk is gone (reimaged or removed): nothing is retained there any more."""
        self._db.execute("DELETE FROM retention WHERE node_id = %s", (node_id,))

    def retained_until(self, node_id: str) -> float:
        """When the last retained task directory on a node may be removed (0 when none is kept)."""
        row = self._db.execute("SELECT MAX(expiry) FROM retention WHERE node_id = %s", (node_id,)).fetchone()
        return float(row[0] or 0.0) if row else 0.0

    # --- usage: running totals per job, schedule and pool; pool core time per interval ----------

    def load_usage(self) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self._db.execute("SELECT scope, key, doc FROM usage_totals")
        return [(scope, key, _loads(doc)) for scope, key, doc in rows]

    def put_usage(self, scope: str, key: str, doc: dict[str, Any]) -> None:
        self._db.execute(_PUT_USAGE, (scope, key, _json(doc)))

    def add_pool_usage(self, start: float, pool_id: str, vm_size: str, core_seconds: float) -> None:
        self._db.execute(
            "INSERT INTO pool_usage (start, pool_id, vm_size, core_seconds) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (start, pool_id) DO UPDATE SET"
            " core_seconds = pool_usage.core_seconds + EXCLUDED.core_seconds, vm_size = EXCLUDED.vm_size",
            (start, pool_id, vm_size, core_seconds),
        )

    def pool_usage(self, first: float, last: float) -> list[tuple[float, str, str, float]]:
        """(interval start, pool id, vm size, core seconds) for intervals starting in [first, last]."""
        return self._db.execute(
            "SELECT start, pool_id, vm_size, core_seconds FROM pool_usage WHERE start >= %s AND start <= %s"
            " ORDER BY start, pool_id",
            (first, last),
        ).fetchall()


def _task_page_sql(
    what: str, job_key: str, after_seq: int, limit: int, where: Filter | None
) -> tuple[str, tuple[Any, ...]]:
    condition, params = to_sql(where, "tasks")
    extra = f" AND ({condition})" if condition else ""
    sql = f"SELECT seq, {what} FROM tasks WHERE job_key = %s AND seq > %s{extra} ORDER BY seq LIMIT %s"
    return sql, (job_key, after_seq, *params, limit)


def _exit_code(doc: dict[str, Any]) -> int | None:
    code = (doc.get("executionInfo") or {}).get("exitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


_DEFAULT_TASK_PRIVATE = TaskPrivate()


def _dump_task_private(private: TaskPrivate | None) -> bytes | None:
    """None for the defaults (most tasks while queued): no bytes stored, nothing to parse when read."""
    return None if private is None or private == _DEFAULT_TASK_PRIVATE else orjson.dumps(private)


def _task_document(doc: bytes, private: bytes | None) -> TaskDocument:
    return TaskDocument.with_private(_loads(doc), load_private(TaskPrivate, _loads(private)) if private else None)
