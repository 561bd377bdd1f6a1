"""TaskOutputStorage and JobOutputStorage: save, list by kind, download, and tracked saving.

Both work on the job's output container through a container URL with a SAS (read, write, list),
so task code needs no storage key; `from_environment()` builds them inside a task from
AZ_BATCH_JOB_ID / AZ_BATCH_TASK_ID and the container URL the client passed in JOB_OUTPUT_CONTAINER_URL
(`output_container_url()` makes one). With azure-storage-blob installed, `from_connection_string()`
and `prepare_output_storage()` work from the account's connection string on the client side.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from batchyard.conventions.blobs import Container
from batchyard.conventions.naming import (
    JobOutputKind,
    TaskOutputKind,
    container_name,
    job_prefix,
    relative_blob_path,
    task_prefix,
)

CONTAINER_URL_VARIABLE = "JOB_OUTPUT_CONTAINER_URL"


@dataclass(frozen=True)
class OutputFileReference:
    """One persisted output: its kind, its path below the kind, and where it is."""

    container: Container
    kind: str
    file_path: str
    blob_name: str

    @property
    def url(self) -> str:
        return self.container.url(self.blob_name)

    def download_to_file(self, path: str | Path) -> None:
        self.container.download(self.blob_name, Path(path))

    def read(self) -> bytes:
        return self.container.read(self.blob_name)


class TrackedFile:
    """Appends of a growing file (e.g. stdout.txt) go to an append blob every `interval` seconds,
    and once more when tracking stops (`with` exit or `stop()`), so nothing written is lost."""

    def __init__(self, container: Container, blob_name: str, source: Path, interval: float) -> None:
        self.container, self.blob_name, self.source, self.interval = container, blob_name, source, interval
        self._sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        container.create_append_blob(blob_name)
        self._thread = threading.Thread(target=self._loop, name=f"track-{source.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            try:
                with open(self.source, "rb") as f:
                    f.seek(self._sent)
                    data = f.read()
            except FileNotFoundError:
                return
            if data:
                self.container.append(self.blob_name, data)
                self._sent += len(data)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()

    def __enter__(self) -> TrackedFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class _OutputStorage(ABC):
    def __init__(self, container_url: str) -> None:
        self.container = Container(container_url)

    @abstractmethod
    def _prefix(self, kind: str) -> str:
        """The blob path prefix of an output kind (per task or per job)."""

    def save(self, kind: str, source: str | Path, destination: str | None = None) -> OutputFileReference:
        """Upload a file as an output of `kind`; its path below the kind is `destination`, else `source`
        as given (relative), like the .NET library's SaveAsync."""
        path = Path(source)
        relative = relative_blob_path(destination if destination is not None else str(source))
        blob = self._prefix(kind) + relative
        self.container.upload_file(blob, path)
        return OutputFileReference(self.container, kind, relative, blob)

    def save_text(self, kind: str, text: str, destination: str) -> OutputFileReference:
        import tempfile

        with tempfile.NamedTemporaryFile("w", delete=False, encoding="utf-8") as f:
            f.write(text)
        try:
            return self.save(kind, f.name, destination)
        finally:
            os.unlink(f.name)

    def list_outputs(self, kind: str) -> list[OutputFileReference]:
        prefix = self._prefix(kind)
        return [
            OutputFileReference(self.container, kind, name[len(prefix) :], name) for name in self.container.list(prefix)
        ]

    def get_output(self, kind: str, file_path: str) -> OutputFileReference:
        relative = relative_blob_path(file_path)
        return OutputFileReference(self.container, kind, relative, self._prefix(kind) + relative)

    def save_tracked(
        self, kind: str, source: str | Path, destination: str | None = None, interval: float = 15.0
    ) -> TrackedFile:
        relative = relative_blob_path(destination if destination is not None else Path(source).name)
        return TrackedFile(self.container, self._prefix(kind) + relative, Path(source), interval)


class TaskOutputStorage(_OutputStorage):
    def __init__(self, container_url: str, task_id: str) -> None:
        super().__init__(container_url)
        self.task_id = task_id

    def _prefix(self, kind: str) -> str:
        return task_prefix(self.task_id, kind)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> TaskOutputStorage:
        env = os.environ if environ is None else environ
        return cls(_container_url_from(env), env["AZ_BATCH_TASK_ID"])

    @classmethod
    def from_connection_string(cls, connection_string: str, job_id: str, task_id: str) -> TaskOutputStorage:
        return cls(output_container_url(connection_string, job_id), task_id)


class JobOutputStorage(_OutputStorage):
    def _prefix(self, kind: str) -> str:
        return job_prefix(kind)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> JobOutputStorage:
        return cls(_container_url_from(os.environ if environ is None else environ))

    @classmethod
    def from_connection_string(cls, connection_string: str, job_id: str) -> JobOutputStorage:
        return cls(output_container_url(connection_string, job_id))


def _container_url_from(env: os._Environ[str] | dict[str, str]) -> str:
    url = env.get(CONTAINER_URL_VARIABLE)
    if url:
        return url
    if connection := env.get("AZURE_STORAGE_CONNECTION_STRING"):
        return output_container_url(connection, env["AZ_BATCH_JOB_ID"])
    raise KeyError(f"set {CONTAINER_URL_VARIABLE} (see batchyard.conventions.output_container_url)")


def output_container_url(
    connection_string: str, job_id: str, lifetime: timedelta = timedelta(days=7), permission: str = "racwl"
) -> str:
    """The job's output container URL with a SAS, to hand to tasks (needs azure-storage-blob)."""
    from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

    client = BlobServiceClient.from_connection_string(connection_string)
    if client.account_name is None:
        raise ValueError("the connection string names no storage account")
    name = container_name(job_id)
    token = generate_container_sas(
        client.account_name,
        name,
        account_key=client.credential.account_key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(UTC) + lifetime,
    )
    return f"{client.url.rstrip('/')}/{name}?{token}"


def prepare_output_storage(connection_string: str, job_id: str) -> str:
    """Create the job's output container if needed (PrepareOutputStorageAsync); returns its name."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    name = container_name(job_id)
    try:
        BlobServiceClient.from_connection_string(connection_string).create_container(name)
    except ResourceExistsError:
        pass
    return name


__all__ = [
    "CONTAINER_URL_VARIABLE",
    "JobOutputKind",
    "JobOutputStorage",
    "OutputFileReference",
    "TaskOutputKind",
    "TaskOutputStorage",
    "TrackedFile",
    "output_container_url",
    "prepare_output_storage",
]
