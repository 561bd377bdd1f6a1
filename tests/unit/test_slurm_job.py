"""What the Slurm provider submits for a node (providers/slurm_job.py): sbatch options and the batch script."""

from __future__ import annotations

import subprocess

from batchyard.providers.base import NodeLaunch
from batchyard.providers.slurm_job import SlurmOptions, batch_script, sbatch_options

TOKEN = "node-token-0123456789abcdef"


def launch(**settings: str) -> NodeLaunch:
    return NodeLaunch("tvmps_abc_d", "pool 1", TOKEN, "standard_d2s_v3", cores=2, memory_mb=8192, settings=settings)


def test_pool_metadata_wins_over_the_service_options_which_win_over_slurm_defaults() -> None:
    options = SlurmOptions(partition="default-part", account="lab", time_limit="1:00:00")
    args = sbatch_options(options, launch(**{"batchyard-slurm-partition": "gpu", "batchyard-slurm-qos": "high"}), "n")
    assert "--partition=gpu" in args and "--partition=default-part" not in args
    assert "--account=lab" in args and "--qos=high" in args and "--time=1:00:00" in args
    assert "--cpus-per-task=2" in args and "--mem=8192M" in args and "--job-name=n" in args
    # Nothing is asked of Slurm that neither the pool nor the service set.
    bare = sbatch_options(SlurmOptions(), launch(), "n")
    assert not [arg for arg in bare if arg.split("=")[0] in ("--partition", "--account", "--qos", "--time")]


def test_low_priority_nodes_take_the_preemptible_partition_and_qos_where_one_is_set() -> None:
    options = SlurmOptions(partition="main", qos="normal", low_priority_qos="scavenger")
    spot = NodeLaunch(
        "tvmps_abc_p", "p", TOKEN, dedicated=False, settings={"batchyard-slurm-low-priority-partition": "spot"}
    )
    args = sbatch_options(options, spot, "n")
    assert "--partition=spot" in args and "--qos=scavenger" in args
    assert not [arg for arg in args if arg in ("--partition=main", "--qos=normal")]
    # a dedicated node of the same pool keeps the ordinary ones; without low-priority settings, so do Spot nodes
    dedicated = NodeLaunch("tvmps_abc_d", "p", TOKEN, settings={"batchyard-slurm-low-priority-partition": "spot"})
    assert {"--partition=main", "--qos=normal"} <= set(sbatch_options(options, dedicated, "n"))
    plain = NodeLaunch("tvmps_abc_p", "p", TOKEN, dedicated=False)
    assert {"--partition=main", "--qos=normal"} <= set(
        sbatch_options(SlurmOptions(partition="main", qos="normal"), plain, "n")
    )


def test_a_size_the_catalog_does_not_know_reserves_nothing() -> None:
    unknown = NodeLaunch("n", "p", TOKEN, "no_such_size")
    args = sbatch_options(SlurmOptions(), unknown, "n")
    assert not [arg for arg in args if arg.startswith(("--cpus-per-task", "--mem"))]


def test_the_script_hands_the_token_on_standard_input_only() -> None:
    script = batch_script(SlurmOptions(node_dir="/scratch/by"), launch(), "http://service:8650", "/usr/bin:/bin")
    lines = script.splitlines()
    # The token is the body of a here-document, never on the agent's command line or in an export.
    assert [line for line in lines if TOKEN in line] == [TOKEN]
    agent = next(line for line in lines if "batchyard.agent" in line)
    assert "--token-stdin" in agent and "<<'BATCHYARD_NODE_TOKEN'" in agent
    assert "--root /scratch/by/tvmps_abc_d" in agent and "--service-url http://service:8650" in agent
    assert "'pool 1'" in lines[1]  # the pool id is quoted, even in a comment
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0


def test_the_agent_is_given_every_service_instance_of_a_failover_set() -> None:
    urls = ["http://a:8650", "http://b:8650"]
    script = batch_script(SlurmOptions(node_dir="/scratch/by"), launch(), urls, "/usr/bin:/bin")
    agent = next(line for line in script.splitlines() if "batchyard.agent" in line)
    assert "--service-url http://a:8650 --service-url http://b:8650" in agent
