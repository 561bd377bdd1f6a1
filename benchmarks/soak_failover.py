"""Soak: kill -9 the active service instance again and again under a steady stream of adds; count what is lost.

Two `batchyard serve` instances on one PostgreSQL database (a cluster this script starts from Debian's server
binaries, as the tests do), sharing a data directory; a pool of 2 local nodes × 4 slots. A thread adds one
task at a time (every `--interval` s) through whichever instance answers; each task notes its start and end
in a shared file and sleeps `--task-seconds`. `--failovers` times: wait `--between` s, kill -9 the active
instance, time until the standby answers as active (its `GET /` is 200), start the killed one again (it
comes back as standby). Then the stream stops and every acknowledged task is awaited. Reported: takeover
time (median, max), tasks lost (acknowledged, never ended), tasks run twice (started more than once).
Run from the repository root:

    .venv/bin/python benchmarks/soak_failover.py --failovers 20
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azure.batch import models as m  # noqa: E402
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError  # noqa: E402

from tests.api.failover_support import Instance, start_instances  # noqa: E402
from tests.api.helpers import create_job, create_pool, error_code, idle_nodes  # noqa: E402
from tests.conftest import make_client, wait_for  # noqa: E402
from tests.postgres_cluster import PostgresCluster, server_binaries  # noqa: E402


class AddStream:
    """Adds one task at a time through the instance that answers; remembers the acknowledged ones."""

    def __init__(self, instances: list[Instance], markers: Path, interval: float, seconds: float) -> None:
        self.clients = [make_client(instance.url) for instance in instances]
        self.interval = interval
        note = f"echo $0 $AZ_BATCH_TASK_ID >> {markers}"
        start, end = note.replace("$0", "start"), note.replace("$0", "end")
        self.command = f"/bin/bash -c '{start}; sleep {seconds}; {end}'"
        self.acknowledged: list[str] = []
        self.failed_adds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._preferred = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        for number in itertools.count():
            if self._stop.wait(self.interval):
                return
            task_id = f"t{number}"
            if self._add(task_id):
                self.acknowledged.append(task_id)
            else:
                self.failed_adds += 1

    def _add(self, task_id: str) -> bool:
        """True once an instance acknowledged it (a retry finding it there already counts: it was committed)."""
        for attempt in range(40):
            client = self.clients[(self._preferred + attempt) % len(self.clients)]
            try:
                client.create_task("j", m.BatchTaskCreateOptions(id=task_id, command_line=self.command))
                self._preferred = self.clients.index(client)
                return True
            except HttpResponseError as exc:
                if error_code(exc) == "TaskExists":
                    return True
                if exc.status_code not in (500, 503):
                    raise
            except (ServiceRequestError, ServiceResponseError):
                # Down, or its answer lost with it (committed or not: a retry finding it counts it, above).
                pass
            time.sleep(0.25)
        return False


def active_instance(instances: list[Instance]) -> Instance:
    return wait_for(lambda: next((i for i in instances if i.role() == "active"), None), what="an active instance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failovers", type=int, default=20)
    parser.add_argument("--between", type=float, default=4.0, help="seconds between failovers")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between adds")
    parser.add_argument("--task-seconds", type=float, default=2.0, help="how long each task sleeps")
    args = parser.parse_args()
    bindir = server_binaries()
    if bindir is None:
        sys.exit("PostgreSQL is not installed: scripts/test.sh installs Debian's postgresql package")
    cluster = PostgresCluster(bindir)
    workdir = Path(tempfile.mkdtemp(prefix="batchyard-soak-failover-"))
    workdir.chmod(0o711)  # task users (a root service) pass through to the node roots and the markers
    markers = workdir / "markers.log"
    markers.touch()
    markers.chmod(0o666)
    instances = start_instances(workdir / "data", cluster.new_database("soak"))
    try:
        result = soak(instances, markers, args)
    finally:
        for instance in instances:
            if instance.role() != "active":
                instance.stop()
        for instance in instances:
            instance.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(result)
    sys.exit(1 if "lost 0," not in result or "run twice 0" not in result else 0)


def soak(instances: list[Instance], markers: Path, args: argparse.Namespace) -> str:
    client = make_client(instances[0].url)
    create_pool(client, "p", nodes=2, slots=4)
    wait_for(lambda: idle_nodes(client, "p", 2), timeout=60, what="two idle nodes")
    create_job(client, "j", "p")
    stream = AddStream(instances, markers, args.interval, args.task_seconds)
    stream.start()
    takeovers: list[float] = []
    started = time.monotonic()
    for failover in range(args.failovers):
        time.sleep(args.between)
        victim = active_instance(instances)
        standby = next(instance for instance in instances if instance is not victim)
        victim.kill()
        takeovers.append(standby.wait_role("active", timeout=60))
        victim.start()
        victim.wait_role("standby")
        print(f"failover {failover + 1:2d}: takeover {takeovers[-1]:.2f} s, {len(stream.acknowledged)} tasks added")
    stream.stop()
    client = make_client(active_instance(instances).url)
    acknowledged = set(stream.acknowledged)
    wait_for(lambda: _completed(client) >= len(acknowledged), timeout=300, what="every acknowledged task")
    lines = Counter(markers.read_text().splitlines())
    ended = {task for task in acknowledged if lines[f"end {task}"] >= 1}
    twice = sorted(task for task in acknowledged if lines[f"start {task}"] > 1 or lines[f"end {task}"] > 1)
    requeued = sum(1 for task in client.list_tasks("j") if task.execution_info.requeue_count)
    return (
        f"{args.failovers} failovers in {time.monotonic() - started:.0f} s: takeover median "
        f"{statistics.median(takeovers):.2f} s, max {max(takeovers):.2f} s; {len(acknowledged)} tasks acknowledged "
        f"({stream.failed_adds} adds given up), lost {len(acknowledged - ended)}, run twice {len(twice)} {twice[:10]}, "
        f"requeued {requeued}"
    )


def _completed(client: Any) -> int:
    return int(client.get_job_task_counts("j").task_counts.completed)


if __name__ == "__main__":
    main()
