"""The operations table of the autoscale documentation, exactly: each (left type, operator, right type)
it lists and no other.

double        + - * /   double        -> double
double        *         timeinterval  -> timeinterval
doubleVec     + - * /   double        -> doubleVec
doubleVec     + - * /   doubleVec     -> doubleVec   (same length)
timeinterval  * /       double        -> timeinterval
timeinterval  + -       timeinterval  -> timeinterval
timeinterval  +         timestamp     -> timestamp
timestamp     +         timeinterval  -> timestamp
timestamp     -         timeinterval  -- not in the table: an error
timestamp     -         timestamp     -> timeinterval
              - !       double        -> double
              -         timeinterval  -> timeinterval
double, string, timestamp, timeinterval  < <= == >= > !=  (same type) -> double (1 or 0)
double        && ||     double        -> double
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from batchyard.service.autoscale.errors import EvaluationError
from batchyard.service.autoscale.values import Interval, Metric, Timestamp, Value, Vec, type_name
from batchyard.service.autoscale.variables import HAS_CURRENT_VALUE

Pos = tuple[int, int]


def divide(a: float, b: float) -> float:
    """.NET double division: x/0 is +-Infinity, 0/0 NaN."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    try:
        return a / b
    except OverflowError:
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _multiply(a: float, b: float) -> float:
    return a * b


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": _multiply,
    "/": divide,
}

_COMPARE = frozenset({"<", "<=", "==", ">=", ">", "!="})

# The types whose values compare with each other (timestamps by instant, intervals by seconds).
_Ordered = TypeVar("_Ordered", float, str, datetime)


def _holds(op: str, left: _Ordered, right: _Ordered) -> bool:
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == "==":
        return left == right
    if op == ">=":
        return left >= right
    if op == ">":
        return left > right
    return left != right


def as_operand(value: Value, pos: Pos) -> Value:
    """A metric that has a current value (node counts) reads as that double; others must be sampled."""
    if isinstance(value, Metric):
        if value.current is not None and value.name in HAS_CURRENT_VALUE:
            return value.current
        raise EvaluationError(f"{value.name} is a metric: read its samples with {value.name}.GetSample(...).", pos)
    return value


def binary(op: str, left: Value, right: Value, pos: Pos) -> Value:
    left, right = as_operand(left, pos), as_operand(right, pos)
    if op in _COMPARE:
        return _compare(op, left, right, pos)
    if op in ("&&", "||"):
        if isinstance(left, float) and isinstance(right, float):
            return (
                1.0 if (op == "&&" and left != 0 and right != 0) or (op == "||" and (left != 0 or right != 0)) else 0.0
            )
        raise _not_defined(op, left, right, pos)
    result = _arithmetic(op, left, right, pos)
    if result is None:
        raise _not_defined(op, left, right, pos)
    return result


def _arithmetic(op: str, left: Value, right: Value, pos: Pos) -> Value | None:
    fn = _ARITH[op]
    if isinstance(left, float):
        if isinstance(right, float):
            return fn(left, right)
        if isinstance(right, Interval) and op == "*":
            return Interval(left * right.seconds)
        return None
    if isinstance(left, Vec):
        if isinstance(right, float):
            return Vec(tuple(fn(x, right) for x in left.items))
        if isinstance(right, Vec):
            if len(left.items) != len(right.items):
                raise EvaluationError(
                    f"The doubleVecs of '{op}' have different lengths ({len(left.items)} and {len(right.items)}).",
                    pos,
                )
            return Vec(tuple(fn(x, y) for x, y in zip(left.items, right.items, strict=True)))
        return None
    if isinstance(left, Interval):
        if isinstance(right, float) and op in ("*", "/"):
            return Interval(fn(left.seconds, right))
        if isinstance(right, Interval) and op in ("+", "-"):
            return Interval(fn(left.seconds, right.seconds))
        if isinstance(right, Timestamp) and op == "+":
            return _shift(right, left, pos)
        return None
    if isinstance(left, Timestamp):
        if isinstance(right, Interval) and op == "+":
            return _shift(left, right, pos)
        if isinstance(right, Timestamp) and op == "-":
            return Interval((left.dt - right.dt).total_seconds())
    return None


def _shift(stamp: Timestamp, interval: Interval, pos: Pos) -> Timestamp:
    try:
        return Timestamp(stamp.dt + timedelta(seconds=interval.seconds))
    except (OverflowError, ValueError):
        raise EvaluationError("The timestamp is out of range (years 1 to 9999).", pos) from None


def _compare(op: str, left: Value, right: Value, pos: Pos) -> float:
    if isinstance(left, float) and isinstance(right, float):
        return 1.0 if _holds(op, left, right) else 0.0
    if isinstance(left, str) and isinstance(right, str):
        return 1.0 if _holds(op, left, right) else 0.0  # ordinal
    if isinstance(left, Timestamp) and isinstance(right, Timestamp):
        return 1.0 if _holds(op, left.dt, right.dt) else 0.0
    if isinstance(left, Interval) and isinstance(right, Interval):
        return 1.0 if _holds(op, left.seconds, right.seconds) else 0.0
    raise _not_defined(op, left, right, pos)


def unary(op: str, value: Value, pos: Pos) -> Value:
    value = as_operand(value, pos)
    if isinstance(value, float):
        return -value if op == "-" else (1.0 if value == 0 else 0.0)
    if isinstance(value, Interval) and op == "-":
        return Interval(-value.seconds)
    raise EvaluationError(f"The operator '{op}' is not defined for {type_name(value)}.", pos)


def truth(value: Value, pos: Pos) -> bool:
    """The ternary's test: a double, nonzero is true."""
    value = as_operand(value, pos)
    if not isinstance(value, float):
        raise EvaluationError(f"The condition of '?:' must be a double, not {type_name(value)}.", pos)
    return value != 0


def _not_defined(op: str, left: Value, right: Value, pos: Pos) -> EvaluationError:
    return EvaluationError(f"The operator '{op}' is not defined for {type_name(left)} {op} {type_name(right)}.", pos)
