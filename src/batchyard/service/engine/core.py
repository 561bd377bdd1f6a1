"""The engine's core: the loaded records, persistence helpers, events, kicks and housekeeping.

Every concern of the engine (the sibling modules: pools, nodes, jobs, tasks, ...) is a `Concern` that
holds the core; `engine.py` composes them. All of them run on the event loop thread, so no locks are
needed. Every state change is written to the store inside the caller's transaction before the caller
answers.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from batchyard.protocol import messages
from batchyard.providers.base import NodeProvider
from batchyard.providers.registry import ProviderRegistry
from batchyard.service.clock import Clock, iso, ticks
from batchyard.service.config import Settings
from batchyard.service.documents import TaskDocument, dump_private, load_private
from batchyard.service.engine import states
from batchyard.service.engine.account_keys import account_of, account_path
from batchyard.service.engine.dependencies import parent_keys
from batchyard.service.engine.events import EngineStarted, Reactions, RoundDue, Tick
from batchyard.service.engine.records import (
    JobPrivate,
    JobRecord,
    NodePrivate,
    NodeRecord,
    NodeRun,
    PoolPrivate,
    PoolRecord,
    RunKind,
)
from batchyard.service.engine.scheduler import QueuedTask
from batchyard.service.models.durations import duration_seconds
from batchyard.service.ports import Store
from batchyard.service.storage.runs import RunResources

log = logging.getLogger("batchyard.engine")


class EngineCore:
    """What every concern shares: the records, the store, the clock, the providers and the events."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        providers: ProviderRegistry,
        clock: Clock | None = None,
        resources: RunResources | None = None,
    ) -> None:
        self.reactions = Reactions()  # filled by the composition (engine.py)
        self.settings = settings
        self.store = store
        self.providers = providers
        self.resources = resources or RunResources()  # the linked account and packages, for runs
        self.clock = clock or Clock()
        self.pools: dict[str, PoolRecord] = {}
        self.nodes: dict[str, NodeRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.pool_jobs: dict[str, set[str]] = defaultdict(set)
        self._last_tick = 0
        self._round_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._housekeeper: asyncio.Task[None] | None = None
        secret = store.get_meta("node_secret")
        if secret is None:
            secret = secrets.token_hex(32)
            with store.transaction():
                store.set_meta("node_secret", secret)
        self.node_secret = bytes.fromhex(secret)
        self._load()

    # --- loading ------------------------------------------------------------------------------

    def _load(self) -> None:
        for key, seq, doc, private in self.store.load_all("pools"):
            pool = PoolRecord(key, seq, doc, load_private(PoolPrivate, private))
            self.pools[pool.key] = pool
        started = time.monotonic()
        for pool_key, seq, doc, private in self.store.load_nodes():
            node = NodeRecord(doc["id"], pool_key, seq, doc, load_private(NodePrivate, private), lost_at=started)
            self.nodes[node.id] = node
            if node.pool_key in self.pools:
                self.pools[node.pool_key].node_ids.append(node.id)
        for key, seq, doc, private in self.store.load_all("jobs"):
            job = JobRecord(key, seq, doc, load_private(JobPrivate, private))
            self.jobs[job.key] = job
            if job.pool_key:
                self.pool_jobs[job.pool_key].add(job.key)
        for job_key, state, count in self.store.count_task_states():
            if job_key in self.jobs:
                self.jobs[job_key].counts[state] += count
        for job in self.jobs.values():
            self._load_job_tasks(job)
        for job_key, node_id, status in self.store.load_prep_statuses():
            status_job = self.jobs.get(job_key)
            status_node = self.nodes.get(node_id)
            if status_job is None or status_node is None:
                continue
            status_job.prep[node_id] = status
            for part, kind in (("jobPreparationTaskExecutionInfo", "prep"), ("jobReleaseTaskExecutionInfo", "release")):
                if (status.get(part) or {}).get("state") == "running":
                    run_kind = RunKind.PREPARATION if kind == "prep" else RunKind.RELEASE
                    status_node.runs[f"{kind}:{job_key}"] = NodeRun(job_key, "", 0, f"{kind}:{job_key}", run_kind)

    def _load_job_tasks(self, job: JobRecord) -> None:
        dependents: list[tuple[str, int, dict[str, Any]]] = []
        for key, doc in self.store.task_keys_in_state(job.key, ("active", "running", "preparing", "completed")):
            slots = int(doc.get("requiredSlots", 1))
            state = doc["state"]
            job.slot_counts[state] += slots
            if state == "active" and doc.get("dependsOn"):
                dependents.append((key, slots, doc["dependsOn"]))  # after every parent's outcome is known
            elif state == "active":
                job.queue.append(QueuedTask(job.key, key, slots))
            elif state == "completed":
                if doc.private.dependency_action is not None:
                    job.graph.outcomes[key] = doc.private.dependency_action
                if (doc.get("executionInfo") or {}).get("result") == "success":
                    job.succeeded += 1
                    job.succeeded_slots += slots
                else:
                    job.failed += 1
                    job.failed_slots += slots
            else:
                node = self.nodes.get((doc.get("nodeInfo") or {}).get("nodeId", ""))
                if node is not None and doc.private.run_id:
                    kind = RunKind.HELD if state == "preparing" else RunKind.TASK
                    node.runs[doc.private.run_id] = NodeRun(job.key, key, slots, doc.private.run_id, kind)
                    node.slots_used += slots
        for key, slots, depends_on in dependents:
            status = job.graph.add(key, parent_keys(depends_on))
            if status == "ready":
                job.queue.append(QueuedTask(job.key, key, slots))
            elif status == "waiting":
                job.dependent_slots[key] = slots

    def provider_of(self, node: NodeRecord) -> NodeProvider:
        return self.providers.get(node.private.provider)

    # --- accounts (engine/account_keys.py) ------------------------------------------------------

    def account_url(self, key: str) -> str:
        """The data plane's URL of the account of that pool's or job's key (what links in documents start with)."""
        return self.settings.base_url + account_path(account_of(key))

    def account_name(self, key: str) -> str:
        """The name of the account of that pool's or job's key."""
        return account_of(key) or self.settings.account_name

    # --- time and stamps ------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def stamp(self, doc: dict[str, Any], now: datetime) -> None:
        """A new ETag and Last-Modified for a changed entity (ETags strictly increase)."""
        self._last_tick = max(ticks(now), self._last_tick + 1)
        doc["eTag"] = f"0x{self._last_tick:X}"
        doc["lastModified"] = iso(now)

    # --- persistence ----------------------------------------------------------------------------

    def save_pool(self, pool: PoolRecord) -> None:
        self.store.put_pool(pool.key, pool.seq, pool.doc, dump_private(pool.private))

    def save_node(self, node: NodeRecord) -> None:
        node.dirty = False
        self.store.put_node(node.id, node.pool_key, node.seq, node.doc, dump_private(node.private))

    def set_node_state(self, node: NodeRecord, state: str, now: datetime) -> None:
        if states.move(node.doc, states.NODE, state, now, previous=False, owner=node.pool_key):
            self.save_node(node)

    def mark_node_busy(self, node: NodeRecord, now: datetime) -> None:
        if node.doc["state"] == "idle" and node.slots_used > 0:
            self.set_node_state(node, "running", now)

    def save_job(self, job: JobRecord) -> None:
        self.store.put_job(job.key, job.seq, job.doc, dump_private(job.private))

    def save_task(self, job_key: str, doc: TaskDocument) -> None:
        node_id = (doc.get("nodeInfo") or {}).get("nodeId") if doc["state"] in ("running", "preparing") else None
        self.store.update_task(job_key, doc["id"].lower(), doc["state"], node_id, doc)

    # --- background work ----------------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        """Run a coroutine in the background, keeping a reference so it is not collected."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    # --- scheduling -----------------------------------------------------------------------------

    def kick(self) -> None:
        """Ask for a scheduling round soon; many kicks in one loop turn make one round."""
        if not self._round_scheduled:
            self._round_scheduled = True
            asyncio.get_running_loop().call_soon(self._schedule_round)

    def _schedule_round(self) -> None:
        if not self._round_scheduled:
            return  # already run by run_pending_round
        self._round_scheduled = False
        with self.store.transaction():
            self.emit(RoundDue(self.now()))

    def run_pending_round(self) -> None:
        """Run a kicked round now, inside the caller's transaction: one commit instead of two."""
        self._schedule_round()

    # --- housekeeping ---------------------------------------------------------------------------

    async def start(self) -> None:
        with self.store.transaction():
            self.emit(EngineStarted(self.now()))
        self._housekeeper = asyncio.get_running_loop().create_task(self._housekeeping_loop())
        self.kick()

    async def stop(self) -> None:
        if self._housekeeper is not None:
            self._housekeeper.cancel()
        for node in self.nodes.values():
            if node.session is not None:
                node.session.send({"t": "shutdown"})
        await self.providers.stop_all()
        for task in list(self._tasks):
            task.cancel()

    async def abandon(self) -> None:
        """Another service instance took charge of the store (failover): end this engine's work without
        stopping a node or a run (they are the new active instance's), and drop the agents' connections
        so they find it."""
        if self._housekeeper is not None:
            self._housekeeper.cancel()
        for node in self.nodes.values():
            if node.session is not None:
                node.session.close(messages.AGENT_MOVED, "this service instance is no longer the active one")
        for task in list(self._tasks):
            task.cancel()

    async def _housekeeping_loop(self) -> None:
        interval = self.settings.timing.housekeeping_interval
        while True:
            await asyncio.sleep(interval)
            try:
                with self.store.transaction():
                    self.housekeeping()
            except Exception:
                log.exception("housekeeping failed")

    def housekeeping(self) -> None:
        """Periodic checks: the reactions to `Tick` (see `Reactions.describe()`)."""
        self.emit(Tick(self.now()))

    def emit(self, event: object) -> None:
        """Tell the concerns that react to this event (engine/events.py), in their order."""
        self.reactions.emit(event)


def limit_seconds(duration: str | None) -> float | None:
    """Seconds of an ISO 8601 duration limit; None when absent or unlimited."""
    return duration_seconds(duration) if duration else None


class Concern:
    """One part of the engine (pools, nodes, tasks, ...): it holds the core, and the records every concern
    reads under their own names."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self.pools = core.pools
        self.nodes = core.nodes
        self.jobs = core.jobs
        self.pool_jobs = core.pool_jobs
        self.store = core.store
        self.settings = core.settings
        self.resources = core.resources
