"""The SQLite store's outbox statements (the `Store` port's outbox part; the table is in schema.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


class OutboxStatements:
    """Mixed into SqliteStore: one connection, used from the event loop thread only."""

    _db: sqlite3.Connection

    def add_outbox_records(self, records: Iterable[bytes]) -> None:
        self._db.executemany("INSERT INTO outbox (record) VALUES (?)", ((record,) for record in records))

    def outbox_records(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT seq, record FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
        return [(int(seq), bytes(record)) for seq, record in rows]

    def delete_outbox_records(self, through_seq: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE seq <= ?", (through_seq,))
