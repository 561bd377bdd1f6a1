"""The OData `$filter` -> SQL compiler both stores share: a validated filter as an SQL condition over the
store's tables, with each database's spelling in one `Dialect` (SQLite: sqlite/filters.py; PostgreSQL:
postgres/filters.py).

Semantics (the same as odata/predicate.py; the property tests in tests/unit check it for both databases):

* A property that is absent (or JSON null) is OData null: `eq`, `gt`/`ge`/`lt`/`le` and `startswith`
  on it are false, `ne` is true (null ne 'x'). `not` is not part of the Batch grammar, so null never
  has to be negated and SQL's NULL can stand for "false" inside `and`/`or`.
* Strings (and enum values) compare case-insensitively after folding ASCII letters (see literals.fold),
  ordered by code point (each dialect compares text in binary order).
* DateTimes compare as instants. The store writes every timestamp as '%Y-%m-%dT%H:%M:%S.%fZ' UTC, where
  string order is time order, so SQL compares the literal rendered in exactly that form.
* Documents are assumed well-typed, as the service writes them: a value of the wrong JSON type counts
  as null for the predicate, while SQL may compare it by its database's cross-type rules. Filterable
  strings never hold NUL (ids are validated; JSON functions would cut them there), and the parser
  rejects NUL in filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchyard.service.odata import literals
from batchyard.service.odata.nodes import And, Compare, Condition, Expr, Or
from batchyard.service.odata.predicate import check_kind, expr_of
from batchyard.service.odata.properties import PropType
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


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the compiler needs."""

    mark: str  # a query parameter's placeholder
    json_value: Callable[[str, tuple[str, ...], PropType], str]  # (doc column, path, type) -> SQL value
    binary_text: Callable[[str], str]  # a text expression that compares in code point order
    lower: Callable[[str], str]  # ASCII-only lower case of a text expression
    boolean: Callable[[bool], Any]  # the parameter a JSON boolean compares equal to


def to_sql(
    ast: Filter | Expr | None,
    list_kind: str,
    dialect: Dialect,
    *,
    doc_column: str = "doc",
    columns: dict[str, str] | None = None,
) -> tuple[str, tuple[Any, ...]]:
    """An SQL condition and its parameters over a table with a JSON document column.

    Properties in `columns` (default: SQL_COLUMNS for the list kind) read that column; all others read
    the document. An empty filter gives ("", ()), which the store takes as no filter.
    """
    check_kind(ast, list_kind)
    expr = expr_of(ast)
    if expr is None:
        return "", ()
    params: list[Any] = []
    cols = SQL_COLUMNS.get(list_kind, {}) if columns is None else columns
    return _sql(expr, dialect, doc_column, cols, params), tuple(params)


def _sql(expr: Expr, dialect: Dialect, doc: str, cols: dict[str, str], params: list[Any]) -> str:
    if isinstance(expr, And | Or):
        parts = [_sql(term, dialect, doc, cols, params) for term in expr.terms]
        return _balanced(parts, " AND " if isinstance(expr, And) else " OR ")
    if isinstance(expr, Compare):
        raise TypeError("compile a validated filter (parse_filter), not a bare syntax tree")
    return condition_sql(expr, dialect, doc, cols, params)


def _balanced(parts: list[str], joiner: str) -> str:
    """Group a long chain as a balanced tree: SQLite parses `a OR b OR ...` left-deep and caps depth at 1000."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    return f"({_balanced(parts[:mid], joiner)}{joiner}{_balanced(parts[mid:], joiner)})"


def condition_sql(cond: Condition, dialect: Dialect, doc: str, cols: dict[str, str], params: list[Any]) -> str:
    """One comparison as SQL; its parameters are appended to `params`."""
    prop, op, value = cond.prop, cond.op, cond.value
    mark = dialect.mark
    column = cols.get(prop.name)
    target = column if column is not None else dialect.json_value(doc, prop.path, prop.type)
    if prop.type == "enum" and column is not None:
        params.append(value)  # the column holds the contract's spelling, which validation produced
    elif prop.type in ("string", "enum"):
        assert isinstance(value, str)
        target = dialect.binary_text(target if column in FOLDED_COLUMNS else dialect.lower(target))
        if op == "startswith" and column in FOLDED_COLUMNS and (bound := _prefix_bound(literals.fold(value))):
            params.extend((literals.fold(value), bound))
            return f"({target} >= {mark} AND {target} < {mark})"
        if op == "startswith":
            params.append(_like_prefix(literals.fold(value)))
            return f"{target} LIKE {mark} ESCAPE '\\'"
        params.append(literals.fold(value))
    elif prop.type == "datetime":
        assert isinstance(value, datetime)
        target = dialect.binary_text(target)
        params.append(literals.canonical(value))
    elif prop.type == "bool":
        assert isinstance(value, bool)
        params.append(dialect.boolean(value))
    else:
        params.append(value)
    condition = f"{target} {_SQL_OPS[op]} {mark}"
    if op == "ne":
        return f"({target} IS NULL OR {condition})"
    return condition


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _prefix_bound(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (binary order of UTF-8 is code point order)."""
    if not prefix or ord(prefix[-1]) >= 0x10FFFF or 0xD7FF <= ord(prefix[-1]) < 0xE000:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
