"""Fresh planner statistics for the tasks table after large adds, gathered off the event loop.

A task page is `... WHERE job_key = ? AND seq > ? ORDER BY seq LIMIT n`: with statistics PostgreSQL walks
the (job_key, seq) index and stops after n rows; without them (a job of 100,000 tasks just added, before
autovacuum's next visit, which may be a minute away) it may fetch and sort the whole rest of the job for
every page. So after every ANALYZE_SHARE of the table's rows (and at least ANALYZE_MIN rows) added, a
thread of the store's runs ANALYZE on a connection of its own (it takes no lock writers wait for).
"""

from __future__ import annotations

import logging
import threading

from batchyard.service.persistence.postgres.schema import connect

ANALYZE_MIN = 2000
ANALYZE_SHARE = 0.1

log = logging.getLogger(__name__)


class Analyzer:
    def __init__(self, url: str, rows: int) -> None:
        self._url = url
        self._rows = rows  # tasks in the table at the last ANALYZE (an estimate)
        self._added = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def added(self, count: int) -> None:
        """`count` tasks were committed; gather statistics when enough were since the last time."""
        self._added += count
        if self._added >= max(ANALYZE_MIN, ANALYZE_SHARE * self._rows):
            self._rows += self._added
            self._added = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batchyard-analyze", daemon=True)
                self._thread.start()
            self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            try:  # a connection for each (rare) ANALYZE: nothing to lose when the server restarts
                with connect(self._url) as conn:
                    conn.execute("ANALYZE tasks")
            except Exception:  # statistics are an optimisation: the store works on without them
                log.exception("gathering statistics for the tasks table failed")
