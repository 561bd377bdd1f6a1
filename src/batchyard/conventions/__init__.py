"""The Azure Batch File Conventions in Python: where job and task outputs live in blob storage.

    from batchyard.conventions import TaskOutputKind, TaskOutputStorage

    storage = TaskOutputStorage.from_environment()          # inside a task
    storage.save(TaskOutputKind.TASK_OUTPUT, "frame.jpg")
    with storage.save_tracked(TaskOutputKind.TASK_LOG, "../stdout.txt", "stdout.txt", interval=15):
        ...                                                  # appends reach storage as they happen

Outputs of job J go to the container `container_name(J)` ("job-" + the normalized id), task
outputs at `<task id>/$<Kind>/<path>` and job outputs at `$<Kind>/<path>`, as the standard says,
so other tools that follow it (the .NET library, the portal) find them.
"""

from batchyard.conventions.naming import JobOutputKind, OutputKind, TaskOutputKind, container_name
from batchyard.conventions.storage import (
    CONTAINER_URL_VARIABLE,
    JobOutputStorage,
    OutputFileReference,
    TaskOutputStorage,
    TrackedFile,
    output_container_url,
    prepare_output_storage,
)

__all__ = [
    "CONTAINER_URL_VARIABLE",
    "JobOutputKind",
    "JobOutputStorage",
    "OutputFileReference",
    "OutputKind",
    "TaskOutputKind",
    "TaskOutputStorage",
    "TrackedFile",
    "container_name",
    "output_container_url",
    "prepare_output_storage",
]
