"""The SQLite and PostgreSQL stores side by side, in one run, through the official SDK (azure-batch 15.x).

    .venv/bin/python benchmarks/bench_stores.py                # appends its section to benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_stores.py --tasks 5000 --e2e-tasks 500 --no-write

Each store gets a fresh `batchyard serve` (PostgreSQL: a fresh database in a cluster this script starts from
Debian's server binaries, as the tests do: tests/postgres_cluster.py), and the same phases:

1. ingest: `--tasks` tasks added with `create_task_collection` (100 a call, 8 threads) to a job whose pool
   has no nodes;
2. lists of that job, following `odata.nextLink` to the end: full documents, `$select=id,state`, and a
   `$filter` on the id prefix that matches 10 tasks;
3. end to end: `--e2e-tasks` `/bin/true` tasks on one node with nproc slots, from the first add until the
   job's task counts show them all completed.

`--rounds` times (default 3) the stores take turns (a fresh service and database each time); the medians
are reported.

PostgreSQL runs twice: with its defaults (every commit flushed to disk before the answer) and with
`synchronous_commit=off` set for the service's connection (in the URL), which answers before the flush: a
crash of the database server (not of the service) can then lose the last fraction of a second of commits.
The service's CPU is sampled per phase; the PostgreSQL server's CPU is not in it (the server's column).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_core import (  # noqa: E402  (a sibling script, not a package)
    NPROC,
    Monitor,
    check_added,
    create_job,
    create_pool,
    groups_of,
    machine_info,
    make_client,
    start_service,
    task_models,
    wait_idle_node,
)

from tests.postgres_cluster import PostgresCluster, server_binaries  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "benchmarks" / "RESULTS.md"
TITLE = "## SQLite and PostgreSQL stores side by side (`benchmarks/bench_stores.py`)"


def server_cpu(cluster: PostgresCluster) -> float:
    """CPU seconds of the PostgreSQL server's processes so far (the postmaster and its live backends)."""
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0.0
    with contextlib.suppress(psutil.Error):
        main = psutil.Process(pid)
        for proc in [main, *main.children()]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
    return total


@contextlib.contextmanager
def measured(
    monitor: Monitor, row: dict[str, Any], name: str, pid: int, cluster: PostgresCluster | None
) -> Iterator[None]:
    server_before = server_cpu(cluster) if cluster else 0.0
    with monitor.phase(name, service=pid) as phase:
        yield
    row[name] = {
        "seconds": phase.wall,
        "service_cpu": phase.cpu.get("service", 0.0),
        "server_cpu": (server_cpu(cluster) - server_before) if cluster else None,
    }


def run_store(
    label: str, extra: list[str], cluster: PostgresCluster | None, args: argparse.Namespace, monitor: Monitor
) -> dict[str, Any]:
    results: dict[str, Any] = {"label": label}
    with tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp:
        data_dir = Path(tmp)
        data_dir.chmod(0o711)  # task users (a root service) pass through to the node roots
        service = start_service(data_dir, *extra)
        try:
            client = make_client(service.url)
            create_pool(client, "empty", nodes=0, slots=1)
            create_job(client, "ingest", "empty")
            groups = groups_of(task_models("c", args.tasks))
            with measured(monitor, results, "ingest", service.pid, cluster):
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    failed = sum(pool.map(lambda g: check_added(client.create_task_collection("ingest", g)), groups))
            if failed:
                raise RuntimeError(f"{label}: {failed} adds failed")

            def listing(name: str, call: Callable[[], Any], expect: int) -> None:
                with measured(monitor, results, name, service.pid, cluster):
                    count = len(list(call()))
                if count != expect:
                    raise RuntimeError(f"{label} {name}: {count} tasks, expected {expect}")

            listing("list: full documents", lambda: client.list_tasks("ingest"), args.tasks)
            listing("list: $select=id,state", lambda: client.list_tasks("ingest", select=["id", "state"]), args.tasks)
            prefix = f"c{args.tasks // 2:06d}"[:-1]
            listing(
                "list: $filter startswith(id)",
                lambda: client.list_tasks("ingest", filter=f"startswith(id, '{prefix}')"),
                10,
            )

            create_pool(client, "run", nodes=1, slots=NPROC)
            wait_idle_node(client, "run")
            create_job(client, "e2e", "run")
            with measured(monitor, results, "end to end", service.pid, cluster):
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    list(
                        pool.map(
                            lambda g: client.create_task_collection("e2e", g),
                            groups_of(task_models("e", args.e2e_tasks)),
                        )
                    )
                while client.get_job_task_counts("e2e").task_counts.completed < args.e2e_tasks:
                    time.sleep(0.05)
        finally:
            service.stop()
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(f"{label}: {name} {figures['seconds']:.2f} s", flush=True)
    return results


