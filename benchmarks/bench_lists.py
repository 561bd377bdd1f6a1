"""List queries at 100,000-task scale, through the official SDK (azure-batch 15.x) against `batchyard serve`.

    .venv/bin/python benchmarks/bench_lists.py                 # 100,000 tasks; appends to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_lists.py --tasks 20000 --no-write

The job is built the way a user would build it, only through the API:

1. a pool of one node with 4 slots; `--run` tasks (default 10,000) are added with add-collection and
   run to completion (`/bin/true`, and `/bin/sh -c 'exit 3'` for every 10th, so some fail);
2. 4 `sleep` tasks fill the node's slots (they stay running);
3. the rest of the `--tasks` are added with add-collection (100 a call, 8 threads) and stay active;
4. the change feed's mark is the creation time of one task added after all of them; then 100 active tasks are
   terminated, so `stateTransitionTime gt <mark>` returns exactly those 100.

Every row is one SDK call sequence that follows `odata.nextLink` to the end (`list(...)`), timed on the
client; the service's peak RSS is sampled every 50 ms during each row. A second job of 5,000 tasks
gives the seed's own measurement (it lists 5,000 tasks with `id,state` in 4.3 s and with stats in 17 s).
`--data-dir D --keep` leaves the data directory and service log behind for inspection.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import (  # noqa: E402  (a sibling script, not a package)
    MIB,
    Monitor,
    PhaseStats,
    check_added,
    create_job,
    create_pool,
    groups_of,
    machine_info,
    make_client,
    start_service,
    wait_for,
    wait_idle_node,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "benchmarks" / "RESULTS.md"
GOAL_SELECT_SECONDS = 5.0  # the goal for the full 100,000-task listing with $select=id,state
SEED_FIGURES = {"id,state": (5000, 4.3), "stats": (5000, 17.0)}  # tasks, seconds (the seed's own report)


def task_models(prefix: str, start: int, count: int, command: Callable[[int], str]) -> list[Any]:
    from azure.batch import models as m

    return [
        m.BatchTaskCreateOptions(id=f"{prefix}{i:06d}", command_line=command(i)) for i in range(start, start + count)
    ]


def add_all(client: Any, job_id: str, tasks: list[Any], threads: int = 8) -> None:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        failed = sum(
            pool.map(lambda group: check_added(client.create_task_collection(job_id, group)), groups_of(tasks))
        )
    if failed:
        raise RuntimeError(f"{failed} tasks were not added")


def build_job(client: Any, pool_id: str, job_id: str, total: int, run: int) -> str:
    """The mixed-state job; returns the change feed's mark (a DateTime literal value)."""
    from azure.batch import models as m

    create_pool(client, pool_id, nodes=1, slots=4)
    create_job(client, job_id, pool_id)
    wait_idle_node(client, pool_id)
    add_all(client, job_id, task_models("t", 0, run, lambda i: "/bin/sh -c 'exit 3'" if i % 10 == 9 else "/bin/true"))
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed >= run, 600, "the run fraction", 0.2)
    add_all(client, job_id, task_models("t", run, 4, lambda i: "/bin/sleep 3600"))
    wait_for(lambda: client.get_job_task_counts(job_id).task_counts.running >= 4, 60, "4 running tasks", 0.1)
    rest = total - run - 4
    add_all(client, job_id, task_models("t", run + 4, rest, lambda i: "/bin/true"))
    # The mark: the creation time of a task added after all of them (add-collection calls ran concurrently).
    mark_job = f"{job_id}-mark"
    create_job(client, mark_job, f"{pool_id}-none")  # a pool that does not exist: the task stays active
    client.create_task(mark_job, m.BatchTaskCreateOptions(id="mark", command_line="/bin/true"))
    stamp = client.get_task(mark_job, "mark").creation_time
    mark = stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.01)  # terminations get a later timestamp than the mark
    for i in range(total - 100, total):
        client.terminate_task(job_id, f"t{i:06d}")
    return mark


