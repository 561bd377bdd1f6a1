"""Running a parsed formula against a pool's state and sample histories.

The result is what an autoscale run reports: the targets, the deallocation option, the `results`
string (`$TargetDedicatedNodes=..;$TargetLowPriorityNodes=..;$NodeDeallocationOption=..;` then the
user variables by name, or `$TargetDedicated=..;$NodeDeallocationOption=..;...` when the formula
uses that name of older API versions) and, on failure, the error with the statement it happened in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from batchyard.service.autoscale import nodes as n
from batchyard.service.autoscale import operations as ops
from batchyard.service.autoscale.errors import EvaluationError, FormulaError
from batchyard.service.autoscale.functions import FUNCTIONS, StopEvaluation
from batchyard.service.autoscale.samples import MetricHistory, SampleClock, call_method
from batchyard.service.autoscale.values import (
    DEALLOCATION_OPTIONS,
    TIME_INTERVALS,
    Interval,
    Metric,
    Timestamp,
    Value,
    format_value,
    type_name,
)
from batchyard.service.autoscale.variables import (
    DEALLOCATION,
    METRICS,
    READ_ONLY_ALIASES,
    TARGET_DEDICATED,
    TARGET_LOW_PRIORITY,
    canonical,
)


@dataclass
class Context:
    """What a formula sees: the time, the pool's current values and its metric histories."""

    now: datetime
    target_dedicated: float = 0.0
    target_low_priority: float = 0.0
    dealloc: str = "requeue"
    current: Mapping[str, float] = field(default_factory=dict)  # "$CurrentDedicatedNodes" -> value, ...
    histories: Mapping[str, MetricHistory] = field(default_factory=dict)  # "$CPUPercent" -> history
    period: float = 30.0
    delay: float = 60.0
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class StatementTrace:
    index: int
    line: int
    col: int
    text: str
    target: str | None
    value: str | None  # formatted value, None when the statement failed or was not reached


@dataclass
class Evaluation:
    target_dedicated: int
    target_low_priority: int
    dealloc: str
    variables: list[tuple[str, str, str]]  # (name, type, formatted value), in `results` order
    error: FormulaError | None
    trace: list[StatementTrace]
    stopped: bool = False
    values: dict[str, Value] = field(default_factory=dict)  # raw values of the variables, by name

    @property
    def results(self) -> str:
        return ";".join(f"{name}={value}" for name, _, value in self.variables)

    @property
    def ok(self) -> bool:
        return self.error is None


def evaluate(program: n.Program, ctx: Context) -> Evaluation:
    return _Run(program, ctx).run()