def medians(label: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per measurement, the median of each figure over the rounds."""
    merged: dict[str, Any] = {"label": label}
    for name in results[0]:
        if name == "label":
            continue
        merged[name] = {
            key: None if results[0][name][key] is None else statistics.median(r[name][key] for r in results)
            for key in results[0][name]
        }
    return merged


def render(
    runs: list[dict[str, Any]], args: argparse.Namespace, command: str, machine: dict[str, str], load: tuple[str, str]
) -> str:
    rates = {"ingest": args.tasks, "end to end": args.e2e_tasks}
    names = [name for name in runs[0] if name != "label"]
    lines = [
        "",
        TITLE,
        "",
        "Reproduce (from the repository root; PostgreSQL from Debian's `postgresql` package, which `scripts/test.sh`"
        " installs):",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Machine: nproc={machine['nproc']} ({machine['cpu']}), {machine['memory']}, Python {machine['python']}, "
        f"{machine['os']}; load average at start {load[0]}, at end {load[1]}.  ",
        f"Versions: batchyard {machine['batchyard']}, azure-batch {machine['azure-batch']}.",
        "",
        f"{args.tasks:,} tasks added and listed, {args.e2e_tasks:,} `/bin/true` tasks end to end on one node with "
        f"{NPROC} slots; medians of {args.rounds} rounds in which the stores take turns. Each cell: wall time"
        " (rate), then the service's CPU s / the PostgreSQL server's CPU s (and both together per task).",
        "",
        "| measurement | " + " | ".join(run["label"] for run in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for name in names:
        cells = []
        for run in runs:
            figures = run[name]
            rate = f" ({rates[name] / figures['seconds']:,.0f} tasks/s)" if name in rates else ""
            server = f" / {figures['server_cpu']:.1f}" if figures["server_cpu"] is not None else ""
            per_task = ""
            if name in rates:  # CPU per task: the figure a loaded machine moves least
                cpu = figures["service_cpu"] + (figures["server_cpu"] or 0.0)
                per_task = f" = {cpu / rates[name] * 1e6:,.0f} µs a task"
            cells.append(f"{figures['seconds']:.2f} s{rate}; CPU {figures['service_cpu']:.1f}{server}{per_task}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=30_000, help="tasks added and listed")
    parser.add_argument("--e2e-tasks", type=int, default=1_000, help="/bin/true tasks end to end")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians reported)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    bindir = server_binaries()
    if bindir is None:
        parser.error("PostgreSQL is not installed (apt-get install postgresql)")
    command = " ".join([".venv/bin/python benchmarks/bench_stores.py", *map(shlex.quote, argv or sys.argv[1:])])
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = machine_info()
    cluster = PostgresCluster(bindir)
    monitor = Monitor()
    try:
        stores: list[tuple[str, Callable[[], list[str]], PostgresCluster | None]] = [
            ("SQLite", lambda: [], None),
            ("PostgreSQL", lambda: ["--database", cluster.new_database("bench")], cluster),
            (
                "PostgreSQL, synchronous_commit=off",
                lambda: ["--database", cluster.new_database("bench") + "?options=-c%20synchronous_commit%3Doff"],
                cluster,
            ),
        ]
        rounds: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.rounds):  # the stores take turns, so each sees the machine's load alike
            for label, extra, server in stores:
                rounds.setdefault(label, []).append(run_store(label, extra(), server, args, monitor))
        runs = [medians(label, results) for label, results in rounds.items()]
    finally:
        monitor.close()
        cluster.stop()
    load = (load_start, " ".join(f"{x:.2f}" for x in os.getloadavg()))
    text = render(runs, args, command, machine, load)
    print(text)
    if not args.no_write:
        previous = args.results.read_text() if args.results.exists() else ""
        if TITLE in previous:  # this benchmark's last section is replaced, the others stay
            start = previous.index(TITLE)
            end = previous.find("\n## ", start + len(TITLE))
            previous = previous[:start].rstrip("\n") + "\n" + (previous[end:] if end >= 0 else "")
        args.results.write_text(previous.rstrip("\n") + "\n" + text)
        print(f"written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
