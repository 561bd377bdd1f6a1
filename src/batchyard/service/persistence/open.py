"""Which store the service keeps its state in: SQLite in the data directory (the default), or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from batchyard.service.persistence.schema import StoreError
from batchyard.service.persistence.sqlite import SqliteStore
from batchyard.service.ports import Store

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(data_dir: Path, database: str | None) -> Store:
    """The store for `database` (a postgresql:// URL), or for the data directory when None; StoreError if not."""
    if not database:
        return SqliteStore(data_dir / "batchyard.db")
    if not database.startswith(POSTGRES_SCHEMES):
        raise StoreError("--database takes a PostgreSQL URL (postgresql://user@host:port/name)")
    try:
        from batchyard.service.persistence.postgres import PostgresStore
    except ImportError as exc:  # psycopg is the `postgres` extra
        raise StoreError(f"a PostgreSQL store needs psycopg 3: pip install 'batchyard[postgres]' ({exc})") from exc
    return PostgresStore(database)
