"""What the fencing check costs a write transaction of the PostgreSQL store, in-process (no HTTP, no engine).

    .venv/bin/python benchmarks/bench_fencing.py --transactions 5000

The same transaction (one task's update, as a task's state change writes it) `--transactions` times on a
store opened without the failover lease (no check) and on one that claimed a fencing epoch (the check: one
`SELECT ... FOR SHARE` of the epoch row first), alternating in `--rounds` blocks; the medians per
transaction are reported. A PostgreSQL cluster is started as the tests do (tests/postgres_cluster.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batchyard.service.documents import TaskDocument  # noqa: E402
from batchyard.service.persistence.postgres import PostgresStore  # noqa: E402
from tests.postgres_cluster import PostgresCluster, server_binaries  # noqa: E402


def per_transaction(store: PostgresStore, count: int) -> float:
    """Seconds per transaction updating one task's row."""
    doc = TaskDocument({"id": "t", "state": "running", "stateTransitionTime": "2026-01-01T00:00:00Z"})
    began = time.perf_counter()
    for _ in range(count):
        with store.transaction():
            store.update_task("j", "t", "running", "node", doc)
    return (time.perf_counter() - began) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bindir = server_binaries()
    if bindir is None:
        sys.exit("PostgreSQL is not installed: scripts/test.sh installs Debian's postgresql package")
    cluster = PostgresCluster(bindir)
    try:
        plain = PostgresStore(cluster.new_database("plain"))
        fenced = PostgresStore(cluster.new_database("fenced"), claim_epoch=True)
        for store in (plain, fenced):
            doc = TaskDocument({"id": "t", "state": "active"})
            with store.transaction():
                store.insert_tasks("j", [("t", store.next_seq(), "active", doc)])
        times: dict[str, list[float]] = {"without the check": [], "with the check": []}
        for _ in range(args.rounds):
            times["without the check"].append(per_transaction(plain, args.transactions))
            times["with the check"].append(per_transaction(fenced, args.transactions))
        plain.close()
        fenced.close()
    finally:
        cluster.stop()
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, value in medians.items():
        print(f"{label}: {value * 1e6:.0f} µs a transaction")
    ratio = medians["with the check"] / medians["without the check"]
    print(f"ratio {ratio:.2f} ({args.rounds} rounds of {args.transactions} transactions, medians)")


if __name__ == "__main__":
    main()
