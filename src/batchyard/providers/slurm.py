"""The Slurm provider (`slurm`): each compute node of a pool is a Slurm job, one per node, running the
node's agent, which connects back to the service's URL.

A pool chooses it with the metadata `batchyard-provider: slurm` (partition, account, QOS and time limit
in `batchyard-slurm-*` metadata or the service's `--slurm-*` options; cores and memory from the vmSize,
slurm_job.py). The service needs only `sbatch`, `squeue` and `scancel` on its host.

A node stays `creating` while its job is pending; once Slurm runs the job it is granted
(`allocation_granted`) and the agent's hello makes it `starting`. A job that ends under its node (an
administrator's scancel, its time limit, a failed Slurm node, preemption) is reported with
`allocation_lost` once Slurm says it ended, when its processes are gone; the engine requeues the node's
runs and, as for any lost node, starts it again here: a new job. Stopping, restarting (reboot, reimage)
and fencing a node cancel its job and wait until Slurm says it ended.

Jobs are named after the service's account and the node (`batchyard-<account>-<node id>`), so a restarted
service finds the jobs of its nodes again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from batchyard.providers import slurm_commands as slurm
from batchyard.providers.base import NodeEvents, NodeLaunch
from batchyard.providers.slurm_job import SlurmOptions, batch_script, job_name, sbatch_options

log = logging.getLogger("batchyard.slurm")

END_WAIT = 120.0  # seconds to wait for a cancelled job to end (Slurm's KillWait is 30 s by default)
END_POLL = 0.5


class SlurmProvider:
    name = "slurm"
    starts_agents = True

    def __init__(self, options: SlurmOptions, service_urls: str | Sequence[str], account_name: str) -> None:
        self.options = options
        self.service_urls = service_urls  # this instance's URL, then its failover peers'
        self.prefix = f"batchyard-{account_name}-"
        self._events: NodeEvents | None = None
        self._jobs: dict[str, str] = {}  # node id -> its current job id
        self._granted: set[str] = set()  # job ids reported running
        self._ours_ending: set[str] = set()  # job ids this provider cancelled: their end is no loss
        self._submitted_in: dict[str, int] = {}  # job id -> the listing under way when it was submitted
        self._listings = 0  # squeue listings begun
        self._listed = False  # the jobs of an earlier service process were adopted
        self._watcher: asyncio.Task[None] | None = None

    def bind(self, events: NodeEvents) -> None:
        self._events = events

    def node_address(self, node_id: str, taken: set[str]) -> str:
        return "127.0.0.1"  # the Slurm node a job lands on is known only once it runs

    async def start_node(self, launch: NodeLaunch) -> None:
        self._watch()
        await self._end_job(launch.node_id, ours=True)
        name = job_name(self.prefix, launch.node_id)
        script = batch_script(self.options, launch, self.service_urls, os.environ.get("PATH", "/usr/bin:/bin"))
        try:
            job_id = await slurm.submit(script, sbatch_options(self.options, launch, name))
        except slurm.SlurmCommandError as exc:
            log.warning("node %s: its Slurm job could not be submitted: %s", launch.node_id, exc)
            if self._events is not None:
                self._events.allocation_lost(launch.node_id, False, f"its Slurm job was refused ({exc})")
            return
        log.info("node %s: Slurm job %s submitted", launch.node_id, job_id)
        self._submitted_in[job_id] = self._listings
        self._jobs[launch.node_id] = job_id

    async def stop_node(self, node_id: str, wipe: bool) -> None:
        """Cancel the node's job and wait for its end; the job removes the node's root itself."""
        self._watch()
        await self._end_job(node_id, ours=True)

    async def fence(self, node_id: str) -> None:
        """The agent is cut off: cancel its job (Slurm ends every process in it) and wait for its end,
        which the watcher then reports as the node's loss."""
        self._watch()
        await self._end_job(node_id, ours=False)

    def agent_connected(self, node_id: str, hello: Mapping[str, Any]) -> None:
        self._watch()

    def is_alive(self, node_id: str) -> bool | None:
        self._watch()
        if not self._listed:
            return None  # the jobs of an earlier service process are not known yet
        return node_id in self._jobs

    async def stop_all(self) -> None:
        """A clean stop ends the nodes' jobs, as it ends local agents (a killed service leaves them running:
        the agents reconnect to the next service, which finds their jobs by name)."""
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        jobs = list(self._jobs.values())
        self._jobs.clear()
        if jobs:
            try:
                await slurm.run("scancel", *jobs)
            except slurm.SlurmCommandError as exc:
                log.warning("the nodes' Slurm jobs could not be cancelled: %s", exc)

    # --- jobs -----------------------------------------------------------------------------------

    async def _end_job(self, node_id: str, ours: bool) -> None:
        job_id = await self._job_of(node_id)
        if job_id is None:
            return
        if ours:
            self._ours_ending.add(job_id)
            self._forget(node_id, job_id)
        try:
            await slurm.cancel(job_id)
        except slurm.SlurmCommandError as exc:
            log.warning("node %s: Slurm job %s could not be cancelled: %s", node_id, job_id, exc)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_WAIT
        while loop.time() < deadline:
            try:
                row = (await slurm.list_jobs(self.prefix)).get(job_id)
                if row is None or not row.active:
                    return
            except slurm.SlurmCommandError as exc:
                log.warning("squeue failed: %s", exc)
            await asyncio.sleep(END_POLL)
        log.warning("node %s: Slurm job %s still not ended %.0f s after scancel", node_id, job_id, END_WAIT)

    async def _job_of(self, node_id: str) -> str | None:
        """The node's job: the one submitted here, else one Slurm lists under the node's name."""
        if node_id in self._jobs:
            return self._jobs[node_id]
        if self._listed:
            return None
        name = job_name(self.prefix, node_id)
        rows = await slurm.list_jobs(self.prefix)
        return next((row.job_id for row in rows.values() if row.name == name and row.active), None)

    # --- watching -------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Start the squeue watcher on the first call made from the service's event loop."""
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch_loop())

    async def _watch_loop(self) -> None:
        while True:
            try:
                await self._look()
            except slurm.SlurmCommandError as exc:
                log.warning("squeue failed: %s", exc)
            except Exception:  # the watcher must outlive a bug in one round
                log.exception("watching the Slurm jobs failed")
            await asyncio.sleep(self.options.poll_interval)

    async def _look(self) -> None:
        self._listings += 1
        listing = self._listings
        rows = await slurm.list_jobs(self.prefix)
        if not self._listed:
            self._adopt(rows)
        for node_id, job_id in list(self._jobs.items()):
            row = rows.get(job_id)
            if row is None and self._submitted_in.get(job_id, 0) >= listing:
                continue  # submitted while squeue was answering: not in this listing yet
            if row is not None and row.active:
                if row.running and job_id not in self._granted:
                    self._granted.add(job_id)
                    address = await host_address(row.host)
                    log.info("node %s: Slurm job %s runs on %s (%s)", node_id, job_id, row.host, address)
                    if self._events is not None:
                        self._events.allocation_granted(node_id, address)
                continue
            self._forget(node_id, job_id)
            if job_id in self._ours_ending:
                continue
            state = row.state if row is not None else "gone"
            log.warning("node %s: its Slurm job %s ended (%s)", node_id, job_id, state)
            if self._events is not None:
                reason = f"its Slurm job {job_id} ended ({state})"
                self._events.allocation_lost(node_id, state == slurm.PREEMPTED_STATE, reason)
        # Jobs cancelled here are remembered until Slurm forgets them (MinJobAge).
        self._ours_ending &= set(rows)

    def _adopt(self, rows: Mapping[str, slurm.JobRow]) -> None:
        """Take charge of the active jobs of an earlier service process (found by their names)."""
        for row in rows.values():
            node_id = row.name.removeprefix(self.prefix)
            if row.active and node_id not in self._jobs and row.job_id not in self._ours_ending:
                self._jobs[node_id] = row.job_id
                if row.running:
                    self._granted.add(row.job_id)
        self._listed = True

    def _forget(self, node_id: str, job_id: str) -> None:
        if self._jobs.get(node_id) == job_id:
            del self._jobs[node_id]
        self._granted.discard(job_id)
        self._submitted_in.pop(job_id, None)


async def host_address(host: str) -> str | None:
    """The IPv4 address of the Slurm node a job runs on (its node's `ipAddress`), None when it has none."""
    if not host:
        return None
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket.AF_INET)
    except OSError:
        return None
    return str(found[0][4][0]) if found else None
