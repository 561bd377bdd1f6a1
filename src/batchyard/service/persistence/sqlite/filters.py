"""The OData `$filter` -> SQL compiler (persistence/sql_filters.py) in SQLite's spelling, and the index
hints SQLite needs to answer a filtered page from the right index.

SQLite specifics: `json_extract` gives a JSON value as its SQL type (booleans as 1/0, null as NULL);
its default binary collation over UTF-8 is code point order; `lower()` folds ASCII only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchyard.service.odata.nodes import And, Condition, Expr
from batchyard.service.odata.predicate import check_kind, expr_of
from batchyard.service.odata.properties import PropType
from batchyard.service.odata.validate import Filter
from batchyard.service.persistence import sql_filters
from batchyard.service.persistence.sql_filters import SQL_COLUMNS, condition_sql


def _json_value(doc: str, path: tuple[str, ...], kind: PropType) -> str:
    return f"json_extract({doc}, '$.{'.'.join(path)}')"


SQLITE = sql_filters.Dialect(
    mark="?",
    json_value=_json_value,
    binary_text=lambda expr: expr,
    lower=lambda expr: f"lower({expr})",
    boolean=lambda value: 1 if value else 0,
)

# Store indexes that lead with (job_key, column): a condition on the column can be answered from them.
COLUMN_INDEXES = {
    "key": "sqlite_autoindex_tasks_1",  # the primary key (job_key, key)
    "exit_code": "tasks_by_exit_code",
    "transition": "tasks_by_transition",
}


@dataclass(frozen=True)
class IndexHint:
    """A condition every matching row satisfies, answerable from `index` alone (see SqliteStore.list_tasks)."""

    index: str
    condition: str
    params: tuple[Any, ...]


def to_sql(
    ast: Filter | Expr | None, list_kind: str, *, doc_column: str = "doc", columns: dict[str, str] | None = None
) -> tuple[str, tuple[Any, ...]]:
    """An SQLite condition and its parameters (see sql_filters.to_sql)."""
    return sql_filters.to_sql(ast, list_kind, SQLITE, doc_column=doc_column, columns=columns)


def to_index_hint(ast: Filter | Expr | None, list_kind: str) -> IndexHint | None:
    """An indexed condition the filter implies (itself, or one term of a top-level `and`), if any.

    Only conditions that bound the column (no `ne`, whose null rows are not in the partial exit code index).
    """
    check_kind(ast, list_kind)
    expr = expr_of(ast)
    terms = expr.terms if isinstance(expr, And) else (expr,)
    cols = SQL_COLUMNS.get(list_kind, {})
    for term in terms:
        if not isinstance(term, Condition) or term.op == "ne":
            continue
        column = cols.get(term.prop.name)
        if column not in COLUMN_INDEXES:
            continue
        params: list[Any] = []
        condition = condition_sql(term, SQLITE, "doc", cols, params)
        return IndexHint(COLUMN_INDEXES[column], condition, tuple(params))
    return None
