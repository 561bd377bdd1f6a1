"""The SQLite store: schema and migrations, the store itself, and the OData `$filter` -> SQL compiler."""

from batchyard.service.persistence.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
