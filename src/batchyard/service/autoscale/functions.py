"""The predefined functions. List functions take a doubleVecList: any mix of doubles and doubleVecs,
flattened into one vector before the function runs (`avg(v, 7)` is `avg(1, 2, 3, 7)` for v = [1, 2, 3]).

lg/ln/log (and ceil/floor/round of the current service) are componentwise: one double argument gives
a double, a doubleVec or several arguments give a doubleVec (the 2017 documentation's "vec(double)" form).
Arithmetic follows .NET doubles: log(0) is -Infinity, log(-1) NaN, never an exception.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from batchyard.service.autoscale.errors import EvaluationError
from batchyard.service.autoscale.values import Timestamp, Value, Vec, format_double, type_name


class FunctionContext(Protocol):
    now: datetime
    rng: random.Random


class StopEvaluation(Exception):
    """stop(): the evaluation ends here, keeping what was assigned so far."""


Pos = tuple[int, int]


@dataclass(frozen=True)
class Function:
    call: Callable[[list[Value], FunctionContext, Pos], Value]
    signature: str


def flatten(name: str, args: list[Value], pos: Pos) -> list[float]:
    out: list[float] = []
    for arg in args:
        if isinstance(arg, float):
            out.append(arg)
        elif isinstance(arg, Vec):
            out.extend(arg.items)
        else:
            raise EvaluationError(f"{name} takes doubles and doubleVecs, not {type_name(arg)}.", pos)
    return out


def _non_empty(name: str, values: list[float], pos: Pos) -> list[float]:
    if not values:
        raise EvaluationError(f"{name} of an empty list is undefined.", pos)
    return values


def _list_fn(name: str, body: Callable[[list[float], Pos], float]) -> Function:
    return Function(lambda args, ctx, pos: body(flatten(name, args, pos), pos), f"{name}(doubleVecList)")


def _log(fn: Callable[[float], float]) -> Callable[[float], float]:
    def safe(x: float) -> float:
        if math.isnan(x) or x < 0:
            return math.nan
        if x == 0:
            return -math.inf
        return fn(x)

    return safe


def _rounding(fn: Callable[[float], float]) -> Callable[[float], float]:
    return lambda x: x if not math.isfinite(x) else float(fn(x))


def _componentwise(name: str, fn: Callable[[float], float]) -> Function:
    def call(args: list[Value], ctx: FunctionContext, pos: Pos) -> Value:
        if len(args) == 1 and isinstance(args[0], float):
            return fn(args[0])
        if not args:
            raise EvaluationError(f"{name} takes a double or a doubleVecList.", pos)
        return Vec(tuple(fn(x) for x in flatten(name, args, pos)))

    return Function(call, f"{name}(double) or {name}(doubleVecList)")


def _std(values: list[float], pos: Pos) -> float:
    """Sample standard deviation (n - 1); one value has no spread, so 0."""
    _non_empty("std", values, pos)
    if len(values) == 1:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in values) / (len(values) - 1))


def _fsum(values: list[float]) -> float:
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):  # mixed infinities
        return sum(values)


def _avg(values: list[float], pos: Pos) -> float:
    _non_empty("avg", values, pos)
    return _fsum(values) / len(values)


def _norm(values: list[float], pos: Pos) -> float:
    try:
        return math.hypot(*values)
    except OverflowError:
        return math.inf


def _vector_arg(name: str, value: Value, pos: Pos) -> tuple[float, ...]:
    if isinstance(value, Vec):
        return value.items
    if isinstance(value, float):
        return (value,)
    raise EvaluationError(f"{name} takes a doubleVec as its first argument, not {type_name(value)}.", pos)


def _double_arg(name: str, value: Value, pos: Pos) -> float:
    if not isinstance(value, float):
        raise EvaluationError(f"{name} takes a double as its second argument, not {type_name(value)}.", pos)
    return value


def _percentile(args: list[Value], ctx: FunctionContext, pos: Pos) -> Value:
    """The element at percentile p (nearest rank: the smallest element with at least p% at or below it)."""
    _arity("percentile", args, 2, pos)
    items = sorted(_vector_arg("percentile", args[0], pos))
    p = _double_arg("percentile", args[1], pos)
    if not items:
        raise EvaluationError("percentile of an empty vector is undefined.", pos)
    if not 0 <= p <= 100:
        raise EvaluationError(f"percentile needs p between 0 and 100, not {format_double(p)}.", pos)
    rank = max(1, math.ceil(p / 100 * len(items)))
    return items[rank - 1]


def _val(args: list[Value], ctx: FunctionContext, pos: Pos) -> Value:
    _arity("val", args, 2, pos)
    items = _vector_arg("val", args[0], pos)
    i = _double_arg("val", args[1], pos)
    if not (math.isfinite(i) and i == int(i) and 0 <= i < len(items)):
        raise EvaluationError(f"val: index {format_double(i)} is not a whole number from 0 to {len(items) - 1}.", pos)
    return items[int(i)]


def _rand(args: list[Value], ctx: FunctionContext, pos: Pos) -> Value:
    _arity("rand", args, 0, pos)
    return ctx.rng.random()


def _stop(args: list[Value], ctx: FunctionContext, pos: Pos) -> Value:
    _arity("stop", args, 0, pos)
    raise StopEvaluation()


def _vec(args: list[Value], ctx: FunctionContext, pos: Pos) -> Value:
    return Vec(tuple(flatten("vec", args, pos)))


def _time(args: list[Value], ctx: FunctionContext, pos: Pos) -> Value:
    if not args:
        return Timestamp(ctx.now)
    _arity("time", args, 1, pos)
    text = args[0]
    if not isinstance(text, str):
        raise EvaluationError(f"time takes a string, not {type_name(text)}.", pos)
    if not text.strip():
        return Timestamp(ctx.now)  # time(string dateTime="")
    parsed = parse_datetime(text)
    if parsed is None:
        raise EvaluationError(f"time: {text!r} is neither a W3C-DTF nor an RFC 1123 date and time.", pos)
    return Timestamp(parsed)


def parse_datetime(text: str) -> datetime | None:
    """W3C-DTF (YYYY, YYYY-MM, YYYY-MM-DD, with hh:mm[:ss[.s]] and TZD) or RFC 1123."""
    text = text.strip()
    try:
        if len(text) == 4 and text.isdigit():
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7 and text[4] == "-":
            return datetime(int(text[:4]), int(text[5:]), 1, tzinfo=UTC)
        if len(text) >= 10 and text[4] == "-" and text[7] == "-":
            iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
            if len(text) > 10 and "T" not in text[10:11]:
                return None
            if "." in iso:  # Python takes at most 6 fractional digits
                head, _, rest = iso.partition(".")
                digits = "".join(itertools.takewhile(str.isdigit, rest))
                iso = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
            dt = datetime.fromisoformat(iso)
            if len(text) > 10 and dt.tzinfo is None:
                return None  # W3C-DTF: a time needs a time zone designator
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
        dt = parsedate_to_datetime(text)
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


def _arity(name: str, args: list[Value], count: int, pos: Pos) -> None:
    if len(args) != count:
        raise EvaluationError(f"{name} takes {count} argument{'s' if count != 1 else ''}, not {len(args)}.", pos)


FUNCTIONS: dict[str, Function] = {
    "avg": _list_fn("avg", _avg),
    "len": _list_fn("len", lambda values, pos: float(len(values))),
    "max": _list_fn("max", lambda values, pos: max(_non_empty("max", values, pos))),
    "min": _list_fn("min", lambda values, pos: min(_non_empty("min", values, pos))),
    "norm": _list_fn("norm", _norm),
    "range": _list_fn("range", lambda values, pos: max(_non_empty("range", values, pos)) - min(values)),
    "std": _list_fn("std", _std),
    "sum": _list_fn("sum", lambda values, pos: _fsum(values)),
    "lg": _componentwise("lg", _log(math.log2)),
    "ln": _componentwise("ln", _log(math.log)),
    "log": _componentwise("log", _log(math.log10)),
    "ceil": _componentwise("ceil", _rounding(math.ceil)),
    "floor": _componentwise("floor", _rounding(math.floor)),
    "round": _componentwise("round", _rounding(round)),  # to even at .5, as .NET Math.Round
    "percentile": Function(_percentile, "percentile(doubleVec v, double p)"),
    "val": Function(_val, "val(doubleVec v, double i)"),
    "rand": Function(_rand, "rand()"),
    "stop": Function(_stop, "stop()"),
    "time": Function(_time, 'time(string dateTime="")'),
    "vec": Function(_vec, "vec(doubleVecList)"),
}
