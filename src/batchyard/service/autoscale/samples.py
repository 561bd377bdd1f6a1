"""Metric sample histories and the sample methods of the read-only variables.

A history holds (time, value) samples, one per sample period (30 s on Azure) while the metric had a
value; missing periods are simply absent. A sample becomes readable `delay` seconds after it was
taken (the documentation: "it takes approximately one minute for samples to propagate"). Time ranges are
(older, newer] windows; each bound is a timestamp or a look-back timeinterval from now, in either
order. The sample percent of a window is the readable samples in it against the window length
divided by the period.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from batchyard.service.autoscale.errors import INSUFFICIENT_SAMPLES, EvaluationError
from batchyard.service.autoscale.values import Interval, Metric, Timestamp, Value, Vec, format_double, type_name

METHODS = ("GetSample", "GetSamplePeriod", "Count", "HistoryBeginTime", "GetSamplePercent")

DEFAULT_MAX_SAMPLES = 2880  # a day of 30-second samples


class MetricHistory:
    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        self.samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def record(self, when: float, value: float) -> None:
        """Append a sample (epoch seconds); samples arrive in time order."""
        if self.samples and when <= self.samples[-1][0]:
            return
        self.samples.append((when, float(value)))

    def readable(self, now: float, delay: float) -> Iterator[tuple[float, float]]:
        cutoff = now - delay
        for sample in self.samples:
            if sample[0] > cutoff:
                break
            yield sample

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True)
class SampleClock:
    now: float  # epoch seconds
    period: float
    delay: float


def call_method(metric: Metric, name: str, args: list[Value], clock: SampleClock, pos: tuple[int, int]) -> Value:
    history = metric.history
    if name == "GetSamplePeriod":
        _arity(name, args, 0, 0, pos)
        return Interval(clock.period)
    if name == "Count":
        _arity(name, args, 0, 0, pos)
        return float(sum(1 for _ in history.readable(clock.now, clock.delay)))
    if name == "HistoryBeginTime":
        _arity(name, args, 0, 0, pos)
        first = next(history.readable(clock.now, clock.delay), None)
        if first is None:
            raise EvaluationError(f"{metric.name} has no samples yet.", pos, INSUFFICIENT_SAMPLES)
        return Timestamp(datetime.fromtimestamp(first[0], UTC))
    if name == "GetSamplePercent":
        _arity(name, args, 1, 2, pos)
        low, high = _window(name, args, clock, pos)
        return _percent(history, clock, low, high)[0]
    return _get_sample(metric, args, clock, pos)


def _get_sample(metric: Metric, args: list[Value], clock: SampleClock, pos: tuple[int, int]) -> Vec:
    _arity("GetSample", args, 1, 3, pos)
    if len(args) == 1 and isinstance(args[0], float):
        count = args[0]
        if not count >= 0 or math.isinf(count):
            raise EvaluationError(f"GetSample(count) needs a count of 0 or more, not {format_double(count)}.", pos)
        readable = list(metric.history.readable(clock.now, clock.delay))
        newest = int(count)
        return Vec(tuple(value for _, value in readable[len(readable) - newest :])) if newest else Vec(())
    bounds = args[:2] if len(args) >= 2 and not isinstance(args[1], float) else args[:1]
    rest = args[len(bounds) :]
    if len(rest) > 1:
        raise EvaluationError("GetSample takes a start, an optional end and an optional sample percent.", pos)
    low, high = _window("GetSample", bounds, clock, pos)
    percent, values = _percent(metric.history, clock, low, high)
    if rest:
        wanted = rest[0]
        if not isinstance(wanted, float):
            raise EvaluationError(f"The sample percent must be a double, not {type_name(wanted)}.", pos)
        if not 0 <= wanted <= 100:
            raise EvaluationError(f"The sample percent must be between 0 and 100, not {format_double(wanted)}.", pos)
        if percent < wanted:
            raise EvaluationError(
                f"Insufficient data from data set: {metric.name} wanted {format_double(wanted)}%, "
                f"received {math.floor(percent)}%",
                pos,
                INSUFFICIENT_SAMPLES,
            )
    return Vec(tuple(values))


def _window(method: str, bounds: list[Value], clock: SampleClock, pos: tuple[int, int]) -> tuple[float, float]:
    """(older, newer) epoch bounds of a range given by one or two timestamps / look-back intervals."""
    points = []
    for bound in bounds:
        if isinstance(bound, Interval):
            points.append(clock.now - bound.seconds)
        elif isinstance(bound, Timestamp):
            points.append(bound.dt.timestamp())
        else:
            raise EvaluationError(
                f"{method} takes timestamps or timeintervals as its time range, not {type_name(bound)}.", pos
            )
    if len(points) == 1:
        points.append(clock.now)
    low, high = min(points), max(points)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise EvaluationError(f"{method}: the time range is not finite.", pos)
    return low, high


def _percent(history: MetricHistory, clock: SampleClock, low: float, high: float) -> tuple[float, list[float]]:
    values = [value for when, value in history.readable(clock.now, clock.delay) if low < when <= high]
    possible = max(1, math.floor((high - low) / clock.period + 1e-9))
    return min(100.0, 100.0 * len(values) / possible), values


def _arity(name: str, args: list[Value], low: int, high: int, pos: tuple[int, int]) -> None:
    if not low <= len(args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise EvaluationError(f"{name} takes {expected} arguments, not {len(args)}.", pos)
