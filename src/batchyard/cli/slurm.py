"""The `batchyard serve --slurm-*` options: the Slurm provider's defaults (README, Slurm pools)."""

from __future__ import annotations

import argparse

from batchyard.providers.slurm_job import SlurmOptions


def add_slurm_options(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("Slurm pools (metadata batchyard-provider = slurm)")
    group.add_argument(
        "--slurm-partition", default="", help="partition of the nodes' jobs (pools: batchyard-slurm-partition)"
    )
    group.add_argument("--slurm-account", default="", help="Slurm account charged (pools: batchyard-slurm-account)")
    group.add_argument("--slurm-qos", default="", help="QOS of the nodes' jobs (pools: batchyard-slurm-qos)")
    group.add_argument(
        "--slurm-low-priority-partition",
        default="",
        help="partition of Spot/low-priority nodes' jobs, a preemptible one"
        " (pools: batchyard-slurm-low-priority-partition)",
    )
    group.add_argument(
        "--slurm-low-priority-qos",
        default="",
        help="QOS of Spot/low-priority nodes' jobs (pools: batchyard-slurm-low-priority-qos)",
    )
    group.add_argument(
        "--slurm-time-limit",
        default="",
        help="time limit of a node's job, as sbatch --time (pools: batchyard-slurm-time-limit)",
    )
    group.add_argument(
        "--slurm-node-dir",
        default=SlurmOptions.node_dir,
        help="directory on the compute hosts where each node's root is made (removed when its job ends)",
    )
    group.add_argument(
        "--slurm-agent-python",
        default=SlurmOptions.agent_python,
        help="the Python with batchyard installed on the compute hosts (default: the service's)",
    )
    group.add_argument(
        "--slurm-poll-interval", type=float, default=SlurmOptions.poll_interval, help="seconds between squeue calls"
    )


def slurm_options(args: argparse.Namespace) -> SlurmOptions:
    return SlurmOptions(
        partition=args.slurm_partition,
        account=args.slurm_account,
        qos=args.slurm_qos,
        time_limit=args.slurm_time_limit,
        low_priority_partition=args.slurm_low_priority_partition,
        low_priority_qos=args.slurm_low_priority_qos,
        node_dir=args.slurm_node_dir,
        agent_python=args.slurm_agent_python,
        poll_interval=max(0.2, args.slurm_poll_interval),
    )