def timed_list(monitor: Monitor, service_pid: int, name: str, call: Callable[[], Any]) -> dict[str, Any]:
    with monitor.phase(name, service=service_pid) as phase:
        items = list(call())
    return {
        "name": name,
        "count": len(items),
        "seconds": phase.wall,
        "rss": phase.peak_rss.get("service", 0),
        "cpu": phase.cpu.get("service", 0.0),
        "client_cpu": phase.cpu.get("client", 0.0),
        "items": items,
    }


def run_rows(client: Any, monitor: Monitor, pid: int, job_id: str, small_job: str, mark: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(name: str, call: Callable[[], Any], expect: int | None = None) -> dict[str, Any]:
        result = timed_list(monitor, pid, name, call)
        if expect is not None and result["count"] != expect:
            raise RuntimeError(f"{name}: {result['count']} items, expected {expect}")
        del result["items"]
        rows.append(result)
        print(f"  {name}: {result['count']:,} in {result['seconds']:.2f} s", flush=True)
        return result

    counts = client.get_job_task_counts(job_id).task_counts
    total = counts.active + counts.running + counts.completed
    row("all tasks, `$select=id,state`", lambda: client.list_tasks(job_id, select=["id", "state"]), total)
    row("all tasks, full documents", lambda: client.list_tasks(job_id), total)
    row(
        "`$filter=state eq 'completed'`",
        lambda: client.list_tasks(job_id, filter="state eq 'completed'"),
        counts.completed,
    )
    row(
        "`$filter=state eq 'completed'`, `$select=id,state`",
        lambda: client.list_tasks(job_id, filter="state eq 'completed'", select=["id", "state"]),
        counts.completed,
    )
    row(
        "`$filter=executionInfo/exitCode ne 0` (null ne 0: includes tasks that have not run)",
        lambda: client.list_tasks(job_id, filter="executionInfo/exitCode ne 0", select=["id", "state"]),
    )
    row(
        "`$filter=executionInfo/exitCode gt 0` (the failed runs only)",
        lambda: client.list_tasks(job_id, filter="executionInfo/exitCode gt 0", select=["id", "executionInfo"]),
    )
    row(
        f"change feed `$filter=stateTransitionTime gt DateTime'{mark}'`",
        lambda: client.list_tasks(job_id, filter=f"stateTransitionTime gt DateTime'{mark}'"),
        100,
    )
    row("all tasks, `$expand=stats`", lambda: client.list_tasks(job_id, expand=["stats"]), total)
    with monitor.phase("task counts", service=pid) as phase:
        for _ in range(100):
            client.get_job_task_counts(job_id)
    rows.append(
        {
            "name": "task counts (`get_job_task_counts`, per call, 100 calls)",
            "count": 1,
            "seconds": phase.wall / 100,
            "rss": phase.peak_rss.get("service", 0),
            "cpu": phase.cpu.get("service", 0.0) / 100,
            "client_cpu": phase.cpu.get("client", 0.0) / 100,
        }
    )
    with monitor.phase("job stats", service=pid) as phase:
        for _ in range(100):
            client.get_job(job_id, expand=["stats"])
    rows.append(
        {
            "name": "job `$expand=stats` (`get_job`, per call, 100 calls)",
            "count": 1,
            "seconds": phase.wall / 100,
            "rss": phase.peak_rss.get("service", 0),
            "cpu": phase.cpu.get("service", 0.0) / 100,
            "client_cpu": phase.cpu.get("client", 0.0) / 100,
        }
    )
    row(
        "seed comparison: 5,000-task job, `$select=id,state`",
        lambda: client.list_tasks(small_job, select=["id", "state"]),
        5000,
    )
    row(
        "seed comparison: 5,000-task job, `$expand=stats`", lambda: client.list_tasks(small_job, expand=["stats"]), 5000
    )
    return rows


def render(
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    command: str,
    machine: dict[str, str],
    load: tuple[str, str],
    idle_rss: int,
    peak_rss: int,
) -> str:
    lines = [
        "",
        f"## List queries at {args.tasks:,} tasks (`benchmarks/bench_lists.py`)",
        "",
        "Reproduce (from the repository root):",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Machine: nproc={machine['nproc']} ({machine['cpu']}), {machine['memory']}, Python {machine['python']}, "
        f"{machine['os']}; load average at start {load[0]}, at end {load[1]}.  ",
        f"Versions: batchyard {machine['batchyard']}, azure-batch {machine['azure-batch']}.",
        "",
        f"One job of {args.tasks:,} tasks added through add-collection: {args.run:,} ran on one node "
        "(every 10th exits 3), 4 are running, 100 were terminated after the change feed's mark, the rest are "
        "active. Each row follows `odata.nextLink` to the end through the SDK (`list(client.list_tasks(...))`, "
        "1,000 per page); seconds are the client's wall clock, so they include the SDK's own deserialisation.",
        "",
        "| query | tasks returned | seconds | tasks/s | service peak RSS MiB | service CPU s | client CPU s "
        "| seed (5,000 tasks) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rate = f"{row['count'] / row['seconds']:,.0f}" if row["count"] > 1 else ""
        seconds = f"{row['seconds'] * 1000:.1f} ms" if row["count"] == 1 else f"{row['seconds']:.2f}"
        seed = ""
        if "select=id,state" in row["name"] and row["name"].startswith(("all", "seed")):
            n, s = SEED_FIGURES["id,state"]
            seed = f"{s} s ({n / s:,.0f} tasks/s)"
        elif "expand=stats" in row["name"] and row["name"].startswith(("all", "seed")):
            n, s = SEED_FIGURES["stats"]
            seed = f"{s} s ({n / s:,.0f} tasks/s)"
        lines.append(
            f"| {row['name']} | {row['count']:,} | {seconds} | {rate} | {row['rss'] / MIB:.0f} "
            f"| {row['cpu']:.2f} | {row['client_cpu']:.2f} | {seed} |"
        )
    select_row = rows[0]
    met = select_row["seconds"] < GOAL_SELECT_SECONDS
    lines += [
        "",
        f"Goal: the full {args.tasks:,}-task listing with `$select=id,state` in under {GOAL_SELECT_SECONDS:.0f} s: "
        f"{select_row['seconds']:.2f} s, **{'met' if met else 'NOT met'}**. Service RSS before the queries: "
        f"{idle_rss / MIB:.0f} MiB with the {args.tasks:,}-task job; highest during all of them: "
        f"{peak_rss / MIB:.0f} MiB "
        f"(+{(peak_rss - idle_rss) / MIB:.0f} MiB: memory does not grow with the job's size, one page is in memory "
        "at a time).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--run", type=int, default=10_000, help="tasks that run to completion first")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.tasks < args.run + 200:
        parser.error("--tasks must exceed --run by at least 200")
    command = "  ".join([".venv/bin/python benchmarks/bench_lists.py", *map(shlex.quote, argv or sys.argv[1:])]).strip()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = machine_info()
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="bench-lists-")
    data_dir = args.data_dir or Path(tmp.name)  # type: ignore[union-attr]
    data_dir.chmod(0o711)  # task users (a root service) pass through to the node roots
    service = start_service(data_dir)
    monitor = Monitor()
    try:
        client = make_client(service.url)
        stamp = datetime.now(UTC).strftime("%H%M%S")
        pool_id, job_id, small_job = f"lists-{stamp}", f"big-{stamp}", f"small-{stamp}"
        started = time.perf_counter()
        mark = build_job(client, pool_id, job_id, args.tasks, args.run)
        create_job(client, small_job, f"{pool_id}-empty")  # a pool that does not exist: its tasks stay active
        add_all(client, small_job, task_models("s", 0, 5000, lambda i: "/bin/true"))
        print(f"built the jobs in {time.perf_counter() - started:.1f} s; listing", flush=True)
        with monitor.phase("idle", service=service.pid) as idle:
            time.sleep(0.5)
        rows = run_rows(client, monitor, service.pid, job_id, small_job, mark)
        peak_rss = max(row["rss"] for row in rows)
        load = (load_start, " ".join(f"{x:.2f}" for x in os.getloadavg()))
        text = render(rows, args, command, machine, load, idle.peak_rss.get("service", 0), peak_rss)
        print(text)
        if not args.no_write:
            with open(args.results, "a") as out:
                out.write(text)
    finally:
        monitor.close()
        service.stop()
        if tmp is not None and not args.keep:
            tmp.cleanup()
    return 0


__all__ = ["PhaseStats", "main"]

if __name__ == "__main__":
    sys.exit(main())
