"""Moving a SQLite data directory's state into an empty PostgreSQL database (`batchyard store migrate`).

Both stores have the tables of persistence/schema.py, so every table is copied column for column (with
PostgreSQL's COPY), in one transaction: the target gets everything or nothing. The SQLite file is opened
as the service opens it (an older file is brought to the current schema first) and read in one
transaction, a consistent snapshot; it is left as it was.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from batchyard.service.persistence.postgres.schema import open_database as open_postgres
from batchyard.service.persistence.schema import TABLES, VERSION_KEY, StoreError
from batchyard.service.persistence.sqlite.schema import open_database as open_sqlite


def copy_to_postgres(sqlite_path: Path, url: str) -> dict[str, int]:
    """Rows copied per table; StoreError when the source is missing or the target holds anything already."""
    if not sqlite_path.is_file():
        raise StoreError(f"there is no batchyard database at {sqlite_path}")
    source = open_sqlite(sqlite_path)
    target = open_postgres(url)
    copied: dict[str, int] = {}
    try:
        source.execute("BEGIN")  # one snapshot of every table
        with target.transaction():
            _refuse_if_used(target)
            for table in TABLES:
                names = [column.name for column in table.columns]
                json_columns = {i for i, column in enumerate(table.columns) if column.type == "json"}
                query = f"SELECT {', '.join(names)} FROM {table.name}"
                if table.name == "meta":
                    query += f" WHERE k != '{VERSION_KEY}'"  # the target's own, the same version
                count = 0
                with target.cursor().copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in source.execute(query):
                        copy.write_row([_text(v) if i in json_columns else v for i, v in enumerate(row)])
                        count += 1
                copied[table.name] = count
        source.execute("ROLLBACK")
    finally:
        source.close()
        target.close()
    return copied


def _text(value: object) -> object:
    """SQLite keeps documents as JSON bytes; PostgreSQL's json column takes them as text."""
    return value.decode() if isinstance(value, bytes) else value


def _refuse_if_used(target: psycopg.Connection[TupleRow]) -> None:
    for table in TABLES:
        query = f"SELECT 1 FROM {table.name}"
        if table.name == "meta":
            query += f" WHERE k != '{VERSION_KEY}'"
        if target.execute(query + " LIMIT 1").fetchone() is not None:
            raise StoreError(
                f"the target database already holds batchyard data (table {table.name}): move into an empty one"
            )
