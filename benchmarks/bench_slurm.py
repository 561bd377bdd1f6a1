"""Slurm pools against local pools (not a timed test): how long a pool of 4 nodes takes to become idle,
and the end-to-end throughput of trivial tasks on it, for nodes that are Slurm jobs (a real single-host
Slurm cluster started as the tests start it, tests/slurm_cluster.py; root, slurm-wlm and munge needed)
and for the same pool on the local provider, through the official SDK.

    sudo .venv/bin/python benchmarks/bench_slurm.py [--nodes 4] [--tasks 2000] [--slots 2] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(1, str(BENCHMARKS.parent))

from bench_core import (  # noqa: E402 - the sibling benchmark module, found through sys.path
    bench_end_to_end,
    make_client,
    start_service,
    wait_for,
)

from batchyard.providers.slurm_job import SlurmOptions  # noqa: E402
from tests.slurm_cluster import SlurmCluster, unavailable_reason  # noqa: E402 - the tests' cluster


def create_pool(client: Any, pool_id: str, nodes: int, slots: int, provider: str) -> None:
    from azure.batch import models as m

    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",  # 2 cores: 4 nodes fill the test cluster's 8 CPUs
            virtual_machine_configuration=m.VirtualMachineConfiguration(
                image_reference=m.BatchVmImageReference(
                    publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 22.04",
            ),
            target_dedicated_nodes=nodes,
            task_slots_per_node=slots,
            metadata=[m.BatchMetadataItem(name="batchyard-provider", value=provider)],
        )
    )


def pool_to_idle(client: Any, pool_id: str, nodes: int, slots: int, provider: str) -> float:
    started = time.perf_counter()
    create_pool(client, pool_id, nodes, slots, provider)

    def all_idle() -> bool:
        states = [node.state for node in client.list_nodes(pool_id)]
        return len(states) == nodes and all(state == "idle" for state in states)

    wait_for(all_idle, 180, f"{nodes} idle nodes in {pool_id}", 0.05)
    return time.perf_counter() - started


def measure(client: Any, provider: str, args: argparse.Namespace) -> dict[str, float]:
    pool_id = f"{provider}-pool"
    idle = pool_to_idle(client, pool_id, args.nodes, args.slots, provider)
    run = bench_end_to_end(client, pool_id, f"{provider}-job", args.tasks, threads=8, timeout=600)
    client.begin_delete_pool(pool_id)
    return {"idle": idle, "rate": run["rate"], "seconds": run["seconds"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if reason := unavailable_reason():
        print(f"bench_slurm: {reason}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="batchyard-slurm-bench-") as work:
        Path(work).chmod(0o711)  # task users (a root service) pass through to the node roots
        cluster = SlurmCluster(Path(work) / "slurm")
        cluster.root.mkdir()
        cluster.start()
        os.environ.update(cluster.env)  # the service finds the cluster through SLURM_CONF
        try:
            service = start_service(Path(work) / "svc")
            try:
                client = make_client(service.url)
                for provider in ("slurm", "local"):
                    results[provider] = measure(client, provider, args)
            finally:
                service.stop()
        finally:
            cluster.stop()
            with contextlib.suppress(OSError):
                os.rmdir(SlurmOptions.node_dir)  # made by the nodes' jobs; each job removed its own root
    load = os.getloadavg()
    lines = [
        "## Slurm pools (`benchmarks/bench_slurm.py`)",
        "",
        f"Command: `sudo .venv/bin/python benchmarks/bench_slurm.py --nodes {args.nodes} --tasks {args.tasks} "
        f"--slots {args.slots}`. A single-host Slurm 22.05 cluster (Debian's slurm-wlm, as the tests start it) on "
        f"this machine: nproc={os.cpu_count()}, Python {platform.python_version()}; load average at the end "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}. Pools of {args.nodes} × standard_d2s_v3 nodes, "
        f"{args.slots} slots each; `/bin/true` tasks added in collections of 100.",
        "",
        "| provider | pool created → all nodes idle | tasks end to end |",
        "|---|---|---|",
        *(
            f"| {name} | {row['idle']:.1f} s | {row['rate']:.0f} tasks/s ({args.tasks} in {row['seconds']:.1f} s) |"
            for name, row in results.items()
        ),
        "",
    ]
    print("\n".join(lines))
    if args.write:
        with (BENCHMARKS / "RESULTS.md").open("a") as out:
            out.write("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
