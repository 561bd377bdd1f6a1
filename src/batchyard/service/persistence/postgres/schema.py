"""Opening a PostgreSQL database: a connection for the store, the tables and indexes (persistence/schema.py)
created and the versioned migrations applied, under a lock so that services starting together on one
database do not race.
"""

from __future__ import annotations

import psycopg
from psycopg.adapt import Loader
from psycopg.rows import TupleRow

from batchyard.service.persistence.schema import (
    SCHEMA_VERSION,
    VERSION_KEY,
    StoreError,
    index_ddl,
    pending,
    table_ddl,
)

# pg_advisory_xact_lock key for schema changes (any constant the service uses for nothing else).
_SCHEMA_LOCK = 0x62617463  # "batc"


class DatabaseUnavailable(StoreError):
    """The database cannot be reached or refused the connection."""


class _RawJson(Loader):
    """`json` columns read as the bytes stored: a listed document is sent as it is, parsed only when needed."""

    def load(self, data: bytes | bytearray | memoryview) -> bytes:
        return bytes(data)


def connect(url: str) -> psycopg.Connection[TupleRow]:
    """A connection in autocommit mode (the store opens its transactions itself), its json read as bytes."""
    try:
        conn = psycopg.connect(url, autocommit=True, application_name="batchyard")
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to {_without_password(url)}: {exc}".strip()) from exc
    conn.adapters.register_loader("json", _RawJson)
    return conn


def open_database(url: str) -> psycopg.Connection[TupleRow]:
    """A connection to the database at `url`, with the current schema."""
    conn = connect(url)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in table_ddl("postgres"):
                conn.execute(statement)
            for statement in index_ddl():
                conn.execute(statement)
            row = conn.execute("SELECT v FROM meta WHERE k = %s", (VERSION_KEY,)).fetchone()
            found = int(str(row[0])) if row else None
            for statement in pending(_without_password(url), found, "postgres"):
                conn.execute(statement)
            if found != SCHEMA_VERSION:
                conn.execute(
                    "INSERT INTO meta (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    (VERSION_KEY, str(SCHEMA_VERSION)),
                )
    except BaseException:
        conn.close()
        raise
    return conn


def _without_password(url: str) -> str:
    """The URL as it may be shown in messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(the given database URL)"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **info)
