"""The $filter AST.

The parser builds `Compare` nodes that hold the literal as written; validation against a list's
property table turns each into a `Condition` that holds the property spec and a typed Python value.
`And`/`Or` are n-ary (chains are flattened) so deep trees only come from parentheses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal as TypingLiteral

from batchyard.service.odata.properties import PropertySpec

LiteralKind = TypingLiteral["string", "int", "bool", "datetime"]
Value = str | int | bool | datetime


@dataclass(frozen=True)
class Literal:
    kind: LiteralKind
    value: Value  # str, int, bool, or an aware UTC datetime
    text: str  # as written, for error messages
    pos: int  # 0-based offset in the filter text


@dataclass(frozen=True)
class Compare:
    """`path op literal`, or `startswith(path, literal)` with op "startswith"."""

    path: str
    op: str
    literal: Literal
    pos: int  # offset of the property path


@dataclass(frozen=True)
class Condition:
    """A validated Compare: the property is filterable with this op and the value has its type."""

    prop: PropertySpec
    op: str
    value: Value


@dataclass(frozen=True)
class And:
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Expr, ...]


Expr = Compare | Condition | And | Or
