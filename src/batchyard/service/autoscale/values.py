"""The formula's value types and how each is written in an evaluation's `results`.

double is a Python float, string a str; the others are small frozen classes. doubleVecList exists
only as the argument list of the list functions, so it has no class of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchyard.service.autoscale.samples import MetricHistory


@dataclass(frozen=True)
class Vec:
    """doubleVec."""

    items: tuple[float, ...]


@dataclass(frozen=True)
class Timestamp:
    dt: datetime  # aware, UTC


@dataclass(frozen=True)
class Interval:
    """timeinterval, in seconds (TimeInterval_100ns is 1e-7)."""

    seconds: float


@dataclass(frozen=True)
class Metric:
    """A read-only service variable: a sample history, and for node counts also a current value."""

    name: str  # with the $
    history: MetricHistory
    current: float | None = None


Value = float | Vec | str | Timestamp | Interval | Metric

TIME_INTERVALS: dict[str, float] = {
    "TimeInterval_Zero": 0.0,
    "TimeInterval_100ns": 1e-7,
    "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3,
    "TimeInterval_Second": 1.0,
    "TimeInterval_Minute": 60.0,
    "TimeInterval_Hour": 3600.0,
    "TimeInterval_Day": 86400.0,
    "TimeInterval_Week": 7 * 86400.0,
    "TimeInterval_Year": 365 * 86400.0,
}

# Bare words that stand for themselves, as in `$NodeDeallocationOption = taskcompletion;`.
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")

TIMESTAMP_MEMBERS = ("year", "month", "day", "weekday", "hour", "minute", "second")


def type_name(value: Value) -> str:
    if isinstance(value, float):
        return "double"
    if isinstance(value, Vec):
        return "doubleVec"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, Interval):
        return "timeinterval"
    return "metric"


def format_double(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_interval(seconds: float) -> str:
    """.NET TimeSpan text: [-][d.]hh:mm:ss[.fffffff]."""
    if not math.isfinite(seconds):
        return format_double(seconds)
    sign = "-" if seconds < 0 else ""
    ticks = round(abs(seconds) * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def format_timestamp(dt: datetime) -> str:
    utc = dt.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{utc.microsecond // 1000:03d}Z"


def format_value(value: Value) -> str:
    if isinstance(value, float):
        return format_double(value)
    if isinstance(value, Vec):
        return "[" + ",".join(format_double(item) for item in value.items) + "]"
    if isinstance(value, str):
        return value
    if isinstance(value, Timestamp):
        return format_timestamp(value.dt)
    if isinstance(value, Interval):
        return format_interval(value.seconds)
    return value.name
