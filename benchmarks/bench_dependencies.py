"""Task dependency hand-off: how soon a child runs once its parents are satisfied (not a timed test).

Two workloads on one local node, through the official SDK:
  chain   N tasks, each depending on the previous one (one-to-one, N-1 hand-offs)
  fan-in  M parents (ids 0..M-1) and one child depending on the id range 0..M-1

The hand-off of a child is its executionInfo.startTime minus the latest endTime of its parents,
both recorded by the service. The real service is reported at about 7 s per hop.

    .venv/bin/python benchmarks/bench_dependencies.py [--chain 1000] [--fan-in 10000] [--write]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (  # noqa: E402 - the sibling benchmark module, found through sys.path
    create_pool,
    groups_of,
    make_client,
    start_service,
    wait_for,
    wait_idle_node,
)


def _add(client: Any, job_id: str, tasks: list[Any]) -> None:
    for group in groups_of(tasks):
        result = client.create_task_collection(job_id, group)
        failed = [item for item in result.result_values or [] if item.status != "success"]
        if failed:
            raise RuntimeError(f"could not add tasks: {failed[0].error}")


def _completed_count(client: Any, job_id: str) -> int:
    return int(client.get_job_task_counts(job_id).task_counts.completed)


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"p50 {p50 * 1000:.1f} / p90 {p90 * 1000:.1f} / max {ordered[-1] * 1000:.1f} ms"


def chain(client: Any, pool_id: str, length: int) -> dict[str, str]:
    from azure.batch import models as m

    job_id = "chain"
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), uses_task_dependencies=True)
    )
    tasks = [
        m.BatchTaskCreateOptions(
            id=f"c{i}",
            command_line="/bin/true",
            depends_on=m.BatchTaskDependencies(task_ids=[f"c{i - 1}"]) if i else None,
        )
        for i in range(length)
    ]
    started = time.monotonic()
    _add(client, job_id, tasks)
    wait_for(lambda: _completed_count(client, job_id) == length, 600, "the chain")
    elapsed = time.monotonic() - started
    done = {t.id: t for t in client.list_tasks(job_id, select=["id", "executionInfo"])}
    hops = [
        (done[f"c{i}"].execution_info.start_time - done[f"c{i - 1}"].execution_info.end_time).total_seconds()
        for i in range(1, length)
    ]
    return {
        "workload": f"chain of {length} (one-to-one)",
        "total": f"{elapsed:.1f} s ({length / elapsed:.0f} tasks/s)",
        "hand-off": _ms(hops),
    }


def fan_in(client: Any, pool_id: str, parents: int) -> dict[str, str]:
    from azure.batch import models as m

    job_id = "fanin"
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id), uses_task_dependencies=True)
    )
    child = m.BatchTaskCreateOptions(
        id="child",
        command_line="/bin/true",
        depends_on=m.BatchTaskDependencies(task_id_ranges=[m.BatchTaskIdRange(start=0, end=parents - 1)]),
    )
    started = time.monotonic()
    _add(client, job_id, [child])
    _add(client, job_id, [m.BatchTaskCreateOptions(id=str(i), command_line="/bin/true") for i in range(parents)])
    wait_for(lambda: _completed_count(client, job_id) == parents + 1, 900, "the fan-in")
    elapsed = time.monotonic() - started
    last_parent = max(
        t.execution_info.end_time for t in client.list_tasks(job_id, select=["id", "executionInfo"]) if t.id != "child"
    )
    start = client.get_task(job_id, "child").execution_info.start_time
    return {
        "workload": f"fan-in of {parents} parents (id range) into one child",
        "total": f"{elapsed:.1f} s ({(parents + 1) / elapsed:.0f} tasks/s)",
        "hand-off": f"{(start - last_parent).total_seconds() * 1000:.1f} ms",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", type=int, default=1000)
    parser.add_argument("--fan-in", type=int, default=10_000)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchyard-deps-") as work:
        Path(work).chmod(0o711)  # task users (a root service) pass through to the node roots
        service = start_service(Path(work) / "svc")
        try:
            client = make_client(service.url)
            create_pool(client, "deps", nodes=1, slots=args.slots)
            wait_idle_node(client, "deps")
            rows = [chain(client, "deps", args.chain), fan_in(client, "deps", args.fan_in)]
        finally:
            service.stop()
    command = f".venv/bin/python benchmarks/bench_dependencies.py --chain {args.chain} --fan-in {args.fan_in}"
    lines = [
        "## Task dependency hand-off",
        "",
        f"Command: `{command}` (1 node x {args.slots} slots, `/bin/true` tasks). Machine: "
        f"Python {platform.python_version()}, {platform.machine()}. The real service is reported at about 7 s per "
        "hop. Hand-off = the child's startTime minus its parents' latest endTime.",
        "",
        "| workload | total | hand-off (parent completed -> child running) |",
        "|---|---|---|",
        *(f"| {r['workload']} | {r['total']} | {r['hand-off']} |" for r in rows),
        "",
    ]
    print("\n".join(lines))
    if args.write:
        results = Path(__file__).resolve().parent / "RESULTS.md"
        with results.open("a") as out:
            out.write("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
