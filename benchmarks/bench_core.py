"""Core throughput and latency of batchyard, side by side with HyperQueue, in one run.

    .venv/bin/pip install -e '.[bench]'          # hyperqueue==0.27.0 (its server and worker are in the wheel)
    .venv/bin/python benchmarks/bench_core.py    # full sizes, writes benchmarks/RESULTS.md

Phases (each batchyard phase talks to a real `batchyard serve` process through azure-batch 15.x):

1. ingest: N tasks (default 100,000) into a job whose pool has 0 nodes, so nothing runs; once with
   `create_task_collection` (100 tasks a call, calls from a thread pool), once with the SDK's
   `create_tasks(max_concurrency=threads)` helper. Task models are built before the clock starts.
2. end to end: M `/bin/true` tasks (default 5,000) on ONE node with `taskSlotsPerNode` = each of
   `--slots` (default nproc and 2×nproc): from the first add call until `get_job_task_counts`
   (polled every 50 ms) shows all M completed.
3. HyperQueue: the same M `/bin/true` tasks through `hyperqueue.LocalCluster` with one worker of
   the same number of cores, in a child process (submit + wait_for_jobs). Phases 2 and 3 alternate
   (batchyard, HyperQueue, batchyard, ...) so both see the same background load.
4. latency: one task at a time on an idle node; each task is `/bin/date +%s.%N`, so its stdout is
   the moment its process started; the task's state transition times (stamped by the service)
   give when the service marked it running and completed.
5. the machine's spawn ceiling: one process per core, each starting `/bin/true` with `os.posix_spawn` and
   reaping it with `waitpid` in a loop for `--ceiling-seconds`; the end-to-end rates are compared with it.
6. more shapes end to end: `--many-jobs` jobs of `--job-tasks` tasks each on the one node, and
   `--e2e-tasks` tasks on a pool of `--multi-nodes` nodes × 2 slots (the CPU of all its agents summed).
7. a pool of `--idle-nodes` local nodes: seconds from its creation until all are idle, and the idle
   agents' RSS.

The service's (and its node agents') peak RSS and CPU time are sampled for every phase.
`--py-spy DIR` attaches `py-spy record` to the service and the agent during each batchyard phase
and summarises the hottest frames (the figures of such a run are perturbed by the profiler).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "benchmarks" / "RESULTS.md"
NPROC = os.cpu_count() or 1
MIB = 1024 * 1024

# Floors the project holds itself to.
FLOOR_INGEST = 5000.0  # tasks/s
FLOOR_RATIO = 3.0  # batchyard / HyperQueue end-to-end throughput (the performance issue's goal)
FLOOR_CEILING = 0.5  # batchyard end to end / the machine's spawn ceiling
FLOOR_CPU_PER_TASK_US = 400.0  # service + agent CPU per task end to end
FLOOR_STARTED_MS = 5.0  # add → process started, p50, on an idle node
FLOOR_STARTED_QUEUED_MS = 20.0  # the same with --queued-jobs × --queued-tasks tasks queued elsewhere


# --- the service process ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def agent_pids(self) -> dict[str, int]:
        """Node id -> pid of the agent processes the service started."""
        found: dict[str, int] = {}
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children():
                with contextlib.suppress(psutil.Error):
                    cmd = child.cmdline()
                    if "batchyard.agent" in cmd and "--node-id" in cmd:
                        found[cmd[cmd.index("--node-id") + 1]] = child.pid
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_service(data_dir: Path, *extra: str) -> Service:
    """Like tests/conftest.py: `batchyard serve` on a free loopback port with the development account
    (`extra`: more serve options)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "service.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    args = [
        sys.executable,
        "-m",
        "batchyard.cli.main",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    args.append("--no-https")  # measured over HTTP, as the results were; and port + 1 may be taken
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited early:\n{log_path.read_text(errors='replace')}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return Service(url, process, log_path)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"service not ready:\n{log_path.read_text(errors='replace')}")


def make_client(url: str) -> Any:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME

    return BatchClient(url, AzureNamedKeyCredential(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY))


def create_pool(client: Any, pool_id: str, nodes: int, slots: int) -> None:
    from azure.batch import models as m

    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=m.VirtualMachineConfiguration(
                image_reference=m.BatchVmImageReference(
                    publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 22.04",
            ),
            target_dedicated_nodes=nodes,
            task_slots_per_node=slots,
        )
    )


def create_job(client: Any, job_id: str, pool_id: str) -> None:
    from azure.batch import models as m

    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool_id)))


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


def idle_nodes_of(client: Any, pool_id: str, count: int) -> bool:
    return sum(1 for node in client.list_nodes(pool_id) if node.state == "idle") >= count


def wait_idle_node(client: Any, pool_id: str) -> str:
    def idle() -> str | None:
        nodes = [node for node in client.list_nodes(pool_id) if node.state == "idle"]
        return nodes[0].id if nodes else None

    return str(wait_for(idle, 120, f"an idle node in {pool_id}", 0.1))


def task_models(prefix: str, count: int, command_line: str = "/bin/true") -> list[Any]:
    from azure.batch import models as m

    return [m.BatchTaskCreateOptions(id=f"{prefix}{i:06d}", command_line=command_line) for i in range(count)]


def groups_of(tasks: list[Any], size: int = 100) -> list[Any]:
    from azure.batch import models as m

    return [m.BatchTaskGroup(task_values=tasks[i : i + size]) for i in range(0, len(tasks), size)]


def check_added(result: Any) -> int:
    """Number of tasks a create_task_collection result reports as failed."""
    return sum(1 for item in (result.result_values or []) if item.status != "success") if result else 0


# --- resource monitoring ------------------------------------------------------------------------


