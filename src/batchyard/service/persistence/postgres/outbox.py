"""The PostgreSQL store's outbox statements (the `Store` port's outbox part; the table is migration 2 of
persistence/schema.py). One writer, the service's event loop, so the sequence's numbers ascend in commit order."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg.rows import TupleRow


class OutboxStatements:
    """Mixed into PostgresStore (as its SQLite twin is into SqliteStore)."""

    @property
    def _db(self) -> psycopg.Connection[TupleRow]:
        raise NotImplementedError

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
