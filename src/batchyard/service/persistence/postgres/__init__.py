"""The PostgreSQL store (psycopg 3): the same tables, semantics and `$filter` compiler as the SQLite one."""

from batchyard.service.persistence.postgres.schema import DatabaseUnavailable
from batchyard.service.persistence.postgres.store import PostgresStore

__all__ = ["DatabaseUnavailable", "PostgresStore"]