def _cpu(proc: psutil.Process, children: bool = False) -> float:
    with contextlib.suppress(psutil.Error):
        times = proc.cpu_times()
        return times.children_user + times.children_system if children else times.user + times.system
    return 0.0


@dataclass
class PhaseStats:
    name: str
    wall: float = 0.0
    tasks: int = 0  # tasks the phase handled (for per-task costs)
    peak_rss: dict[str, int] = field(default_factory=dict)  # "service", "agent", "hq" -> bytes
    cpu: dict[str, float] = field(default_factory=dict)  # "service", "agent", "tasks", "client", "hq" -> s


class Monitor:
    """Samples the RSS of the tracked processes of the current phase every `interval` seconds."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.phases: list[PhaseStats] = []
        self._current: PhaseStats | None = None
        self._pids: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def track(self, key: str, pid: int | None) -> None:
        with self._lock:
            if pid is None:
                self._pids.pop(key, None)
            else:
                self._pids[key] = [pid]

    def sample(self) -> None:
        with self._lock:
            phase = self._current
            if phase is None:
                return
            for key, pids in self._pids.items():
                value = sum(_rss(pid) for pid in pids)
                if value > phase.peak_rss.get(key, 0):
                    phase.peak_rss[key] = value

    def _cpu_snapshot(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        snap = {"client": usage.ru_utime + usage.ru_stime}
        with self._lock:
            pids = dict(self._pids)
        for key, watched in pids.items():
            for pid in watched:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    snap[key] = snap.get(key, 0.0) + _cpu(proc)
                    if key in ("agent", "hq"):  # the task processes it reaped
                        snap["tasks"] = snap.get("tasks", 0.0) + _cpu(proc, children=True)
        return snap

    @contextlib.contextmanager
    def phase(self, name: str, **pids: int | list[int]) -> Iterator[PhaseStats]:
        """Measure one phase; `pids` (service=..., agent=...) are the processes to watch (several agents of a
        pool: a list, their RSS and CPU summed)."""
        stats = PhaseStats(name)
        with self._lock:
            self._pids = {key: value if isinstance(value, list) else [value] for key, value in pids.items()}
        before = self._cpu_snapshot()
        with self._lock:
            self._current = stats
        started = time.perf_counter()
        try:
            yield stats
        finally:
            stats.wall = time.perf_counter() - started
            self.sample()
            after = self._cpu_snapshot()
            with self._lock:
                self._current = None
                self._pids = {}
            for key, value in after.items():
                if key in before:
                    stats.cpu[key] = value - before[key]
            self.phases.append(stats)


def _rss(pid: int) -> int:
    with contextlib.suppress(psutil.Error):
        return int(psutil.Process(pid).memory_info().rss)
    return 0


# --- optional profiling -------------------------------------------------------------------------


class Profiler:
    """py-spy record (raw collapsed stacks) on the service and agents during a phase."""

    def __init__(self, directory: Path | None, rate: int) -> None:
        self.directory = directory
        self.rate = rate
        self.outputs: list[Path] = []
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            if shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None and shutil.which("py-spy") is None:
                raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")

    @contextlib.contextmanager
    def record(self, phase: str, **targets: int) -> Iterator[None]:
        """Record `targets` (label=pid) while the block runs."""
        if self.directory is None:
            yield
            return
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        procs = []
        for label, pid in targets.items():
            out = self.directory / f"{phase}.{label}.txt"
            self.outputs.append(out)
            procs.append(
                subprocess.Popen(
                    [exe, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "-o", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.5)  # let py-spy attach
        try:
            yield
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def summary(self, top: int = 15) -> str:
        """Per recording: self time by line, and inclusive time by function (frames under 99%)."""
        lines: list[str] = []
        for path in self.outputs:
            if not path.exists():
                continue
            by_line: collections.Counter[str] = collections.Counter()
            inclusive: collections.Counter[str] = collections.Counter()
            total = 0
            for line in path.read_text(errors="replace").splitlines():
                stack, _, count_text = line.rpartition(" ")
                if not stack or not count_text.isdigit():
                    continue
                count = int(count_text)
                total += count
                frames = [_short(frame) for frame in stack.split(";")]
                name, where = frames[-1]
                by_line[f"{name} ({where})"] += count
                for function in {f"{name} ({where.rpartition(':')[0] or where})" for name, where in frames}:
                    inclusive[function] += count
            if not total:
                continue
            lines.append(f"\n### {path.name} ({total} samples)\n\nself time, by line:\n")
            lines += [f"- {100 * c / total:5.1f}%  {frame}" for frame, c in by_line.most_common(top)]
            lines.append("\ninclusive time, by function:\n")
            shown = [(f, c) for f, c in inclusive.most_common() if c < 0.99 * total][: 2 * top]
            lines += [f"- {100 * c / total:5.1f}%  {frame}" for frame, c in shown]
        return "\n".join(lines)


def _short(frame: str) -> tuple[str, str]:
    """'fn (/long/path/site-packages/pkg/mod.py:12)' -> ('fn', 'pkg/mod.py:12')."""
    match = re.match(r"(.*) \((.*)\)$", frame)
    if not match:
        return frame, ""
    name, where = match.groups()
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return name, where


# --- phase 1: ingest ----------------------------------------------------------------------------


def bench_ingest(
    client: Any, count: int, threads: int, procs: int, monitor: Monitor, profiler: Profiler, service: Service
) -> dict[str, Any]:
    create_pool(client, "ingest", nodes=0, slots=1)
    results: dict[str, Any] = {}

    create_job(client, "ingest-collection", "ingest")
    groups = groups_of(task_models("c", count))
    with (
        profiler.record("ingest-collection", service=service.pid),
        monitor.phase("ingest: create_task_collection", service=service.pid) as stats,
    ):
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            failed = sum(pool.map(lambda g: check_added(client.create_task_collection("ingest-collection", g)), groups))
        seconds = time.perf_counter() - started
    stats.wall, stats.tasks = seconds, count
    active = client.get_job_task_counts("ingest-collection").task_counts.active
    if failed or active != count:
        raise RuntimeError(f"ingest-collection: {failed} failed adds, {active} active of {count}")
    results["collection"] = {"seconds": seconds, "rate": count / seconds}

    create_job(client, "ingest-helper", "ingest")
    tasks = task_models("h", count)
    with (
        profiler.record("ingest-helper", service=service.pid),
        monitor.phase("ingest: create_tasks helper", service=service.pid) as stats,
    ):
        started = time.perf_counter()
        result = client.create_tasks("ingest-helper", tasks, max_concurrency=threads)
        seconds = time.perf_counter() - started
    stats.wall, stats.tasks = seconds, count
    active = client.get_job_task_counts("ingest-helper").task_counts.active
    failed = check_added(result)
    if failed or active != count:
        raise RuntimeError(f"ingest-helper: {failed} failed adds, {active} active of {count}")
    results["helper"] = {"seconds": seconds, "rate": count / seconds}

    if procs > 1:
        job_id = f"ingest-procs{procs}"
        create_job(client, job_id, "ingest")
        me = [sys.executable, str(Path(__file__).resolve())]
        share = count // procs
        children = [
            subprocess.Popen(
                [*me, "--ingest-child", service.url, job_id, f"p{n}-", str(share), str(threads)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(procs)
        ]
        for child in children:  # each has built its task models
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("an ingest client did not start")
        label = f"ingest: create_task_collection, {procs} client processes"
        with (
            profiler.record(f"ingest-procs{procs}", service=service.pid),
            monitor.phase(label, service=service.pid) as stats,
        ):
            started = time.perf_counter()
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            reports = [json.loads(child.communicate(timeout=600)[0].strip().splitlines()[-1]) for child in children]
            seconds = time.perf_counter() - started
        stats.wall, stats.tasks = seconds, share * procs
        stats.cpu["client"] = sum(report["cpu"] for report in reports)
        failed = sum(report["failed"] for report in reports)
        active = client.get_job_task_counts(job_id).task_counts.active
        if failed or active != share * procs:
            raise RuntimeError(f"{job_id}: {failed} failed adds, {active} active of {share * procs}")
        results["procs"] = {"seconds": seconds, "rate": share * procs / seconds, "procs": procs, "count": share * procs}
    return results


def ingest_child(url: str, job_id: str, prefix: str, count: int, threads: int) -> None:
    """One of several client processes adding task collections: ready, wait for go, add, report."""
    client = make_client(url)
    client.get_job(job_id)  # a warm connection
    groups = groups_of(task_models(prefix, count))
    print("ready", flush=True)
    sys.stdin.readline()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        failed = sum(pool.map(lambda g: check_added(client.create_task_collection(job_id, g)), groups))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(json.dumps({"failed": failed, "seconds": seconds, "cpu": cpu}), flush=True)


# --- phase 2: end to end on one node ------------------------------------------------------------


def bench_end_to_end(
    client: Any, pool_id: str, job_id: str, count: int, threads: int, timeout: float
) -> dict[str, Any]:
    create_job(client, job_id, pool_id)
    groups = groups_of(task_models("e", count))
    polls = 0
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        futures = [pool.submit(client.create_task_collection, job_id, group) for group in groups]
        added_at = None
        while True:
            time.sleep(0.05)
            counts = client.get_job_task_counts(job_id).task_counts
            polls += 1
            if added_at is None and all(f.done() for f in futures):
                added_at = time.perf_counter() - started
            if counts.completed >= count:
                break
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{job_id}: only {counts.completed} of {count} completed after {timeout} s")
        seconds = time.perf_counter() - started
        failed_adds = sum(check_added(f.result()) for f in futures)
    if failed_adds or counts.failed:
        raise RuntimeError(f"{job_id}: {failed_adds} failed adds, {counts.failed} failed tasks")
    return {"seconds": seconds, "rate": count / seconds, "adds_done": added_at or seconds, "polls": polls}


def bench_many_jobs(
    client: Any, pool_id: str, prefix: str, jobs: int, per_job: int, threads: int, timeout: float
) -> dict[str, Any]:
    """`jobs` jobs of `per_job` `/bin/true` tasks each on one pool, added at once: until all completed."""
    job_ids = [f"{prefix}-{n}" for n in range(jobs)]
    for job_id in job_ids:
        create_job(client, job_id, pool_id)
    groups = [(job_id, group) for job_id in job_ids for group in groups_of(task_models("m", per_job))]
    count = jobs * per_job
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        futures = [pool.submit(client.create_task_collection, job_id, group) for job_id, group in groups]
        while True:
            time.sleep(0.25)  # a poll is one task-counts call per job
            completed = sum(client.get_job_task_counts(job_id).task_counts.completed for job_id in job_ids)
            if completed >= count:
                break
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{prefix}: only {completed} of {count} completed after {timeout} s")
        seconds = time.perf_counter() - started
        failed_adds = sum(check_added(f.result()) for f in futures)
    if failed_adds:
        raise RuntimeError(f"{prefix}: {failed_adds} failed adds")
    return {"seconds": seconds, "rate": count / seconds}


def bench_idle_nodes(client: Any, service: Service, pool_id: str, count: int, timeout: float) -> dict[str, Any]:
    """A pool of `count` local nodes: seconds from its creation until all are idle, and the idle agents' RSS."""
    started = time.perf_counter()
    create_pool(client, pool_id, nodes=count, slots=1)

    def all_idle() -> list[str] | None:
        idle = [node.id for node in client.list_nodes(pool_id) if node.state == "idle"]
        return idle if len(idle) >= count else None

    node_ids = wait_for(all_idle, timeout, f"{count} idle nodes", interval=0.1)
    seconds = time.perf_counter() - started
    time.sleep(1.0)  # settled: what an idle agent holds
    agents = service.agent_pids()
    rss = [_rss(agents[node_id]) / MIB for node_id in node_ids if node_id in agents]
    client.begin_delete_pool(pool_id).result()
    return {"seconds": seconds, "nodes": count, "rss_mean": sum(rss) / len(rss), "rss_max": max(rss)}


