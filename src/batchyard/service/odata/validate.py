"""`parse_filter`: parse a `$filter` and check it against the property table of one list operation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from batchyard.service import errors
from batchyard.service.models import schema
from batchyard.service.odata import literals, parser
from batchyard.service.odata.nodes import And, Compare, Condition, Expr, Or, Value
from batchyard.service.odata.properties import ListSpec, PropertySpec, list_spec

# The literal kind each property type takes.
_LITERAL_FOR = {"string": "string", "enum": "string", "int": "int", "bool": "bool", "datetime": "datetime"}
_TYPE_NAMES = {"string": "String", "enum": "String", "int": "Int", "bool": "Boolean", "datetime": "DateTime"}
_LITERAL_NAMES = {"string": "a string", "int": "an integer", "bool": "a Boolean", "datetime": "a DateTime"}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Filter:
    """A validated filter for one list kind; `expr` is None for an empty filter (everything matches)."""

    text: str
    list_kind: str
    expr: Expr | None


def parse_filter(text: str, list_kind: str) -> Filter:
    """Parse and validate; any problem with `text` raises BatchError InvalidQueryParameterValue ($filter).

    An empty or all-blank filter matches everything, like no filter. `list_kind` is one of
    `properties.LISTS` (a programming error otherwise: ValueError).
    """
    spec = list_spec(list_kind)
    if not text.strip(" \t\r\n"):
        return Filter(text, list_kind, None)
    return Filter(text, list_kind, _check(parser.parse(text), spec, text))


def _check(expr: Expr, spec: ListSpec, text: str) -> Expr:
    if isinstance(expr, And | Or):
        return type(expr)(tuple(_check(term, spec, text) for term in expr.terms))
    if isinstance(expr, Condition):
        return expr
    return _condition(expr, spec, text)


def _condition(cmp: Compare, spec: ListSpec, text: str) -> Condition:
    def fail(reason: str, pos: int = cmp.pos) -> errors.BatchError:
        return errors.invalid_query("$filter", text, f"{reason} (at character {pos + 1}).")

    prop = spec.properties.get(cmp.path)
    if prop is None:
        near = [name for name in spec.properties if name.lower() == cmp.path.lower()]
        hint = f" (property names are case-sensitive: did you mean '{near[0]}'?)" if near else ""
        raise fail(
            f"The property '{cmp.path}' cannot be used in a filter for {spec.title}{hint}; "
            f"filterable properties: {', '.join(spec.properties)}"
        )
    if cmp.op not in prop.ops:
        raise fail(
            f"The operator '{cmp.op}' is not supported for the property '{prop.name}' in {spec.title}; "
            f"allowed: {', '.join(sorted(prop.ops))}"
        )
    lit = cmp.literal
    if lit.kind != _LITERAL_FOR[prop.type]:
        shown = lit.text if len(lit.text) <= 60 else lit.text[:57] + "..."
        wanted, got = _TYPE_NAMES[prop.type], _LITERAL_NAMES[lit.kind]
        raise fail(f"The property '{prop.name}' is of type {wanted}, but {shown} is {got}", lit.pos)
    value: Value = lit.value
    if prop.type == "int":
        assert isinstance(value, int)
        if not INT32_MIN <= value <= INT32_MAX:
            raise fail(f"The value {lit.text} for the property '{prop.name}' is outside the Int32 range", lit.pos)
    elif prop.type == "enum":
        assert isinstance(value, str)
        value = _enum_value(prop, value, lambda reason: fail(reason, lit.pos))
    return Condition(prop, cmp.op, value)


def _enum_value(prop: PropertySpec, value: str, fail: Callable[[str], errors.BatchError]) -> str:
    """The contract's spelling of an enum value, matched case-insensitively like every filter value."""
    allowed = enum_values(prop)
    for candidate in allowed:
        if literals.fold(candidate) == literals.fold(value):
            return candidate
    shown = value if len(value) <= 60 else value[:57] + "..."
    raise fail(f"'{shown}' is not a valid value for the property '{prop.name}'; expected one of: {', '.join(allowed)}")


@cache
def enum_values(prop: PropertySpec) -> tuple[str, ...]:
    assert prop.enum is not None
    return tuple(schema.definitions()[prop.enum]["enum"])
