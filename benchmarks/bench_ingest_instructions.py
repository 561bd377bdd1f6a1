"""The service's cost of adding tasks, counted in CPU instructions: repeatable on a shared, noisy machine.

The ingest path (HTTP request in, Shared Key check, body parsed and validated, tasks stored, answer out)
runs in this process through the ASGI app, without sockets: N `addtaskcollection` requests of 100 tasks to
a job whose pool has no nodes. Under valgrind's callgrind the instructions of two runs (`--small` and
`--large` requests) are counted; their difference divided by the extra tasks is the instructions per added
task, with the start-up cost cancelled out. Instruction counts do not move with the machine's load, so
two versions (each with its own virtual environment, `--python`) can be compared in any order.

    apt-get install valgrind
    .venv/bin/python benchmarks/bench_ingest_instructions.py \\
        --python /path/to/before/.venv/bin/python --python .venv/bin/python

Without valgrind (`--cpu`), the same runs report CPU µs per task (noisy: compare medians of many runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from callgrind import count_instructions  # benchmarks/callgrind.py (the script's directory is on the path)

TASKS_PER_REQUEST = 100
API_VERSION = "2025-06-01.21.0"


# --- the child: one in-process run ---------------------------------------------------------------


async def ingest(requests: int) -> dict[str, float]:
    import orjson

    from batchyard.service.app import build_app
    from batchyard.service.auth import format_ocp_date, sign_request
    from batchyard.service.config import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    data_dir.chmod(0o711)
    settings = Settings(data_dir=data_dir)
    app = build_app(settings)
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await lifespan_in.put({"type": "lifespan.startup"})
    life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan_in.get, lifespan_out.put))
    started = await lifespan_out.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the service did not start: {started}")

    async def call(method: str, path: str, body: Any) -> int:
        url = f"{settings.base_url}{path}?api-version={API_VERSION}"
        data = orjson.dumps(body)
        headers = {
            "ocp-date": format_ocp_date(),
            "content-type": "application/json; odata=minimalmetadata; charset=utf-8",
            "content-length": str(len(data)),
        }
        headers["authorization"] = sign_request(settings.account_name, settings.account_keys[0], method, url, headers)
        parts = urlsplit(url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", settings.port),
        }
        messages = [{"type": "http.request", "body": data, "more_body": False}]
        status = 0

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)  # a real client would not disconnect before the answer
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    image = {"publisher": "canonical", "offer": "ubuntu", "sku": "22_04-lts"}
    pool = {
        "id": "ingest",
        "vmSize": "standard_d2s_v3",
        "targetDedicatedNodes": 0,
        "virtualMachineConfiguration": {"imageReference": image, "nodeAgentSKUId": "batch.node.ubuntu 22.04"},
    }
    job = {"id": "j", "poolInfo": {"poolId": "ingest"}}
    if await call("POST", "/pools", pool) != 201 or await call("POST", "/jobs", job) != 201:
        raise RuntimeError("could not create the pool and job")
    bodies = [
        {"value": [{"id": f"t{n}-{i}", "commandLine": "/bin/true"} for i in range(TASKS_PER_REQUEST)]}
        for n in range(requests + 1)
    ]
    if await call("POST", "/jobs/j/addtaskcollection", bodies.pop()) != 200:  # warm: first-use costs
        raise RuntimeError("adding tasks failed")
    cpu, wall = time.process_time(), time.perf_counter()
    for body in bodies:
        if await call("POST", "/jobs/j/addtaskcollection", body) != 200:
            raise RuntimeError("adding tasks failed")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await life
    shutil.rmtree(data_dir, ignore_errors=True)
    tasks = requests * TASKS_PER_REQUEST
    return {"cpu_us_per_task": cpu / tasks * 1e6, "wall_us_per_task": wall / tasks * 1e6}


# --- the parent: runs children under callgrind (or not) and compares ---------------------------------


def instructions(python: str, requests: int) -> int:
    """Instructions callgrind counts for a child run of `requests` requests."""
    return count_instructions(python, __file__, "--child", str(requests))


def cpu_per_task(python: str, requests: int) -> float:
    done = subprocess.run(
        [python, __file__, "--child", str(requests)], capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    if done.returncode != 0:
        raise RuntimeError(f"{python}: the run failed:\n{done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["cpu_us_per_task"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", action="append", help="a version's interpreter (repeatable; default: this one)")
    parser.add_argument("--small", type=int, default=10, help="requests in the run whose cost is subtracted")
    parser.add_argument("--large", type=int, default=40, help="requests in the measured run")
    parser.add_argument("--cpu", action="store_true", help="CPU time instead of instructions (no valgrind)")
    parser.add_argument("--repeats", type=int, default=5, help="with --cpu: runs per version, alternating")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(ingest(args.child))))
        return
    pythons = args.python or [sys.executable]
    extra_tasks = (args.large - args.small) * TASKS_PER_REQUEST
    if args.cpu:
        samples: dict[str, list[float]] = {python: [] for python in pythons}
        for _ in range(args.repeats):
            for python in pythons:
                samples[python].append(cpu_per_task(python, args.large))
        for python, values in samples.items():
            values.sort()
            print(f"{python}: CPU per added task, median of {len(values)}: {values[len(values) // 2]:.1f} µs")
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind), or use --cpu")
    first: int | None = None
    for python in pythons:
        per_task = (instructions(python, args.large) - instructions(python, args.small)) / extra_tasks
        ratio = "" if first is None else f"  ({per_task / first:.3f} × the first)"
        first = first or round(per_task)
        print(f"{python}: {per_task:,.0f} instructions per added task{ratio}")


if __name__ == "__main__":
    main()
