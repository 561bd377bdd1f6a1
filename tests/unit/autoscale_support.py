"""Helpers for the autoscale language tests: scripted metric histories and one-call evaluation."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchyard.service.autoscale import Context, Evaluation, EvaluationError, MetricHistory, evaluate, parse
from batchyard.service.autoscale.values import Value

NOW = datetime(2016, 10, 13, 19, 18, 47, 805000, tzinfo=UTC)  # the seed's sample evaluation time (a Thursday)
PERIOD = 30.0


def history(values: Iterable[float | None], now: datetime = NOW, period: float = PERIOD) -> MetricHistory:
    """Samples ending at the last period boundary before `now`, oldest first; None leaves a sample out."""
    items = list(values)
    last = (now.timestamp() // period) * period
    out = MetricHistory()
    for i, value in enumerate(items):
        if value is not None:
            out.record(last - (len(items) - 1 - i) * period, value)
    return out


def context(now: datetime = NOW, delay: float = 0.0, **kwargs: Any) -> Context:
    histories = {name if name.startswith("$") else f"${name}": h for name, h in kwargs.pop("histories", {}).items()}
    current = {name if name.startswith("$") else f"${name}": v for name, v in kwargs.pop("current", {}).items()}
    return Context(
        now=now, histories=histories, current=current, period=PERIOD, delay=delay, rng=random.Random(7), **kwargs
    )


def run(formula: str, ctx: Context | None = None, **kwargs: Any) -> Evaluation:
    return evaluate(parse(formula), ctx or context(**kwargs))


def value(expr: str, **kwargs: Any) -> Value:
    """The value of one expression (assigned to $x); fails the test on an evaluation error."""
    result = run(f"$x = {expr};", **kwargs)
    assert result.error is None, result.error
    return result.values["$x"]


def failure(formula: str, **kwargs: Any) -> EvaluationError:
    result = run(formula, **kwargs)
    assert result.error is not None, f"{formula!r} evaluated to {result.results}"
    return result.error  # type: ignore[return-value]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


__all__ = ["NOW", "PERIOD", "context", "failure", "history", "minutes", "pytest", "run", "value"]
