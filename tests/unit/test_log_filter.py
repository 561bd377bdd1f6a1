"""RepeatedMessageFilter: one of a run of identical warnings per interval, the rest counted."""

from __future__ import annotations

import logging
from typing import Any

from batchyard.service.log_filter import RepeatedMessageFilter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, level: int = logging.ERROR, exc: BaseException | None = None) -> Any:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("asyncio", level, __file__, 1, message, args, exc_info)


def test_identical_errors_pass_once_per_interval_and_the_next_one_counts_the_rest() -> None:
    clock = Clock()
    only = RepeatedMessageFilter(interval=10, clock=clock)
    too_many = OSError(24, "Too many open files")
    passed = [only.filter(record("socket.accept() out of system resource", exc=too_many)) for _ in range(1000)]
    assert passed.count(True) == 1 and passed[0]
    clock.now += 10
    next_one = record("socket.accept() out of system resource", exc=too_many)
    assert only.filter(next_one)
    assert next_one.getMessage() == (
        "socket.accept() out of system resource [999 more like this in the 10 s before, not logged]"
    )
    assert not only.filter(record("socket.accept() out of system resource", exc=too_many))


def test_different_messages_exceptions_and_levels_below_warning_are_not_held_back() -> None:
    only = RepeatedMessageFilter(interval=10, clock=Clock())
    assert only.filter(record("unexpected error in %s %s", "GET", "/pools/a"))
    assert only.filter(record("unexpected error in %s %s", "GET", "/pools/b"))
    assert only.filter(record("accept failed", exc=OSError(24, "Too many open files")))
    assert only.filter(record("accept failed", exc=OSError(23, "Too many open files in system")))
    assert all(only.filter(record("GET / 200", level=logging.INFO)) for _ in range(100))
    # the same first line with a different second line (an object's address, a time) is the same message
    assert only.filter(record("Exception in callback f()\nhandle: <TimerHandle when=1.0>"))
    assert not only.filter(record("Exception in callback f()\nhandle: <TimerHandle when=2.0>"))


def test_remembers_a_bounded_number_of_kinds() -> None:
    clock = Clock()
    only = RepeatedMessageFilter(interval=10, max_kinds=50, clock=clock)
    for i in range(1000):
        clock.now += 0.001
        assert only.filter(record(f"error {i}"))
    assert len(only._seen) <= 50


def test_the_count_goes_on_the_first_line() -> None:
    clock = Clock()
    only = RepeatedMessageFilter(interval=1, clock=clock)
    assert only.filter(record("accept failed\nsocket: <fd=9>"))
    assert not only.filter(record("accept failed\nsocket: <fd=9>"))
    clock.now += 2
    next_one = record("accept failed\nsocket: <fd=9>")
    assert only.filter(next_one)
    assert next_one.getMessage() == "accept failed [1 more like this in the 2 s before, not logged]\nsocket: <fd=9>"
