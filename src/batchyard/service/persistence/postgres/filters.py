"""The OData `$filter` -> SQL compiler (persistence/sql_filters.py) in PostgreSQL's spelling.

PostgreSQL specifics: `#>>` gives a JSON value as text (null as NULL), so numbers are cast (only when
they are numbers: a document of the wrong type must not fail the query) and booleans compare as
'true'/'false'; text compares in code point order under the "C" collation, where `lower()` folds ASCII
only. Which index answers a filtered page is left to the planner (its statistics know how many rows match).
"""

from __future__ import annotations

from typing import Any

from batchyard.service.odata.nodes import Expr
from batchyard.service.odata.properties import PropType
from batchyard.service.odata.validate import Filter
from batchyard.service.persistence import sql_filters


def readable(doc: str) -> str:
    """A `json` column as PostgreSQL's JSON functions can read it.

    The column keeps a document's text as written, `\\u0000` escapes too, but the functions that read into
    it refuse a document with one anywhere ("unsupported Unicode escape sequence"): a task whose command
    line or environment held a NUL would fail every query on its job's documents. Such a document is read
    with U+FFFD in its place (a string in it compares as if the NUL were that character); the stored and
    listed document is unchanged.
    """
    nul, replacement = "'\\u0000'", "'\\ufffd'"  # JSON escapes, as SQL strings
    cleaned = f"replace({doc}::text, {nul}, {replacement})::json"
    return f"(CASE WHEN strpos({doc}::text, {nul}) = 0 THEN {doc} ELSE {cleaned} END)"


def _json_value(column: str, path: tuple[str, ...], kind: PropType) -> str:
    doc = readable(column)
    where = "'{" + ",".join(path) + "}'"  # property paths come from the contract's tables: plain names
    if kind == "int":
        return f"(CASE WHEN json_typeof({doc} #> {where}) = 'number' THEN ({doc} #>> {where})::numeric END)"
    return f"({doc} #>> {where})"


POSTGRES = sql_filters.Dialect(
    mark="%s",
    json_value=_json_value,
    binary_text=lambda expr: f'({expr} COLLATE "C")',
    lower=lambda expr: f'lower({expr} COLLATE "C")',
    boolean=lambda value: "true" if value else "false",
)


def to_sql(
    ast: Filter | Expr | None, list_kind: str, *, doc_column: str = "doc", columns: dict[str, str] | None = None
) -> tuple[str, tuple[Any, ...]]:
    """A PostgreSQL condition and its parameters (see sql_filters.to_sql)."""
    return sql_filters.to_sql(ast, list_kind, POSTGRES, doc_column=doc_column, columns=columns)
