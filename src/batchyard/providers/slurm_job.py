"""What the Slurm provider submits for a node: the `sbatch` options (the pool's partition, account,
QOS and time limit; the cores and memory of its vmSize) and the batch script that runs the node's agent.

The node's token reaches the agent on its standard input from a here-document in the script: never on a
command line or in an environment (both readable in /proc). Slurm keeps the script in its state
directory, readable by the Slurm administrator and the service's own user, who holds the key to every
node token anyway.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from batchyard.providers.base import NodeLaunch

SETTING_PREFIX = "batchyard-slurm-"
# Pool metadata a pool may set (after `batchyard-slurm-`) and the sbatch option each becomes.
POOL_SETTINGS = {"partition": "--partition", "account": "--account", "qos": "--qos", "time-limit": "--time"}
# For Spot/low-priority nodes, these (when set) take the place of the partition and QOS: a preemptible
# partition or QOS, so that Slurm preempts them first (and its preemption is the node's, README).
LOW_PRIORITY_SETTINGS = {"partition": "low-priority-partition", "qos": "low-priority-qos"}


@dataclass(frozen=True)
class SlurmOptions:
    """The service's Slurm settings (`batchyard serve --slurm-*`); pools may override the first four."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    time_limit: str = ""
    # Spot/low-priority nodes' partition and QOS; empty: the same as dedicated nodes'.
    low_priority_partition: str = ""
    low_priority_qos: str = ""
    # Where on the compute hosts each node's root directory is made (one per node, removed at job end).
    node_dir: str = "/tmp/batchyard-slurm"
    # The Python that runs `-m batchyard.agent` on the compute hosts; the service's own by default.
    agent_python: str = sys.executable
    # How often squeue is asked about the nodes' jobs.
    poll_interval: float = 2.0
    # An agent that cannot reach the service this long ends itself and its tasks (and so its job).
    orphan_timeout: float = 600.0


def job_name(prefix: str, node_id: str) -> str:
    return f"{prefix}{node_id}"


def sbatch_options(options: SlurmOptions, launch: NodeLaunch, name: str) -> list[str]:
    """One task on one Slurm node with the cores and memory of the pool's vmSize."""
    chosen = {
        "partition": options.partition,
        "account": options.account,
        "qos": options.qos,
        "time-limit": options.time_limit,
    }
    for key in POOL_SETTINGS:
        value = launch.settings.get(SETTING_PREFIX + key, "").strip()
        if value:
            chosen[key] = value
    if not launch.dedicated:
        service_defaults = {"partition": options.low_priority_partition, "qos": options.low_priority_qos}
        for key, setting in LOW_PRIORITY_SETTINGS.items():
            value = launch.settings.get(SETTING_PREFIX + setting, "").strip() or service_defaults[key]
            if value:
                chosen[key] = value
    args = [
        f"--job-name={name}",
        "--nodes=1",
        "--ntasks=1",
        "--output=/dev/null",  # the script writes the agent's log next to the node's root
        "--export=NONE",  # the service's environment (its keys' variables among others) stays here
        "--no-requeue",  # a node whose job ends is lost; the service submits a new job for it
    ]
    if launch.cores > 0:
        args.append(f"--cpus-per-task={launch.cores}")
    if launch.memory_mb > 0:
        args.append(f"--mem={launch.memory_mb}M")
    args += [f"{POOL_SETTINGS[key]}={value}" for key, value in chosen.items() if value]
    return args


def batch_script(options: SlurmOptions, launch: NodeLaunch, service_urls: str | Sequence[str], path: str) -> str:
    """The job: make the node's root, run its agent until it ends (scancel sends it SIGTERM: it ends its
    tasks and exits), then remove the root. The agent's log stays when it failed, for the administrator.
    `service_urls`: the service's, then its failover peers' (the agent tries each in turn)."""
    urls = (service_urls,) if isinstance(service_urls, str) else tuple(service_urls)
    root = f"{options.node_dir.rstrip('/')}/{launch.node_id}"
    log = f"{root}.log"
    agent = shlex.join(
        [
            options.agent_python,
            "-m",
            "batchyard.agent",
            *(part for url in urls for part in ("--service-url", url)),
            "--node-id",
            launch.node_id,
            "--root",
            root,
            "--orphan-timeout",
            str(options.orphan_timeout),
            "--token-stdin",
        ]
    )
    return f"""#!/bin/bash
# batchyard: node {launch.node_id} of pool {shlex.quote(launch.pool_id)}
export PATH={shlex.quote(path)} LANG=C.UTF-8
mkdir -p {shlex.quote(root)} || exit 1
chmod 755 {shlex.quote(options.node_dir)} 2>/dev/null
exec >>{shlex.quote(log)} 2>&1
{agent} <<'BATCHYARD_NODE_TOKEN' &
{launch.token}
BATCHYARD_NODE_TOKEN
agent=$!
# Slurm signals every process of the job, the agent too: the script only outlives it to remove its root.
# A trapped signal interrupts `wait` (status 143) while the agent still runs: wait again. The status is
# taken from the `wait` that saw the agent end (once reaped, a further `wait` may not know its status).
trap : TERM
while :; do
    wait $agent
    status=$?
    kill -0 $agent 2>/dev/null || break
done
echo "batchyard: the agent exited with status $status"
rm -rf {shlex.quote(root)}
# Ended cleanly, or by Slurm's SIGTERM (which may come while it is already shutting down): no log to keep.
if [ $status = 0 ] || [ $status = 143 ]; then rm -f {shlex.quote(log)}; fi
exit $status
"""
