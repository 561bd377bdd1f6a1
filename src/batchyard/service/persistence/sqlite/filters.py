"""The OData `$filter` -> SQLite compiler: a validated filter as an SQL condition over the store's tables.

Semantics (the same as odata/predicate.py; the property test in tests/unit/test_odata.py checks it):

* A property that is absent (or JSON null) is OData null: `eq`, `gt`/`ge`/`lt`/`le` and `startswith`
  on it are false, `ne` is true (null ne 'x'). `not` is not part of the Batch grammar, so null never
  has to be negated and SQL's NULL can stand for "false" inside `and`/`or`.
* Strings (and enum values) compare case-insensitively after folding ASCII letters (see literals.fold),
  ordered by code point; SQLite's binary collation over UTF-8 gives the same order.
* DateTimes compare as instants. The store writes every timestamp as '%Y-%m-%dT%H:%M:%S.%fZ' UTC, where
  string order is time order, so SQL compares the literal rendered in exactly that form.
* Documents are assumed well-typed, as the service writes them: a value of the wrong JSON type counts
  as null for the predicate, while SQL would compare it with SQLite's cross-type rules. Filterable
  strings never hold NUL (ids are validated; SQLite's JSON functions would cut them there), and the
  parser rejects NUL in filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchyard.service.odata import literals
from batchyard.service.odata.nodes import And, Compare, Condition, Expr, Or
from batchyard.service.odata.predicate import check_kind, expr_of
from batchyard.service.odata.validate import Filter

_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

# Properties held in their own (indexed) column of a store table, by list kind, so conditions on them
# read no document and can use the store's indexes. An enum column holds the contract's spelling of the
# value, so comparisons on it are plain `=`; `key` holds the task id already folded (lower-case).
SQL_COLUMNS: dict[str, dict[str, str]] = {
    "tasks": {
        "id": "key",
        "state": "state",
        "stateTransitionTime": "transition",
        "executionInfo/exitCode": "exit_code",
    }
}
FOLDED_COLUMNS = frozenset({"key"})
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
    """An SQL condition and its parameters over a table with a JSON document column.

    Properties in `columns` (default: SQL_COLUMNS for the list kind) read that column; all others read
    `json_extract(doc_column, '$.path')`. An empty filter gives ("", ()), which the store takes as no filter.
    """
    check_kind(ast, list_kind)
    expr = expr_of(ast)
    if expr is None:
        return "", ()
    params: list[Any] = []
    cols = SQL_COLUMNS.get(list_kind, {}) if columns is None else columns
    return _sql(expr, doc_column, cols, params), tuple(params)


def _sql(expr: Expr, doc: str, cols: dict[str, str], params: list[Any]) -> str:
    if isinstance(expr, And | Or):
        parts = [_sql(term, doc, cols, params) for term in expr.terms]
        return _balanced(parts, " AND " if isinstance(expr, And) else " OR ")
    if isinstance(expr, Compare):
        raise TypeError("compile a validated filter (parse_filter), not a bare syntax tree")
    return _sql_condition(expr, doc, cols, params)


def _balanced(parts: list[str], joiner: str) -> str:
    """Group a long chain as a balanced tree: SQLite parses `a OR b OR ...` left-deep and caps depth at 1000."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    return f"({_balanced(parts[:mid], joiner)}{joiner}{_balanced(parts[mid:], joiner)})"


def _sql_condition(cond: Condition, doc: str, cols: dict[str, str], params: list[Any]) -> str:
    prop, op, value = cond.prop, cond.op, cond.value
    column = cols.get(prop.name)
    target = column if column is not None else f"json_extract({doc}, '$.{'.'.join(prop.path)}')"
    if prop.type == "enum" and column is not None:
        params.append(value)  # the column holds the contract's spelling, which validation produced
    elif prop.type in ("string", "enum"):
        assert isinstance(value, str)
        if column not in FOLDED_COLUMNS:
            target = f"lower({target})"  # folds ASCII only, exactly like literals.fold
        if op == "startswith" and column in FOLDED_COLUMNS and (bound := _prefix_bound(literals.fold(value))):
            params.extend((literals.fold(value), bound))
            return f"({target} >= ? AND {target} < ?)"
        if op == "startswith":
            params.append(_like_prefix(literals.fold(value)))
            return f"{target} LIKE ? ESCAPE '\\'"
        params.append(literals.fold(value))
    elif prop.type == "datetime":
        assert isinstance(value, datetime)
        params.append(literals.canonical(value))
    elif prop.type == "bool":
        params.append(1 if value else 0)  # json_extract gives JSON true/false as 1/0
    else:
        params.append(value)
    condition = f"{target} {_SQL_OPS[op]} ?"
    if op == "ne":
        return f"({target} IS NULL OR {condition})"
    return condition


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
        condition = _sql_condition(term, "doc", cols, params)
        return IndexHint(COLUMN_INDEXES[column], condition, tuple(params))
    return None


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _prefix_bound(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (binary order of UTF-8 is code point order)."""
    if not prefix or ord(prefix[-1]) >= 0x10FFFF or 0xD7FF <= ord(prefix[-1]) < 0xE000:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
