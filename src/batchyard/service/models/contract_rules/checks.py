"""The checks the contract rules share: property paths, offending-value text, IDs, ranges, durations."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Any

import orjson

from batchyard.service.errors import invalid_property

from .. import durations

#: A rule: the normalized object and its property path; raises BatchError naming the property.
Rule = Callable[[dict[str, Any], str], None]

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_REASON = "The ID must be 1 to 64 characters long and contain only letters, digits, hyphens and underscores."

MINUTE = durations.TICKS_PER_MINUTE
HOUR = durations.TICKS_PER_HOUR


def join(path: str, name: str) -> str:
    """The dotted path of a property of the object at `path`."""
    return f"{path}.{name}" if path else name


def show(value: Any) -> str:
    """The PropertyValue text of an offending value: strings as-is, the rest as compact JSON (capped)."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # e.g. nested deeper than orjson allows: never let an error message fail
            text = reprlib.repr(value)
    return text if len(text) <= 256 else text[:253] + "..."


def check_id(value: Any, path: str) -> None:
    """IDs of pools, jobs, tasks, schedules and applications: [A-Za-z0-9_-]{1,64}."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise invalid_property(path, show(value), ID_REASON)


def ticks(value: str) -> int:
    return durations.parse_ticks(value)


def at_least(out: dict[str, Any], path: str, name: str, low: int, what: str = "") -> None:
    value = out.get(name)
    if value is not None and value < low:
        raise invalid_property(join(path, name), str(value), what or f"The value must be at least {low}.")


def in_range(out: dict[str, Any], path: str, name: str, low: int, high: int) -> None:
    value = out.get(name)
    if value is not None and not low <= value <= high:
        raise invalid_property(join(path, name), str(value), f"The value must be between {low} and {high}.")


def duration_at_least(out: dict[str, Any], path: str, name: str, low: int, text: str) -> None:
    value = out.get(name)
    if value is not None and ticks(value) < low:
        raise invalid_property(join(path, name), value, f"The value must be at least {text}.")


def non_empty(out: dict[str, Any], path: str, name: str) -> None:
    value = out.get(name)
    if value is not None and not value.strip():
        raise invalid_property(join(path, name), value, "The value must not be empty.")
