"""Turn a validated filter into a Python predicate over wire-shaped dicts (lists kept in memory).

Semantics (the store's SQL form, persistence/sql_filters.py, agrees; tests/unit/test_odata.py checks it):

* A property that is absent (or JSON null) is OData null: `eq`, `gt`/`ge`/`lt`/`le` and `startswith`
  on it are false, `ne` is true (null ne 'x'). `not` is not part of the Batch grammar, so null never
  has to be negated.
* Strings (and enum values) compare case-insensitively after folding ASCII letters (see literals.fold),
  ordered by code point.
* DateTimes compare as instants.
* Documents are assumed well-typed, as the service writes them: a value of the wrong JSON type counts
  as null.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

from batchyard.service.clock import parse_iso
from batchyard.service.odata import literals
from batchyard.service.odata.nodes import And, Compare, Condition, Expr, Or
from batchyard.service.odata.properties import PropertySpec, list_spec
from batchyard.service.odata.validate import Filter

Predicate = Callable[[dict[str, Any]], bool]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def expr_of(ast: Filter | Expr | None) -> Expr | None:
    return ast.expr if isinstance(ast, Filter) else ast


def check_kind(ast: Filter | Expr | None, list_kind: str) -> None:
    """A filter validated for one list may not be compiled for another."""
    list_spec(list_kind)
    if isinstance(ast, Filter) and ast.list_kind != list_kind:
        raise ValueError(f"filter was validated for {ast.list_kind!r}, not {list_kind!r}")


def to_predicate(ast: Filter | Expr | None, list_kind: str) -> Predicate:
    """A function telling whether a wire-shaped document matches; None (empty filter) matches all."""
    check_kind(ast, list_kind)
    expr = expr_of(ast)
    if expr is None:
        return lambda doc: True
    return _predicate(expr)


def _predicate(expr: Expr) -> Predicate:
    if isinstance(expr, And):
        parts = tuple(_predicate(term) for term in expr.terms)
        return lambda doc: all(part(doc) for part in parts)
    if isinstance(expr, Or):
        parts = tuple(_predicate(term) for term in expr.terms)
        return lambda doc: any(part(doc) for part in parts)
    if isinstance(expr, Compare):
        raise TypeError("compile a validated filter (parse_filter), not a bare syntax tree")
    return _condition(expr)


def _condition(cond: Condition) -> Predicate:
    prop, op = cond.prop, cond.op
    read = _reader(prop)
    target: Any = cond.value
    if prop.type in ("string", "enum"):
        assert isinstance(target, str)
        target = literals.fold(target)
    if op == "startswith":
        return lambda doc: (value := read(doc)) is not None and value.startswith(target)
    compare = _OPS[op]
    if op == "ne":
        return lambda doc: (value := read(doc)) is None or compare(value, target)
    return lambda doc: (value := read(doc)) is not None and compare(value, target)


def _reader(prop: PropertySpec) -> Callable[[dict[str, Any]], Any]:
    """Reads the property as a comparable value (folded str, int, bool, datetime) or None."""
    path, kind = prop.path, prop.type

    def raw(doc: dict[str, Any]) -> Any:
        value: Any = doc
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    if kind in ("string", "enum"):
        return lambda doc: literals.fold(v) if isinstance(v := raw(doc), str) else None
    if kind == "int":
        return lambda doc: v if isinstance(v := raw(doc), int) and not isinstance(v, bool) else None
    if kind == "bool":
        return lambda doc: v if isinstance(v := raw(doc), bool) else None
    return lambda doc: _instant(raw(doc))


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        return None