# --- phase 3: HyperQueue ------------------------------------------------------------------------


def hq_cluster(server_dir: str, cores: int) -> None:
    """A HyperQueue server and one worker (Rust threads in this lean process) until stdin closes."""
    from hyperqueue import LocalCluster
    from hyperqueue.cluster import WorkerConfig

    cluster = LocalCluster(server_dir=server_dir)
    cluster.start_worker(WorkerConfig(cores=cores))
    Path(server_dir, "ready").touch()
    sys.stdin.read()
    cluster.stop()


def hq_client(server_dir: str, count: int, workdir: Path, out: Path) -> None:
    """Submit `count` /bin/true tasks as one job and wait for them; the timings go to `out`."""
    from hyperqueue import Client, Job

    client = Client(server_dir)
    warm = Job(default_workdir=workdir / "warm")
    warm.program(["/bin/true"])
    client.wait_for_jobs([client.submit(warm)])  # the worker is connected and has run a task
    job = Job(default_workdir=workdir / "run")
    for _ in range(count):
        job.program(["/bin/true"])
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    submitted = client.submit(job)
    submit_seconds = time.perf_counter() - started
    ok = client.wait_for_jobs([submitted], raise_on_error=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    out.write_text(
        json.dumps(
            {
                "ok": ok,
                "seconds": seconds,
                "rate": count / seconds,
                "submit_seconds": submit_seconds,
                "client_cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            }
        )
    )


def bench_hq(count: int, cores: int, monitor: Monitor, phase: str) -> dict[str, Any]:
    """HyperQueue as it is deployed: server + worker in one process, the client in another.

    Everything HyperQueue writes (its server and worker directories, the tasks' outputs, its log, and
    anything it puts in its current directory) goes to a temporary directory, the working directory of
    both processes, removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="batchyard-bench-hq-") as temp:
        return _bench_hq_in(Path(temp), count, cores, monitor, phase)


def _bench_hq_in(workdir: Path, count: int, cores: int, monitor: Monitor, phase: str) -> dict[str, Any]:
    server_dir = workdir / "server"
    out = workdir / "result.json"
    env = dict(os.environ, TQDM_DISABLE="1")  # no progress bar in the client
    me = [sys.executable, str(Path(__file__).resolve())]
    with open(workdir / "hq.log", "wb") as log:
        cluster = subprocess.Popen(
            [*me, "--hq-cluster", str(server_dir), str(cores)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
        )
        try:
            wait_for(lambda: (server_dir / "ready").exists() or cluster.poll() is not None, 60, "HyperQueue")
            if cluster.poll() is not None:
                raise RuntimeError(f"HyperQueue did not start:\n{(workdir / 'hq.log').read_text()[-3000:]}")
            with monitor.phase(phase, hq=cluster.pid) as stats:
                code = subprocess.run(
                    [*me, "--hq-client", str(server_dir), str(count), str(workdir), str(out)],
                    env=env,
                    cwd=workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=900,
                ).returncode
        finally:
            assert cluster.stdin is not None
            cluster.stdin.close()
            try:
                cluster.wait(30)
            except subprocess.TimeoutExpired:
                cluster.kill()
                cluster.wait()
    if code != 0 or not out.exists():
        raise RuntimeError(f"HyperQueue run failed ({code}):\n{(workdir / 'hq.log').read_text()[-3000:]}")
    result = json.loads(out.read_text())
    if not result["ok"]:
        raise RuntimeError("HyperQueue reported failed tasks")
    stats.wall, stats.tasks = result["seconds"], count
    stats.cpu["client"] = result["client_cpu"]
    return result


# --- phase 4: latency ---------------------------------------------------------------------------


def bench_latency(
    client: Any, pool_id: str, job_id: str, samples: int, warmup: int, poll: float, gap: float
) -> dict[str, list[float]]:
    from azure.batch import models as m

    create_job(client, job_id, pool_id)
    series: dict[str, list[float]] = collections.defaultdict(list)
    for i in range(warmup + samples):
        task_id = f"lat{i:04d}"
        time.sleep(gap)  # the node is idle again
        spec = m.BatchTaskCreateOptions(id=task_id, command_line="/bin/date +%s.%N")
        sent = time.time()
        client.create_task(job_id, spec)
        returned = time.time()
        first_seen_running = None
        while True:
            task = client.get_task(job_id, task_id)
            if task.state in ("running", "completed") and first_seen_running is None:
                first_seen_running = time.time()
            if task.state == "completed":
                seen_completed = time.time()
                break
            if time.time() - sent > 30:
                raise RuntimeError(f"latency task {task_id} did not complete")
            time.sleep(poll)
        if task.execution_info.exit_code != 0:
            raise RuntimeError(f"latency task {task_id} failed: {task.execution_info}")
        stdout = b"".join(client.download_task_file(job_id, task_id, "stdout.txt")).decode().strip()
        if i < warmup:
            continue
        series["add call returned"].append(returned - sent)
        series["service marked running"].append(task.previous_state_transition_time.timestamp() - sent)
        series["process started"].append(float(stdout) - sent)
        series["service marked completed"].append(task.state_transition_time.timestamp() - sent)
        series["client saw running or completed (poll)"].append(first_seen_running - sent)
        series["client saw completed (poll)"].append(seen_completed - sent)
    return series


def ceiling_child(seconds: float) -> None:
    """One loop of the spawn ceiling: /bin/true started with posix_spawn and reaped, until `seconds` pass."""
    started, count = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        pid = os.posix_spawn("/bin/true", ["/bin/true"], {})
        os.waitpid(pid, 0)
        count += 1
    print(count / (time.perf_counter() - started))


def spawn_ceiling(seconds: float) -> float:
    """Processes per second the machine starts and reaps with one posix_spawn + waitpid loop per core."""
    loops = [
        subprocess.Popen([sys.executable, __file__, "--ceiling-child", str(seconds)], stdout=subprocess.PIPE, text=True)
        for _ in range(NPROC)
    ]
    return sum(float(loop.communicate()[0]) for loop in loops)


def queue_behind(client: Any, pool_id: str, jobs: int, per_job: int, threads: int) -> None:
    """`jobs` active jobs of `per_job` queued tasks each, on a pool of no nodes: work the scheduler sees
    in every round but cannot place."""
    create_pool(client, pool_id, nodes=0, slots=1)
    job_ids = [f"{pool_id}-{n}" for n in range(jobs)]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda job_id: create_job(client, job_id, pool_id), job_ids))
        added = pool.map(
            lambda job_id: check_added(client.create_task_collection(job_id, groups_of(task_models("q", per_job))[0])),
            job_ids,
        )
        if sum(added):
            raise RuntimeError("adding the queued tasks failed")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1] if 0 < q < 100 else ordered[-1]


# --- report -------------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    versions = {}
    for dist in ("azure-batch", "hyperqueue"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:
            versions[dist] = "not installed"
    return {
        "nproc": str(NPROC),
        "cpu": cpu,
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "batchyard": rev,
        **versions,
    }


def fmt_rate(value: float | None) -> str:
    return f"{value:,.0f} tasks/s" if value is not None else "n/a"


def yes_no(ok: bool) -> str:
    return "**yes**" if ok else "**NO**"


def median_of(runs: list[dict[str, Any]], key: str = "rate") -> float:
    return float(statistics.median(run[key] for run in runs))


def render(
    args: argparse.Namespace,
    command: str,
    machine: dict[str, str],
    load: tuple[str, str],
    ingest: dict[str, Any] | None,
    e2e: dict[int, list[dict[str, Any]]],
    hq: dict[int, list[dict[str, Any]]],
    latency: dict[str, list[float]] | None,
    phases: list[PhaseStats],
    profiled: bool,
    ceiling: float | None = None,
    configurations: dict[str, dict[str, Any]] | None = None,
    idle: dict[str, Any] | None = None,
    queued: dict[str, list[float]] | None = None,
) -> str:
    out: list[str] = []
    out.append("# batchyard core benchmarks\n")
    out.append("Reproduce (from the repository root, after `.venv/bin/pip install -e '.[bench]'`):\n")
    out.append(f"```sh\n{command}\n```\n")
    out.append(
        "What each row means, and how it is measured: see `benchmarks/README.md` and the docstring of "
        "`benchmarks/bench_core.py`. All figures come from one run, measured side by side on the same "
        "machine (which may be shared with other work; the load average is recorded below).\n"
    )
    if profiled:
        out.append("**This run was profiled with py-spy: its batchyard figures are perturbed.**\n")
    out.append(
        f"Machine: nproc={machine['nproc']} ({machine['cpu']}), {machine['memory']}, "
        f"Python {machine['python']}, {machine['os']}; load average at start {load[0]}, at end {load[1]}.  "
    )
    out.append(
        f"Versions: batchyard {machine['batchyard']}, azure-batch {machine['azure-batch']}, "
        f"hyperqueue {machine['hyperqueue']}.\n"
    )

    out.append("| measurement | result | floor | met |")
    out.append("|---|---|---|---|")
    if ingest:
        n = f"{args.tasks:,}"
        rate = ingest["collection"]["rate"]
        out.append(
            f"| add {n} tasks: `create_task_collection` (100/call, {args.threads} threads), pool of 0 nodes "
            f"| {fmt_rate(rate)} ({ingest['collection']['seconds']:.1f} s) | ≥ {FLOOR_INGEST:,.0f} tasks/s "
            f"| {yes_no(rate >= FLOOR_INGEST)} |"
        )
        if "procs" in ingest:
            run = ingest["procs"]
            out.append(
                f"| add {run['count']:,} tasks: `create_task_collection` from {run['procs']} client processes "
                f"× {args.threads} threads (shows the service without the client's GIL) "
                f"| {fmt_rate(run['rate'])} ({run['seconds']:.1f} s) | | |"
            )
        rate = ingest["helper"]["rate"]
        out.append(
            f"| add {n} tasks: SDK `create_tasks(max_concurrency={args.threads})` "
            f"| {fmt_rate(rate)} ({ingest['helper']['seconds']:.1f} s) | ≥ {FLOOR_INGEST:,.0f} tasks/s "
            f"| {yes_no(rate >= FLOOR_INGEST)} |"
        )
    m = f"{args.e2e_tasks:,}"
    rounds = f", median of {args.rounds}" if args.rounds > 1 else ""
    for slots, runs in e2e.items():
        secs = median_of(runs, "seconds")
        out.append(
            f"| {m} `/bin/true` end to end, batchyard, 1 node × {slots} slots{rounds} "
            f"| {fmt_rate(median_of(runs))} ({secs:.1f} s) | | |"
        )
    for cores, runs in hq.items():
        secs = median_of(runs, "seconds")
        out.append(
            f"| {m} `/bin/true` end to end, HyperQueue, 1 worker × {cores} cores{rounds} "
            f"| {fmt_rate(median_of(runs))} ({secs:.1f} s) | | |"
        )
    if e2e and hq:
        best_by, by_slots = max((median_of(runs), slots) for slots, runs in e2e.items())
        best_hq, hq_cores = max((median_of(runs), cores) for cores, runs in hq.items())
        ratio = best_by / best_hq
        out.append(
            f"| ratio batchyard / HyperQueue, best vs best ({by_slots} slots vs {hq_cores} cores) "
            f"| {ratio:.2f} | ≥ {FLOOR_RATIO} | {yes_no(ratio >= FLOOR_RATIO)} |"
        )
        for slots in e2e:
            if slots in hq:
                ratio = median_of(e2e[slots]) / median_of(hq[slots])
                out.append(f"| ratio batchyard / HyperQueue at {slots} slots = {slots} cores | {ratio:.2f} | | |")
    for label, run in (configurations or {}).items():
        out.append(f"| {label} | {fmt_rate(run['rate'])} ({run['seconds']:.1f} s) | | |")
    if idle:
        out.append(
            f"| {idle['nodes']} local nodes: pool created → all idle | {idle['seconds']:.1f} s | ≤ 3 s "
            f"| {yes_no(idle['seconds'] <= 3.0)} |"
        )
        out.append(
            f"| {idle['nodes']} idle agents' RSS, mean / max | {idle['rss_mean']:.0f} / {idle['rss_max']:.0f} MiB "
            f"| ≤ 25 MiB (aim) | {yes_no(idle['rss_max'] <= 25)} |"
        )
    if ceiling:
        out.append(
            f"| the machine's spawn ceiling: {NPROC} parallel `posix_spawn` + `waitpid` loops of `/bin/true` "
            f"| {fmt_rate(ceiling)} | | |"
        )
        shares = {f"1 node × {slots} slots": median_of(runs) / ceiling for slots, runs in e2e.items()}
        shares |= {label: run["rate"] / ceiling for label, run in (configurations or {}).items()}
        for label, share in shares.items():
            out.append(
                f"| batchyard end to end / the spawn ceiling, {label} | {share:.2f} | ≥ {FLOOR_CEILING} "
                f"| {yes_no(share >= FLOOR_CEILING)} |"
            )
    for stats in phases:
        if stats.name.startswith("e2e: batchyard") and stats.tasks:
            spent = 1e6 * (stats.cpu.get("service", 0.0) + stats.cpu.get("agent", 0.0)) / stats.tasks
            out.append(
                f"| service + agent CPU per task, {stats.name.removeprefix('e2e: batchyard, ')} | {spent:,.0f} µs "
                f"| ≤ {FLOOR_CPU_PER_TASK_US:.0f} µs | {yes_no(spent <= FLOOR_CPU_PER_TASK_US)} |"
            )
    where = f"with {args.queued_jobs * args.queued_tasks:,} tasks queued in {args.queued_jobs:,} other jobs"
    for series, situation, limit in ((latency, "", FLOOR_STARTED_MS), (queued, where, FLOOR_STARTED_QUEUED_MS)):
        if not series:
            continue
        n_lat = len(next(iter(series.values())))
        for name, values in series.items():
            ms = [v * 1000 for v in values]
            text = f"p50 {percentile(ms, 50):.1f} / p90 {percentile(ms, 90):.1f} / max {max(ms):.1f} ms"
            floor, met = "", ""
            if name == "process started":
                floor = f"p50 ≤ {limit:.0f} ms"
                met = yes_no(percentile(ms, 50) <= limit)
            label = f"single task on an idle node{', ' + situation if situation else ''}, add → {name}"
            out.append(f"| {label} ({n_lat} samples) | {text} | {floor} | {met} |")

    out.append(
        "\nResources per phase (RSS of the service and of the node's agent sampled every 50 ms with psutil; "
        "HyperQueue's server and worker share one process (the HQ columns), its client runs in another; "
        "tasks CPU = the reaped `/bin/true` processes; client = this script, which builds and serialises "
        "the requests):\n"
    )
    out.append(
        "| phase | wall s | service peak RSS MiB | agent peak RSS MiB | HQ peak RSS MiB "
        "| service CPU s | agent CPU s | tasks CPU s | HQ CPU s | client CPU s | per task: service + agent "
        "(or HQ) CPU |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")

    def mib(stats: PhaseStats, key: str) -> str:
        return f"{stats.peak_rss[key] / MIB:.0f}" if key in stats.peak_rss else ""

    def cpu(stats: PhaseStats, key: str) -> str:
        return f"{stats.cpu[key]:.2f}" if key in stats.cpu else ""

    def per_task(stats: PhaseStats) -> str:
        spent = sum(stats.cpu.get(key, 0.0) for key in ("service", "agent", "hq"))
        return f"{1e6 * spent / stats.tasks:,.0f} µs" if stats.tasks else ""

    for stats in phases:
        out.append(
            f"| {stats.name} | {stats.wall:.1f} | {mib(stats, 'service')} | {mib(stats, 'agent')} "
            f"| {mib(stats, 'hq')} | {cpu(stats, 'service')} | {cpu(stats, 'agent')} | {cpu(stats, 'tasks')} "
            f"| {cpu(stats, 'hq')} | {cpu(stats, 'client')} | {per_task(stats)} |"
        )
    return "\n".join(out) + "\n"


# --- main ---------------------------------------------------------------------------------------


def parse_slots(text: str) -> list[int]:
    """'1x,2x,8' -> [nproc, 2*nproc, 8]."""
    values: list[int] = []
    for token in text.split(","):
        token = token.strip().lower()
        value = int(token[:-1]) * NPROC if token.endswith("x") else int(token)
        if value < 1:
            raise argparse.ArgumentTypeError(f"bad slot count {token!r}")
        if value not in values:
            values.append(value)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks added in the ingest phase (0 skips it)")
    parser.add_argument("--threads", type=int, default=8, help="client threads adding task collections")
    parser.add_argument(
        "--ingest-procs",
        type=int,
        default=2,
        help="also add the tasks from this many client processes (each with --threads; <2 skips)",
    )
    parser.add_argument("--e2e-tasks", type=int, default=5000, help="/bin/true tasks end to end (0 skips)")
    parser.add_argument(
        "--slots",
        type=parse_slots,
        default=parse_slots("1x,2x"),
        help="task slots of the node (and HyperQueue worker cores); Nx = N × nproc",
    )
    parser.add_argument("--rounds", type=int, default=2, help="end-to-end rounds per configuration (median)")
    parser.add_argument("--e2e-timeout", type=float, default=300.0)
    parser.add_argument("--skip-hq", action="store_true", help="do not run HyperQueue")
    parser.add_argument("--latency-samples", type=int, default=50, help="single-task latency samples (0 skips)")
    parser.add_argument("--latency-poll", type=float, default=0.01, help="get_task polling interval, s")
    parser.add_argument(
        "--results",
        type=Path,
        help=f"markdown output (default {DEFAULT_RESULTS.relative_to(ROOT)}; with --py-spy: DIR/RESULTS.md)",
    )
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    parser.add_argument(
        "--ceiling-seconds", type=float, default=3.0, help="seconds of the spawn-ceiling loops (0 skips them)"
    )
    parser.add_argument("--ceiling-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--multi-nodes", type=int, default=4, help="end to end on N nodes × 2 slots (0 skips)")
    parser.add_argument("--many-jobs", type=int, default=20, help="end to end in N jobs on one node (0 skips)")
    parser.add_argument("--job-tasks", type=int, default=1000, help="tasks in each of --many-jobs jobs")
    parser.add_argument("--idle-nodes", type=int, default=50, help="a pool of N nodes until idle (0 skips)")
    parser.add_argument(
        "--queued-jobs", type=int, default=1000, help="latency again with tasks queued in N other jobs (0 skips)"
    )
    parser.add_argument("--queued-tasks", type=int, default=10, help="tasks queued in each of --queued-jobs")
    parser.add_argument("--work-dir", type=Path, help="where the services keep data (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--py-spy", type=Path, metavar="DIR", help="profile the service and agents into DIR")
    parser.add_argument("--py-spy-rate", type=int, default=100)
    parser.add_argument("--hq-cluster", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--hq-client", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--ingest-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.hq_cluster:
        hq_cluster(args.hq_cluster[0], int(args.hq_cluster[1]))
        return 0
    if args.hq_client:
        server_dir, count, workdir, out = args.hq_client
        hq_client(server_dir, int(count), Path(workdir), Path(out))
        return 0
    if args.ceiling_child is not None:
        ceiling_child(args.ceiling_child)
        return 0
    if args.ingest_child:
        url, job_id, prefix, count, threads = args.ingest_child
        ingest_child(url, job_id, prefix, int(count), int(threads))
        return 0

    command = shlex.join([".venv/bin/python", "benchmarks/bench_core.py", *(sys.argv[1:] if argv is None else argv)])
    if not args.skip_hq and args.e2e_tasks:
        try:
            import hyperqueue  # noqa: F401
        except ImportError:
            raise SystemExit("hyperqueue is missing: .venv/bin/pip install -e '.[bench]' (or pass --skip-hq)") from None

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="batchyard-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o711)  # task users (a root service) pass through to the node roots
    machine = machine_info()
    load_start = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    monitor = Monitor()
    profiler = Profiler(args.py_spy, args.py_spy_rate)
    ingest: dict[str, Any] | None = None
    e2e: dict[int, list[dict[str, Any]]] = {}
    hq: dict[int, list[dict[str, Any]]] = {}
    latency: dict[str, list[float]] | None = None
    configurations: dict[str, dict[str, Any]] = {}  # more end-to-end shapes: label -> run
    idle: dict[str, Any] | None = None
    queued: dict[str, list[float]] | None = None
    print(f"batchyard bench: nproc={NPROC}, work dir {work}", flush=True)
    try:
        if args.tasks:
            service = start_service(work / "svc-ingest")
            try:
                client = make_client(service.url)
                ingest = bench_ingest(client, args.tasks, args.threads, args.ingest_procs, monitor, profiler, service)
                print(
                    f"ingest: collection {fmt_rate(ingest['collection']['rate'])}, "
                    f"helper {fmt_rate(ingest['helper']['rate'])}",
                    flush=True,
                )
            finally:
                service.stop()

        if args.e2e_tasks or args.latency_samples:
            # room for the queued jobs beside the others (the default quota of active jobs is Azure's 300)
            job_quota = 300 + args.queued_jobs + args.many_jobs
            service = start_service(work / "svc-run", "--job-quota", str(job_quota))
            try:
                client = make_client(service.url)
                for slots in args.slots:
                    create_pool(client, f"run-{slots}", nodes=1, slots=slots)
                watch = {}  # slots -> the processes to watch: the service and that pool's agent
                for slots in args.slots:
                    node_id = wait_idle_node(client, f"run-{slots}")
                    watch[slots] = {"service": service.pid, "agent": service.agent_pids().get(node_id, 0)}
                for round_no in range(args.rounds if args.e2e_tasks else 0):
                    for slots in args.slots:
                        suffix = f", round {round_no + 1}" if args.rounds > 1 else ""
                        label = f"e2e: batchyard, {slots} slots{suffix}"
                        with (
                            profiler.record(f"e2e-{slots}-r{round_no}", **watch[slots]),
                            monitor.phase(label, **watch[slots]) as stats,
                        ):
                            run = bench_end_to_end(
                                client,
                                f"run-{slots}",
                                f"e2e-{slots}-{round_no}",
                                args.e2e_tasks,
                                args.threads,
                                args.e2e_timeout,
                            )
                        stats.wall, stats.tasks = run["seconds"], args.e2e_tasks
                        e2e.setdefault(slots, []).append(run)
                        print(
                            f"{label}: {fmt_rate(run['rate'])} ({run['seconds']:.1f} s, adds done at "
                            f"{run['adds_done']:.1f} s)",
                            flush=True,
                        )
                        if not args.skip_hq:
                            label = f"e2e: HyperQueue, {slots} cores{suffix}"
                            run = bench_hq(args.e2e_tasks, slots, monitor, label)
                            hq.setdefault(slots, []).append(run)
                            print(f"{label}: {fmt_rate(run['rate'])} ({run['seconds']:.1f} s)", flush=True)
                if args.latency_samples:
                    pool_id = f"run-{args.slots[0]}"
                    with (
                        profiler.record("latency", **watch[args.slots[0]]),
                        monitor.phase("latency: single tasks", **watch[args.slots[0]]) as stats,
                    ):
                        latency = bench_latency(
                            client, pool_id, "latency", args.latency_samples, 3, args.latency_poll, 0.1
                        )
                    for name, values in latency.items():
                        ms = [v * 1000 for v in values]
                        print(
                            f"latency add → {name}: p50 {percentile(ms, 50):.1f} ms, "
                            f"p90 {percentile(ms, 90):.1f} ms, max {max(ms):.1f} ms",
                            flush=True,
                        )
                if args.latency_samples and args.queued_jobs:
                    queue_behind(client, "queued", args.queued_jobs, args.queued_tasks, args.threads)
                    with monitor.phase("latency: single tasks, tasks queued elsewhere", **watch[args.slots[0]]):
                        queued = bench_latency(
                            client,
                            f"run-{args.slots[0]}",
                            "latency-queued",
                            args.latency_samples,
                            3,
                            args.latency_poll,
                            0.1,
                        )
                    ms = [v * 1000 for v in queued["process started"]]
                    print(f"latency add → process started, tasks queued: p50 {percentile(ms, 50):.1f} ms", flush=True)
                if args.e2e_tasks and args.many_jobs:
                    slots = args.slots[-1]
                    label = f"{args.many_jobs} jobs × {args.job_tasks:,} `/bin/true`, 1 node × {slots} slots"
                    with monitor.phase(f"e2e: batchyard, {label}", **watch[slots]) as stats:
                        run = bench_many_jobs(
                            client,
                            f"run-{slots}",
                            "many",
                            args.many_jobs,
                            args.job_tasks,
                            args.threads,
                            args.e2e_timeout,
                        )
                    stats.wall, stats.tasks = run["seconds"], args.many_jobs * args.job_tasks
                    configurations[label] = run
                    print(f"{label}: {fmt_rate(run['rate'])} ({run['seconds']:.1f} s)", flush=True)
                if args.e2e_tasks and args.multi_nodes:
                    nodes = args.multi_nodes
                    label = f"{args.e2e_tasks:,} `/bin/true`, {nodes} nodes × 2 slots"
                    create_pool(client, "multi", nodes=nodes, slots=2)
                    wait_for(lambda: idle_nodes_of(client, "multi", nodes), 120, f"{nodes} idle nodes", interval=0.2)
                    agents = service.agent_pids()
                    pids = [agents[node.id] for node in client.list_nodes("multi") if node.id in agents]
                    with monitor.phase(f"e2e: batchyard, {label}", service=service.pid, agent=pids) as stats:
                        run = bench_end_to_end(
                            client, "multi", "multi-job", args.e2e_tasks, args.threads, args.e2e_timeout
                        )
                    stats.wall, stats.tasks = run["seconds"], args.e2e_tasks
                    configurations[label] = run
                    client.begin_delete_pool("multi").result()
                    print(f"{label}: {fmt_rate(run['rate'])} ({run['seconds']:.1f} s)", flush=True)
                if args.idle_nodes:
                    with monitor.phase(f"{args.idle_nodes} nodes until idle", service=service.pid):
                        idle = bench_idle_nodes(client, service, "idle", args.idle_nodes, 300)
                    print(
                        f"{args.idle_nodes} nodes idle in {idle['seconds']:.1f} s, agents' RSS mean "
                        f"{idle['rss_mean']:.0f} MiB",
                        flush=True,
                    )
            finally:
                service.stop()
    finally:
        monitor.close()
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    ceiling = spawn_ceiling(args.ceiling_seconds) if args.ceiling_seconds and args.e2e_tasks else None
    if ceiling:
        print(f"spawn ceiling: {fmt_rate(ceiling)}", flush=True)
    load_end = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    report = render(
        args,
        command,
        machine,
        (load_start, load_end),
        ingest,
        e2e,
        hq,
        latency,
        monitor.phases,
        profiled=args.py_spy is not None,
        ceiling=ceiling,
        configurations=configurations,
        idle=idle,
        queued=queued,
    )
    print()
    print(report)
    if args.py_spy is not None:
        summary = profiler.summary()
        (args.py_spy / "summary.md").write_text(summary + "\n")
        print(summary)
    if not args.no_write:
        target = args.results or (args.py_spy / "RESULTS.md" if args.py_spy is not None else DEFAULT_RESULTS)
        # The other benchmarks' sections ("## ..." after this report) stay as they are.
        previous = target.read_text() if target.exists() else ""
        others = previous[previous.index("\n## ") :] if "\n## " in previous else ""
        target.write_text(report.rstrip("\n") + "\n" + others)
        print(f"written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
