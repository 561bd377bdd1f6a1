"""Task operations: add (one or a collection), pages of a job's tasks, read, change, subtasks."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from batchyard.service.documents import TaskDocument
from batchyard.service.engine.operations.base import Check, OperationsBase, no_check
from batchyard.service.engine.records import JobRecord
from batchyard.service.errors import BatchError
from batchyard.service.odata import Filter


def _paged(rows: list[tuple[int, Any]], size: int) -> tuple[list[tuple[int, Any]], str | None]:
    """At most `size` rows of a page read with one extra row, and the next page's token if there is more."""
    token = str(rows[size - 1][0]) if len(rows) > size else None
    return rows[:size], token


class TaskOperations(OperationsBase):
    # --- adding ---------------------------------------------------------------------------------

    def add_task(self, job_id: str, spec: dict[str, Any]) -> tuple[JobRecord, TaskDocument]:
        """The job and the new task's document; the task's BatchError is raised."""
        job = self.engine.job_ops.get_job(self.key(job_id))
        with self.store.transaction():
            (result,) = self.engine.task_ops.add_tasks(job, [spec])
        if isinstance(result, BatchError):
            raise result
        return job, result

    def add_task_collection(
        self, job_id: str, specs: list[dict[str, Any]]
    ) -> tuple[JobRecord, list[TaskDocument | BatchError]]:
        """The job and, per spec in order, the new task's document or the error that refused it."""
        job = self.engine.job_ops.get_job(self.key(job_id))
        with self.store.transaction():
            return job, self.engine.task_ops.add_tasks(job, specs)

    # --- reading --------------------------------------------------------------------------------

    @property
    def task_fields(self) -> frozenset[str]:
        """Task properties a page can be made of without reading whole documents (task_field_page)."""
        return self.store.task_fields

    def task_page(
        self, job: JobRecord, where: Filter | None, after: int, size: int
    ) -> tuple[list[tuple[int, bytes]], str | None]:
        """Up to `size` tasks after position `after` matching `where`, as JSON documents; the next token."""
        return _paged(self.store.list_tasks(job.key, after, size + 1, where), size)

    def task_document_page(
        self, job: JobRecord, where: Filter | None, after: int, size: int
    ) -> tuple[list[tuple[int, TaskDocument]], str | None]:
        """Like task_page, with each task's private fields (what its statistics are made of)."""
        return _paged(self.store.list_task_documents(job.key, after, size + 1, where), size)

    def task_field_page(
        self, job: JobRecord, where: Filter | None, after: int, size: int, fields: Collection[str]
    ) -> tuple[list[tuple[int, dict[str, Any]]], str | None]:
        """Like task_page, only the `fields` (all in task_fields) of each task."""
        return _paged(self.store.list_task_fields(job.key, after, size + 1, fields, where), size)

    def task(self, job_id: str, task_id: str, check: Check = no_check) -> tuple[JobRecord, TaskDocument]:
        """The job and the task's document, or JobNotFound / TaskNotFound."""
        job = self.engine.job_ops.get_job(self.key(job_id))
        doc = self.engine.task_ops.get_task(job, task_id)
        check(doc)
        return job, doc

    def subtasks(self, job_id: str, task_id: str) -> list[dict[str, Any]]:
        """A multi-instance task's subtasks 1..N-1 (the primary is the task itself); none for other tasks."""
        return self.engine.multi_instance.list_subtasks(self.engine.job_ops.get_job(self.key(job_id)), task_id)

    # --- changes --------------------------------------------------------------------------------

    def delete_task(self, job_id: str, task_id: str, check: Check = no_check) -> None:
        job, doc = self.task(job_id, task_id, check)
        with self.store.transaction():
            self.engine.task_ops.delete_task(job, doc)

    def terminate_task(self, job_id: str, task_id: str, check: Check = no_check) -> tuple[JobRecord, dict[str, Any]]:
        job, doc = self.task(job_id, task_id, check)
        with self.store.transaction():
            self.engine.task_ops.terminate_task(job, doc)
        return job, doc

    def update_task(
        self, job_id: str, task_id: str, changes: dict[str, Any], check: Check = no_check
    ) -> tuple[JobRecord, dict[str, Any]]:
        job, doc = self.task(job_id, task_id, check)
        with self.store.transaction():
            self.engine.task_ops.update_task(job, doc, changes)
        return job, doc

    def reactivate_task(self, job_id: str, task_id: str, check: Check = no_check) -> tuple[JobRecord, dict[str, Any]]:
        job, doc = self.task(job_id, task_id, check)
        with self.store.transaction():
            self.engine.task_ops.reactivate_task(job, doc)
        return job, doc