class _Run:
    def __init__(self, program: n.Program, ctx: Context) -> None:
        self.program = program
        self.ctx = ctx
        self.clock = SampleClock(ctx.now.timestamp(), ctx.period, ctx.delay)
        self.env: dict[str, Value] = {
            TARGET_DEDICATED: float(ctx.target_dedicated),
            TARGET_LOW_PRIORITY: float(ctx.target_low_priority),
            DEALLOCATION: ctx.dealloc,
        }
        self.user: set[str] = set()
        self.uses_target_dedicated = "$TargetDedicated" in {s.target for s in program.statements} or _mentions(
            program, "$TargetDedicated"
        )
        self.metrics = {
            name: Metric(name, ctx.histories.get(name) or MetricHistory(1), _float_or_none(ctx.current.get(name)))
            for name in METRICS
        }

    def run(self) -> Evaluation:
        trace = [StatementTrace(s.index, s.pos[0], s.pos[1], s.text, s.target, None) for s in self.program.statements]
        error: FormulaError | None = None
        stopped = False
        for statement, step in zip(self.program.statements, trace, strict=True):
            try:
                value = self.eval(statement.expr)
                if statement.target is not None:
                    value = self.assign(statement.target, value, statement.pos)
                step.value = (
                    format_value(ops.as_operand(value, statement.pos)) if not isinstance(value, Metric) else value.name
                )
            except StopEvaluation:
                stopped = True
                break
            except FormulaError as exc:
                exc.statement = statement.index
                error = exc
                break
            except (ArithmeticError, ValueError, RecursionError) as exc:  # a gap in the checks; still a formula error
                error = EvaluationError(f"The statement could not be evaluated: {exc}.", statement.pos)
                error.statement = statement.index
                break
        dedicated, low, dealloc = self.targets()
        if error is None:
            error = self.check_targets(dedicated, low)
        return Evaluation(
            target_dedicated=_whole(dedicated),
            target_low_priority=_whole(low),
            dealloc=dealloc,
            variables=self.variables(),
            error=error,
            trace=trace,
            stopped=stopped,
            values=dict(self.env),
        )

    # --- statements -------------------------------------------------------------------------------

    def assign(self, name: str, value: Value, pos: tuple[int, int]) -> Value:
        key = canonical(name)
        if isinstance(value, Metric):
            value = ops.as_operand(value, pos)
        if key in (TARGET_DEDICATED, TARGET_LOW_PRIORITY) and not isinstance(value, float):
            raise EvaluationError(f"{name} must be assigned a double, not {type_name(value)}.", pos)
        if key == DEALLOCATION and (not isinstance(value, str) or value.lower() not in DEALLOCATION_OPTIONS):
            shown = value if isinstance(value, str) else type_name(value)
            raise EvaluationError(f"{name} must be one of {', '.join(DEALLOCATION_OPTIONS)}, not {shown!r}.", pos)
        if key == DEALLOCATION:
            value = str(value).lower()
        if key not in (TARGET_DEDICATED, TARGET_LOW_PRIORITY, DEALLOCATION):
            self.user.add(key)
        self.env[key] = value
        return value

    def targets(self) -> tuple[float, float, str]:
        dedicated = self.env[TARGET_DEDICATED]
        low = self.env[TARGET_LOW_PRIORITY]
        dealloc = self.env[DEALLOCATION]
        assert isinstance(dedicated, float) and isinstance(low, float) and isinstance(dealloc, str)
        return dedicated, low, dealloc

    def check_targets(self, dedicated: float, low: float) -> FormulaError | None:
        for name, value in ((TARGET_DEDICATED, dedicated), (TARGET_LOW_PRIORITY, low)):
            shown = "$TargetDedicated" if self.uses_target_dedicated and name == TARGET_DEDICATED else name
            if not math.isfinite(value) or value < 0:
                return EvaluationError(f"{shown} must be a finite number of 0 or more, not {format_value(value)}.")
            if value >= 2**31:
                return EvaluationError(f"{shown} is too large ({format_value(value)}).")
        return None

    def variables(self) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        if self.uses_target_dedicated:
            fixed = [("$TargetDedicated", TARGET_DEDICATED), (DEALLOCATION, DEALLOCATION)]
        else:
            fixed = [
                (TARGET_DEDICATED, TARGET_DEDICATED),
                (TARGET_LOW_PRIORITY, TARGET_LOW_PRIORITY),
                (DEALLOCATION, DEALLOCATION),
            ]
        for shown, key in fixed:
            value = self.env[key]
            out.append((shown, type_name(value), format_value(value)))
        for name in sorted(self.user, key=lambda v: (v.lstrip("$").lower(), v)):
            value = self.env[name]
            out.append((name, type_name(value), format_value(value)))
        return out

    # --- expressions ------------------------------------------------------------------------------

    def eval(self, node: n.Node) -> Value:
        if isinstance(node, n.Num):
            return node.value
        if isinstance(node, n.Str):
            return node.value
        if isinstance(node, n.Name):
            return self.lookup(node)
        if isinstance(node, n.Binary):
            if node.op in ("&&", "||"):
                return self.logical(node)
            return ops.binary(node.op, self.eval(node.left), self.eval(node.right), node.pos)
        if isinstance(node, n.Unary):
            return ops.unary(node.op, self.eval(node.operand), node.pos)
        if isinstance(node, n.Ternary):  # only the branch taken is evaluated
            return self.eval(node.then) if ops.truth(self.eval(node.cond), node.pos) else self.eval(node.other)
        if isinstance(node, n.Call):
            args = [self.argument(arg) for arg in node.args]
            return FUNCTIONS[node.name].call(args, self.ctx, node.pos)
        if isinstance(node, n.Member):
            return self.member(node)
        if isinstance(node, n.MethodCall):
            target = self.eval(node.target)
            if not isinstance(target, Metric):
                raise EvaluationError(
                    f"{node.name}() is a method of the metric variables, not of a {type_name(target)}.", node.pos
                )
            return call_method(target, node.name, [self.argument(arg) for arg in node.args], self.clock, node.pos)
        raise EvaluationError("Unknown expression.", node.pos)

    def argument(self, node: n.Node) -> Value:
        return ops.as_operand(self.eval(node), node.pos)

    def logical(self, node: n.Binary) -> Value:
        left = ops.as_operand(self.eval(node.left), node.pos)
        if isinstance(left, float):
            if node.op == "&&" and left == 0:
                return 0.0
            if node.op == "||" and left != 0:
                return 1.0
        return ops.binary(node.op, left, self.eval(node.right), node.pos)

    def lookup(self, node: n.Name) -> Value:
        name = node.name
        if name in self.metrics:
            return self.metrics[name]
        if name in READ_ONLY_ALIASES:
            return self.metrics[READ_ONLY_ALIASES[name]]
        key = canonical(name)
        if key in self.env:
            return self.env[key]
        if name in TIME_INTERVALS:
            return Interval(TIME_INTERVALS[name])
        if name in DEALLOCATION_OPTIONS:
            return name
        raise EvaluationError(f"The variable {name} is used before it is assigned.", node.pos)

    def member(self, node: n.Member) -> Value:
        target = self.eval(node.target)
        if not isinstance(target, Timestamp):
            raise EvaluationError(f"'.{node.name}' is a member of a timestamp, not of a {type_name(target)}.", node.pos)
        dt = target.dt
        return float(
            {
                "year": dt.year,
                "month": dt.month,
                "day": dt.day,
                "weekday": dt.isoweekday() % 7,  # .NET DayOfWeek: Sunday 0, Monday 1 ... Saturday 6
                "hour": dt.hour,
                "minute": dt.minute,
                "second": dt.second,
            }[node.name]
        )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def _whole(value: float) -> int:
    """Targets are whole nodes: a fraction is dropped (the documentation's example 3 rounds up: + 3 before / 4)."""
    return int(value) if math.isfinite(value) and 0 <= value < 2**31 else 0


def _mentions(program: n.Program, name: str) -> bool:
    stack: list[n.Node] = [s.expr for s in program.statements]
    while stack:
        node = stack.pop()
        if isinstance(node, n.Name) and node.name == name:
            return True
        for child in vars(node).values():
            if isinstance(child, n.Node):
                stack.append(child)
            elif isinstance(child, tuple):
                stack.extend(c for c in child if isinstance(c, n.Node))
    return False
