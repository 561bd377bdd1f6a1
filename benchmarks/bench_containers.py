"""Container task overhead: a trivial task in a container versus the same task on the host.

One pool of one node without container configuration and one with it (the image prefetched), on one
service. Samples alternate between the two: add one task (`true`), wait until it is completed, and
record from the service's own timestamps add -> running (the task's previous state change) and
add -> completed, and what the client saw (add -> completed seen by polling every 20 ms). Needs root
and podman (scripts/test.sh installs it); the image is a root filesystem of Debian's busybox-static,
imported with `podman import` (nothing is pulled).

    .venv/bin/python benchmarks/bench_containers.py [--samples 40] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import make_client, start_service, wait_for, wait_idle_node  # noqa: E402 - sibling module

IMAGE = "localhost/batchyard-bench/busybox:1"


def import_image(work: Path) -> None:
    rootfs = work / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split():
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    with tarfile.open(work / "rootfs.tar", "w") as tar:
        tar.add(rootfs, arcname=".")
    subprocess.run(["podman", "import", "--change", "ENV=PATH=/bin", str(work / "rootfs.tar"), IMAGE], check=True)


def create_pool(client: Any, pool_id: str, containers: bool) -> None:
    from azure.batch import models as m

    vm = m.VirtualMachineConfiguration(
        image_reference=m.BatchVmImageReference(
            publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
        ),
        node_agent_sku_id="batch.node.ubuntu 22.04",
        container_configuration=m.BatchContainerConfiguration(type="dockerCompatible", container_image_names=[IMAGE])
        if containers
        else None,
    )
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=vm, target_dedicated_nodes=1
        )
    )


def sample(client: Any, job_id: str, task_id: str, containers: bool) -> tuple[float, float, float]:
    """(add -> running, add -> completed) by the service's clock, and add -> completed as the client saw it."""
    from azure.batch import models as m

    settings = m.BatchTaskContainerSettings(image_name=IMAGE) if containers else None
    started = time.monotonic()
    client.create_task(job_id, m.BatchTaskCreateOptions(id=task_id, command_line="true", container_settings=settings))
    task = wait_for(lambda: (t := client.get_task(job_id, task_id)).state == "completed" and t, 60, task_id, 0.02)
    seen = time.monotonic() - started
    if task.execution_info.exit_code != 0:
        raise RuntimeError(f"{task_id} failed: {task.execution_info.as_dict()}")
    running = (task.previous_state_transition_time - task.creation_time).total_seconds()
    done = (task.state_transition_time - task.creation_time).total_seconds()
    return running, done, seen


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"p50 {statistics.median(ordered) * 1000:.0f} / p90 {p90 * 1000:.0f} / max {ordered[-1] * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("podman") is None:
        sys.exit("needs root and podman (scripts/test.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="batchyard-bench-containers-"))
    work.chmod(0o755)  # task users pass through to their node roots
    import_image(work)
    service = start_service(work / "data")
    load_start = os.getloadavg()
    try:
        client = make_client(service.url)
        from azure.batch import models as m

        results: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        for containers in (False, True):
            pool_id = "containers" if containers else "host"
            create_pool(client, pool_id, containers)
            wait_idle_node(client, pool_id)
            client.create_job(m.BatchJobCreateOptions(id=f"job-{pool_id}", pool_info=m.BatchPoolInfo(pool_id=pool_id)))
        for index in range(args.samples):
            for containers in (False, True):
                pool_id = "containers" if containers else "host"
                results[containers].append(sample(client, f"job-{pool_id}", f"t{index}", containers))
    finally:
        service.process.terminate()
        service.process.wait(30)
        subprocess.run(["podman", "rmi", "--force", "--ignore", IMAGE], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()
    rows = []
    for containers in (False, True):
        kind = "container (podman, busybox image present)" if containers else "host"
        running, done, seen = zip(*results[containers], strict=True)
        rows.append(f"| {kind}, add → running (service) | {ms(list(running))} |")
        rows.append(f"| {kind}, add → completed (service) | {ms(list(done))} |")
        rows.append(f"| {kind}, add → client saw completed (poll 20 ms) | {ms(list(seen))} |")
    host_done = statistics.median(r[1] for r in results[False])
    container_done = statistics.median(r[1] for r in results[True])
    rows.append(
        f"| container overhead, add → completed, difference of medians | {(container_done - host_done) * 1000:.0f} ms |"
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    podman_version = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip()
    text = "\n".join(
        [
            "",
            "## Container task overhead (`benchmarks/bench_containers.py`)",
            "",
            "Reproduce (from the repository root, as root, with podman installed by `scripts/test.sh`):",
            "",
            "```sh",
            f".venv/bin/python benchmarks/bench_containers.py --samples {args.samples}",
            "```",
            "",
            f"Machine: nproc={os.cpu_count()}, Python {platform.python_version()}, Linux {platform.release()}; load "
            f"average at start {' '.join(f'{v:.2f}' for v in load_start)}, at end "
            f"{' '.join(f'{v:.2f}' for v in load_end)}.  ",
            f"Versions: batchyard {commit}, {podman_version} (runc). {args.samples} samples of each, alternating, "
            "one task at a time on an idle node (`true`, run as the pool's non-admin auto-user).",
            "",
            "| measurement | result |",
            "|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    if args.write:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as results_file:
            results_file.write(text)


if __name__ == "__main__":
    main()
