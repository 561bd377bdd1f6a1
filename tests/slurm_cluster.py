"""A real single-host Slurm cluster for the Slurm provider's tests: munged, slurmctld and slurmd from
Debian's `slurm-wlm` and `munge` (scripts/test.sh installs them), started as root in a temporary
directory on free ports and stopped afterwards. Nothing outside that directory is used: the munge
socket, the state and spool directories and the logs are all in it, and `SLURM_CONF` points at it.

One Slurm node (this host) offers more CPUs than the machine has (`SlurmdParameters=config_overrides`),
so several Batch nodes fit on it; process tracking is `proctrack/linuxproc`, which needs no cgroups.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CPUS = 8
MEMORY_MB = 32768


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs as their users; run the tests as root"
    missing = [name for name in (*DAEMONS, "sbatch", "squeue", "scancel", "sinfo") if shutil.which(name) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing): scripts/test.sh installs slurm-wlm and munge"
    return None


@dataclass
class SlurmCluster:
    root: Path
    conf: Path = field(init=False)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conf = self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What Slurm's commands need to find this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def command(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            list(args), env=os.environ | self.env, capture_output=True, text=True, timeout=30, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> dict[str, tuple[str, str]]:
        """Every job Slurm still lists: id -> (name, state)."""
        out = self.command("squeue", "--noheader", "--format=%i|%j|%T")
        rows = (line.split("|") for line in out.splitlines() if line.strip())
        return {job_id: (name, state) for job_id, name, state in rows}

    def start(self, timeout: float = 60.0) -> None:
        self._write_config()
        munge = self.root / "munge"
        log = self.root / "log"
        self._spawn(
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={munge / 'munge.socket'}",
                f"--key-file={munge / 'munge.key'}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={log / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            "munged",
        )
        self._wait(lambda: (munge / "munge.socket").exists(), timeout, "munged's socket")
        self._spawn(["slurmctld", "-D", "-i", "-f", str(self.conf)], "slurmctld")
        self._spawn(["slurmd", "-D", "-N", socket.gethostname(), "-f", str(self.conf)], "slurmd")
        self._wait(self._node_idle, timeout, "the Slurm node to be idle")

    def stop(self) -> None:
        """Cancel every job (their processes end with them), then stop the daemons."""
        try:
            ids = list(self.jobs())
            if ids:
                self.command("scancel", *ids, check=False)
                self._wait(lambda: not self.jobs(), 60, "Slurm jobs to end")
        finally:
            for process in reversed(self.processes):
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(15)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()

    def log(self, daemon: str) -> str:
        path = self.root / "log" / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _node_idle(self) -> bool:
        out = self.command("sinfo", "--noheader", "--format=%t", check=False)
        return out.strip() == "idle"

    def _spawn(self, args: list[str], name: str) -> None:
        output = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            args, env=os.environ | self.env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        output.close()
        self.processes.append(process)

    def _wait(self, check: object, timeout: float, what: str) -> None:
        assert callable(check)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited while waiting for {what}:\n{self._logs()}")
            if check():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}:\n{self._logs()}")

    def _logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in DAEMONS)

    def _write_config(self) -> None:
        for sub in ("munge", "log", "state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # munged wants its socket directory passable by everyone and its key readable by itself only.
        self.root.chmod(0o755)
        (self.root / "munge").chmod(0o755)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        host = socket.gethostname()
        lines = [
            "ClusterName=batchyardtest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.root / 'munge' / 'munge.socket'}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
            # No cgroups in every test environment: processes are tracked by parentage.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            # The node may claim more CPUs and memory than the machine has, so several Batch nodes fit.
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            "MpiDefault=none",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2",
            "InactiveLimit=0",
            "MinJobAge=60",
            "KillWait=3",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={MEMORY_MB} State=UNKNOWN",
            # Jobs of `urgent` preempt (cancel) those of `batch`, as a site's preemptible partition would.
            "PreemptType=preempt/partition_prio",
            "PreemptMode=CANCEL",
            f"PartitionName=batch Nodes={host} Default=YES MaxTime=INFINITE State=UP PriorityTier=1",
            f"PartitionName=urgent Nodes={host} MaxTime=INFINITE State=UP PriorityTier=2",
        ]
        self.conf.write_text("\n".join(lines) + "\n")


def running_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """For a fixture: a started cluster, stopped (its jobs cancelled) afterwards; a skip with the reason
    where none can run (not root, or Slurm not installed where scripts/test.sh could not install it)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = SlurmCluster(Path(tmp_path_factory.mktemp("slurm")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
