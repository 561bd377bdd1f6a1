"""The store's tables and indexes, defined once and written as each database's DDL, and the schema version.

Every entity is its wire document (`doc`, JSON), the fields only the service uses (`private`, JSON;
service/documents.py), and the columns queries need. A database records the schema version it was brought
to (`schema_version` in `meta`); opening one applies the migrations above its version, in order, and
refuses one a newer service wrote (its tables may mean things this service does not know).

TABLES and INDEXES are version 1, the schema both stores had when versions began, and stay so: a later
change is a `Migration` (its statements for each database) that raises SCHEMA_VERSION, applied to new
databases too, after the version 1 tables. (SQLite files from before versions are brought to version 1
by sqlite/schema.py, which looks at what they have.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["text", "integer", "real", "json", "blob"]

SCHEMA_VERSION = 2
VERSION_KEY = "schema_version"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    not_null: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    where: str = ""  # a partial index's condition (the same SQL in both databases)


@dataclass(frozen=True)
class Migration:
    """The statements that bring a database from `version - 1` to `version`."""

    version: int
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


def _c(name: str, type_: ColumnType, not_null: bool = True) -> Column:
    return Column(name, type_, not_null)


_DOC = (_c("doc", "json"), _c("private", "blob", False))
TABLES = (
    Table("meta", (_c("k", "text"), _c("v", "text")), ("k",)),
    Table("pools", (_c("key", "text"), _c("seq", "integer"), *_DOC), ("key",)),
    Table("nodes", (_c("id", "text"), _c("pool_key", "text"), _c("seq", "integer"), *_DOC), ("id",)),
    Table("jobs", (_c("key", "text"), _c("seq", "integer"), *_DOC), ("key",)),
    Table("schedules", (_c("key", "text"), _c("seq", "integer"), *_DOC), ("key",)),
    Table(
        "tasks",
        (
            *(_c("job_key", "text"), _c("key", "text"), _c("seq", "integer"), _c("state", "text")),
            *(_c("node_id", "text", False), *_DOC),
            # Read by lists instead of the document ($filter, $select): the id as given, the exit code, the
            # last state change.
            *(_c("id", "text", False), _c("exit_code", "integer", False), _c("transition", "text", False)),
        ),
        ("job_key", "key"),
    ),
    Table("prep_status", (_c("job_key", "text"), _c("node_id", "text"), _c("doc", "json")), ("job_key", "node_id")),
    Table("retention", (_c("expiry", "real"), _c("node_id", "text"), _c("path", "text"))),
    Table("certificates", (_c("key", "text"), *_DOC), ("key",)),
    Table(
        "subtasks",
        (_c("job_key", "text"), _c("task_key", "text"), _c("id", "integer"), _c("doc", "json")),
        ("job_key", "task_key", "id"),
    ),
    Table("usage_totals", (_c("scope", "text"), _c("key", "text"), _c("doc", "json")), ("scope", "key")),
    Table(
        "pool_usage",
        (_c("start", "real"), _c("pool_id", "text"), _c("vm_size", "text"), _c("core_seconds", "real")),
        ("start", "pool_id"),
    ),
    Table("applications", (_c("key", "text"), _c("doc", "json")), ("key",)),
)
INDEXES = (
    # pages in creation order
    Index("tasks_by_seq", "tasks", ("job_key", "seq"), unique=True),
    Index("tasks_by_state", "tasks", ("job_key", "state", "seq")),
    Index("tasks_by_node", "tasks", ("node_id",), where="node_id IS NOT NULL"),
    # `$filter` on executionInfo/exitCode and stateTransitionTime (a change feed) in time proportional to
    # what matches
    Index("tasks_by_exit_code", "tasks", ("job_key", "exit_code"), where="exit_code IS NOT NULL"),
    Index("tasks_by_transition", "tasks", ("job_key", "transition")),
    Index("retention_by_expiry", "retention", ("expiry",)),
)
# Migrations after version 1, in order.
MIGRATIONS: tuple[Migration, ...] = (
    # 2: the diagnostic log outbox (service/diagnostics). Its numbers are never used twice, even after the
    # rows before them were shipped and deleted (the shipper's block ids and marks rely on it): SQLite's
    # AUTOINCREMENT, PostgreSQL's sequence.
    Migration(
        2,
        sqlite=("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, record BLOB NOT NULL)",),
        postgres=("CREATE TABLE IF NOT EXISTS outbox (seq BIGSERIAL PRIMARY KEY, record BYTEA NOT NULL)",),
    ),
)

# Column types in each database. PostgreSQL: text in code point order ("C", as SQLite's binary collation,
# which `$filter` comparisons and prefix bounds rely on); documents as `json`, which keeps their text as
# written (a listed document is sent exactly as stored) and answers `$filter` paths.
_TYPES: dict[str, dict[ColumnType, str]] = {
    "sqlite": {"text": "TEXT", "integer": "INTEGER", "real": "REAL", "json": "BLOB", "blob": "BLOB"},
    "postgres": {
        "text": 'TEXT COLLATE "C"',
        "integer": "BIGINT",
        "real": "DOUBLE PRECISION",
        "json": "JSON",
        "blob": "BYTEA",
    },
}


def table_ddl(dialect: Literal["sqlite", "postgres"]) -> list[str]:
    """CREATE statements for every table (each only if it is not there yet)."""
    types = _TYPES[dialect]
    statements = []
    for table in TABLES:
        parts = [f"{c.name} {types[c.type]}{' NOT NULL' if c.not_null else ''}" for c in table.columns]
        if table.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
        statements.append(f"CREATE TABLE IF NOT EXISTS {table.name} ({', '.join(parts)})")
    return statements


def index_ddl() -> list[str]:
    """CREATE statements for every index (each only if it is not there yet); the same in both databases."""
    statements = []
    for index in INDEXES:
        unique = "UNIQUE " if index.unique else ""
        where = f" WHERE {index.where}" if index.where else ""
        columns = ", ".join(index.columns)
        statements.append(f"CREATE {unique}INDEX IF NOT EXISTS {index.name} ON {index.table} ({columns}){where}")
    return statements


class StoreError(Exception):
    """The store cannot be opened (the message says why, for the operator)."""


class SchemaTooNew(StoreError):
    """The database was written by a newer service: refused rather than misread."""

    def __init__(self, where: str, found: int) -> None:
        super().__init__(
            f"the database {where} has schema version {found}, written by a newer batchyard; this one knows"
            f" versions up to {SCHEMA_VERSION}: run the newer batchyard, or give this one another database"
        )


def pending(where: str, found: int | None, dialect: Literal["sqlite", "postgres"]) -> list[str]:
    """The statements that bring a database at version `found` (None: new) to SCHEMA_VERSION."""
    found = found or 1  # a new database is created at version 1; an unversioned one has it (see above)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(where, found)
    statements: list[str] = []
    for migration in MIGRATIONS:
        if migration.version > found:
            statements.extend(migration.sqlite if dialect == "sqlite" else migration.postgres)
    return statements
