"""Slurm's command-line tools as the Slurm provider uses them: `sbatch`, `squeue` and `scancel`, run
without a shell, each with a time limit. They find the cluster as they would for any user of the service
host (`SLURM_CONF`, the default configuration or a configless setup)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

COMMAND_TIMEOUT = 60.0

# States of a job that still holds (or waits for) its allocation: its processes may exist.
PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING"})
RUNNING_STATES = frozenset({"RUNNING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING", "COMPLETING"})
# How Slurm says a job was taken back for other work (squeue shows PREEMPTED for a short while).
PREEMPTED_STATE = "PREEMPTED"


class SlurmCommandError(Exception):
    """A Slurm command failed; the message is its own."""


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: str
    name: str
    state: str
    host: str = ""  # the Slurm node the job runs on (one: nodes' jobs ask for --nodes=1)

    @property
    def active(self) -> bool:
        """Whether the job still waits for or holds its allocation (its processes may still exist)."""
        return self.state in PENDING_STATES or self.state in RUNNING_STATES

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES and self.state != "COMPLETING"


async def run(*args: str, stdin: bytes | None = None) -> str:
    """Run a Slurm command and return its standard output; SlurmCommandError when it fails."""
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise SlurmCommandError(f"{args[0]}: {exc.strerror or exc}") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), COMMAND_TIMEOUT)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise SlurmCommandError(f"{args[0]} did not answer within {COMMAND_TIMEOUT:.0f} s") from exc
    if process.returncode != 0:
        message = err.decode(errors="replace").strip() or f"exit code {process.returncode}"
        raise SlurmCommandError(f"{args[0]}: {message}")
    return out.decode(errors="replace")


async def submit(script: str, options: list[str]) -> str:
    """`sbatch` the script (given on standard input, so it never lands in a file); the new job's id."""
    out = await run("sbatch", "--parsable", *options, stdin=script.encode())
    # --parsable answers "id" or "id;cluster"
    job_id = out.strip().split(";", 1)[0]
    if not job_id.isdigit():
        raise SlurmCommandError(f"sbatch answered {out.strip()!r}, not a job id")
    return job_id


async def list_jobs(name_prefix: str) -> dict[str, JobRow]:
    """The jobs of the service's user whose names start with the prefix, recently ended ones too
    (Slurm keeps those for its MinJobAge): job id -> row."""
    out = await run("squeue", "--noheader", "--me", "--states=all", "--format=%i|%j|%T|%N")
    rows: dict[str, JobRow] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[1].startswith(name_prefix):
            rows[parts[0]] = JobRow(parts[0], parts[1], parts[2], parts[3])
    return rows


async def cancel(job_id: str) -> None:
    """`scancel` the job; one that already ended is no error (scancel says so and we ignore it)."""
    try:
        await run("scancel", job_id)
    except SlurmCommandError as exc:
        if "already completing or completed" not in str(exc) and "Invalid job id" not in str(exc):
            raise
