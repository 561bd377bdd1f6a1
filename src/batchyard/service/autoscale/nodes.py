"""The syntax tree of a formula. Every node keeps the position of the token that names it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Node:
    pos: tuple[int, int]


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Name(Node):
    name: str  # `$x` or a bare word


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # arithmetic, comparison, && and ||
    left: Node
    right: Node


@dataclass(frozen=True)
class Ternary(Node):
    cond: Node
    then: Node
    other: Node


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Member(Node):
    target: Node
    name: str


@dataclass(frozen=True)
class MethodCall(Node):
    target: Node
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Statement:
    index: int  # 1-based
    pos: tuple[int, int]
    target: str | None  # variable assigned, or None for an expression statement such as `stop()`
    expr: Node
    text: str = field(default="", compare=False)  # the source of the statement, for traces


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    source: str
