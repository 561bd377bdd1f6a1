"""Ports: the interfaces the engine and its facade use, which adapters (persistence/, gateway.py) implement.

`AgentChannel` is one connected agent as the engine talks to it (service/gateway.AgentSession over a
WebSocket; tests/engine/world.FakeAgent in process).

`Store` is everything the service keeps durably. An implementation stores each entity as its
wire-shaped document (a JSON object) with the few columns its queries need; the SQLite one is
`persistence/sqlite`. Task listings take a validated OData `Filter` (the odata package, pure) and
compile it for their own database, so no caller writes a query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from batchyard.protocol.messages import ServiceMessage
from batchyard.service.documents import Private, TaskDocument
from batchyard.service.odata import Filter

# A wire document as the store keeps it (private fields apart: service/documents.py).
Doc = dict[str, Any]


class Store(Protocol):
    # Task properties (wire names, e.g. "stateTransitionTime") that `list_task_fields` can answer.
    task_fields: frozenset[str]

    def close(self) -> None: ...

    # --- units of work and ordering ----------------------------------------------------------

    # Told the seconds of each outermost transaction that committed, begin to commit (the metrics).
    transaction_observer: Callable[[float], None] | None

    def transaction(self) -> AbstractContextManager[None]:
        """All writes inside commit together or not at all; nested use joins the outer transaction."""
        ...

    def next_seq(self) -> int:
        """The next creation number (entities list in this order); saved with the transaction."""
        ...

    def next_seqs(self, count: int) -> range: ...

    # --- service settings ---------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...

    # --- pools, nodes, jobs, job schedules (loaded whole at start) -----------------------------

    def load_all(self, table: str) -> list[tuple[str, int, Doc, Private]]:
        """(key, seq, document, private fields) of every "pools", "jobs" or "schedules", in creation order."""
        ...

    def load_nodes(self) -> list[tuple[str, int, Doc, Private]]:
        """(pool key, seq, document, private fields) of every node, in creation order."""
        ...

    def put_pool(self, key: str, seq: int, doc: Doc, private: Private) -> None: ...
    def delete_pool(self, key: str) -> None: ...
    def put_node(self, node_id: str, pool_key: str, seq: int, doc: Doc, private: Private) -> None: ...

    def delete_node(self, node_id: str) -> None:
        """The node and what was retained on its disk."""
        ...

    def put_job(self, key: str, seq: int, doc: Doc, private: Private) -> None: ...

    def delete_job(self, key: str) -> None:
        """The job with its tasks, subtasks and preparation statuses."""
        ...

    def put_schedule(self, key: str, seq: int, doc: Doc, private: Private) -> None: ...
    def delete_schedule(self, key: str) -> None: ...

    # --- tasks (many: never loaded whole) -------------------------------------------------------

    def insert_tasks(self, job_key: str, rows: Iterable[tuple[str, int, str, TaskDocument]]) -> None:
        """rows: (task key, seq, state, doc)."""
        ...

    def update_task(self, job_key: str, key: str, state: str, node_id: str | None, doc: TaskDocument) -> None: ...
    def get_task(self, job_key: str, key: str) -> TaskDocument | None: ...
    def get_tasks(self, job_key: str, keys: list[str]) -> dict[str, TaskDocument]: ...
    def existing_task_keys(self, job_key: str, keys: list[str]) -> set[str]: ...
    def delete_task(self, job_key: str, key: str) -> None: ...

    def list_tasks(
        self, job_key: str, after_seq: int, limit: int, where: Filter | None = None
    ) -> list[tuple[int, bytes]]:
        """A page of (seq, document as JSON bytes) after `after_seq`, in creation order, matching `where`."""
        ...

    def list_task_documents(
        self, job_key: str, after_seq: int, limit: int, where: Filter | None = None
    ) -> list[tuple[int, TaskDocument]]:
        """Like list_tasks, with each task's private fields."""
        ...

    def list_task_fields(
        self, job_key: str, after_seq: int, limit: int, fields: Collection[str], where: Filter | None = None
    ) -> list[tuple[int, Doc]]:
        """Like list_tasks, only the `fields` (all in `task_fields`) of each task, without reading documents."""
        ...

    def task_keys_in_state(self, job_key: str, states: tuple[str, ...]) -> list[tuple[str, TaskDocument]]: ...

    def count_task_states(self) -> list[tuple[str, str, int]]: ...

    def task_results(self, job_key: str) -> tuple[int, int]:
        """(succeeded, failed) among completed tasks of a job."""
        ...

    def multi_instance_sizes(self, job_key: str) -> dict[str, int]:
        """Unfinished multi-instance tasks of a job: task key -> numberOfInstances."""
        ...

    # --- subtasks, preparation statuses, certificates, applications -----------------------------

    def put_subtask(self, job_key: str, task_key: str, subtask_id: int, doc: Doc) -> None: ...
    def list_subtasks(self, job_key: str, task_key: str) -> list[Doc]: ...
    def delete_subtasks(self, job_key: str, task_key: str | None = None) -> None: ...
    def put_prep_status(self, job_key: str, node_id: str, doc: Doc) -> None: ...
    def delete_prep_status(self, job_key: str, node_id: str) -> None: ...
    def load_prep_statuses(self) -> list[tuple[str, str, Doc]]: ...
    def load_certificates(self) -> list[tuple[str, Doc, Private]]: ...
    def put_certificate(self, key: str, doc: Doc, private: Private) -> None: ...
    def delete_certificate(self, key: str) -> None: ...
    def load_applications(self) -> list[tuple[str, Doc]]: ...
    def put_application(self, key: str, doc: Doc) -> None: ...
    def delete_application(self, key: str) -> None: ...

    # --- retention: task directories to remove from nodes when their time is over ---------------

    def retain(self, expiry: float, node_id: str, path: str) -> None: ...

    def take_expired(self, now: float) -> list[tuple[str, str]]:
        """(node id, path) of retained directories whose time is over, forgotten as they are returned."""
        ...

    def forget_retained(self, node_id: str) -> None: ...
    def retained_until(self, node_id: str) -> float: ...

    # --- usage ----------------------------------------------------------------------------------

    def load_usage(self) -> list[tuple[str, str, Doc]]: ...
    def put_usage(self, scope: str, key: str, doc: Doc) -> None: ...
    def add_pool_usage(self, start: float, pool_id: str, vm_size: str, core_seconds: float) -> None: ...

    def pool_usage(self, first: float, last: float) -> list[tuple[float, str, str, float]]:
        """(interval start, pool id, vm size, core seconds) for intervals starting in [first, last]."""
        ...

    # --- the outbox: diagnostic log records saved with the change that raised them ------------------
    # (service/diagnostics). Written only when diagnostic logs are on; read and trimmed by the shipper
    # and the live event stream.

    def add_outbox_records(self, records: Iterable[bytes]) -> None:
        """Append records (JSON lines, without the newline) in the caller's transaction. Each gets the next
        sequence number; numbers ascend in commit order and are never reused, even after a delete."""
        ...

    def outbox_records(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` (seq, record) after `after_seq`, in sequence order."""
        ...

    def delete_outbox_records(self, through_seq: int) -> None:
        """Forget the records numbered up to `through_seq`."""
        ...


class AgentGone(Exception):
    """The node's agent is not connected (or went away during a request)."""


class AgentChannel(Protocol):
    """One agent's connection: messages out, requests with their replies, and the agent's messages in."""

    node_id: str
    closed: bool

    def send(self, message: ServiceMessage) -> None:
        """Queue a message for the agent (never blocks; dropped once the channel is closed)."""

    async def request(self, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """An rpc and its reply; AgentGone when the agent is not there or does not answer in time."""
        ...

    def close(self, code: int = 1000, reason: str = "") -> None:
        """End the connection (a WebSocket close code and reason the agent sees)."""

    async def serve(self, on_message: Callable[[AgentChannel, dict[str, Any]], Awaitable[None] | None]) -> None:
        """Deliver the agent's messages to `on_message` until the connection ends."""
