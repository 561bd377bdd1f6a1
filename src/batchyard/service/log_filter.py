"""A logging filter that keeps a flood of one warning or error (say, a failing accept) from filling the disk."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any


class RepeatedMessageFilter(logging.Filter):
    """Lets one of a run of identical warnings or errors through per `interval` seconds and counts the rest.

    Records are identical when their logger, level, first line of message and exception are. The next one
    let through after the interval says how many were left out. Records below `warning` always pass.
    """

    def __init__(self, interval: float = 10.0, max_kinds: int = 512, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval = interval
        self.max_kinds = max_kinds
        self.clock = clock
        self._seen: dict[tuple[Any, ...], list[float]] = {}  # kind -> [time let through, count left out]
        self._lock = threading.Lock()  # executor threads log too

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        with self._lock:
            return self._filter(record)

    def _filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        kind = (record.name, record.levelno, message.partition("\n")[0][:300], type(exc), str(exc)[:300])
        now = self.clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return False
        if seen is None and len(self._seen) >= self.max_kinds:
            self._forget_before(now - self.interval)
        self._seen[kind] = [now, 0]
        if seen is not None and seen[1]:
            first, newline, rest = message.partition("\n")
            count = f"[{int(seen[1])} more like this in the {now - seen[0]:.0f} s before, not logged]"
            record.msg = f"{first} {count}{newline}{rest}"
            record.args = None
        return True

    def _forget_before(self, moment: float) -> None:
        for kind in [kind for kind, seen in self._seen.items() if seen[0] < moment]:
            del self._seen[kind]
        if len(self._seen) >= self.max_kinds:
            self._seen.clear()
