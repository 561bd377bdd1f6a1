"""What diagnostic logs cost: 3,000 `/bin/true` tasks end to end (1 node x 4 slots), the service with
diagnostic logs off, kept for the live stream only (`--diagnostic-logs stream`), and shipped to a local
Azurite (`--azurite --diagnostic-logs linked`). Each task writes two records (start, complete).

    .venv/bin/python benchmarks/bench_diagnostic_logs.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import bench_end_to_end, create_pool, make_client, start_service, wait_idle_node  # noqa: E402

COUNT = 3_000
RUNS = 2
SETUPS = {
    "off": (),
    "stream only": ("--diagnostic-logs", "stream"),
    "shipped to Azurite": ("--azurite", "--azurite-port", "0", "--diagnostic-logs", "linked"),
}


def main() -> None:
    print(f"{COUNT:,} /bin/true end to end, 1 node x 4 slots, median of {RUNS}; load {os.getloadavg()}")
    print("| diagnostic logs | tasks/s |")
    print("|---|---|")
    for name, extra in SETUPS.items():
        rates = []
        for _ in range(RUNS):
            with tempfile.TemporaryDirectory(prefix="bench-diag-") as data:
                service = start_service(Path(data), *extra)
                try:
                    client = make_client(service.url)
                    pool_id = f"p-{uuid.uuid4().hex[:6]}"
                    create_pool(client, pool_id, nodes=1, slots=4)
                    wait_idle_node(client, pool_id)
                    result = bench_end_to_end(client, pool_id, f"j-{uuid.uuid4().hex[:6]}", COUNT, 8, 300)
                    rates.append(result["rate"])
                finally:
                    service.stop()
        print(f"| {name} | {statistics.median(rates):,.0f} |", flush=True)
    print(f"load at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
