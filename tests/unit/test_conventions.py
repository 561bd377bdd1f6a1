"""batchyard.conventions: the standard's names, and a save/list/download/tracked round trip on Azurite."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import pytest

from batchyard.conventions import (
    JobOutputKind,
    JobOutputStorage,
    TaskOutputKind,
    TaskOutputStorage,
    container_name,
    output_container_url,
    prepare_output_storage,
)
from tests.api.storage_support import shared_azurite


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("job_id", "expected"),
    [
        ("myjob", "job-myjob"),
        ("MyJob-2", "job-myjob-2"),  # lower-cased: ids are case-insensitive
        ("my_job", f"job-my-job-{sha1('my_job')}"),  # '_' is not allowed in container names
        ("a--b", f"job-a-b-{sha1('a--b')}"),  # nor consecutive hyphens
        ("trailing-", f"job-trailing-{sha1('trailing-')}"),
        ("-lead", f"job-lead-{sha1('-lead')}"),
        ("___", f"job-job-{sha1('___')}"),
        ("x" * 59, "job-" + "x" * 59),
        ("x" * 60, f"job-{'x' * 15}-{sha1('x' * 60)}"),
        ("abcdefghijklmn_pqrstuvwxyz", f"job-abcdefghijklmn-{sha1('abcdefghijklmn_pqrstuvwxyz')}"),
    ],
)
def test_container_names_follow_the_standard(job_id: str, expected: str) -> None:
    name = container_name(job_id)
    assert name == expected
    assert 3 <= len(name) <= 63 and "--" not in name and not name.endswith("-")


def test_kinds_and_bad_paths() -> None:
    assert TaskOutputKind.TASK_LOG.path_segment == "$TaskLog"
    assert TaskOutputKind.custom("Checkpoints").path_segment == "$Checkpoints"
    with pytest.raises(ValueError):
        TaskOutputKind.custom("")
    storage = TaskOutputStorage("http://127.0.0.1:1/c?sig=x", "t1")
    with pytest.raises(ValueError):
        storage.get_output(TaskOutputKind.TASK_OUTPUT, "../escape.txt")


def test_round_trip_with_tracked_saving(tmp_path: Path) -> None:
    connection = shared_azurite().connection_string
    job_id = f"Conv_{uuid.uuid4().hex[:6]}"
    name = prepare_output_storage(connection, job_id)
    assert name == container_name(job_id)
    url = output_container_url(connection, job_id)

    # In a task: the task's environment tells it the job, the task and the container.
    env = {"AZ_BATCH_JOB_ID": job_id, "AZ_BATCH_TASK_ID": "task-7", "JOB_OUTPUT_CONTAINER_URL": url}
    task = TaskOutputStorage.from_environment(env)
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "full.jpg").write_bytes(b"full")
    task.save(TaskOutputKind.TASK_OUTPUT, tmp_path / "frames" / "full.jpg", "frames/full.jpg")
    task.save_text(TaskOutputKind.TASK_PREVIEW, "small", "preview.txt")
    task.save_text(TaskOutputKind.custom("Checkpoint"), "state", "step-1.bin")
    log = tmp_path / "stdout.txt"
    log.write_text("line 1\n")
    with task.save_tracked(TaskOutputKind.TASK_LOG, log, "stdout.txt", interval=0.1) as tracked:
        time.sleep(0.3)
        with open(log, "a") as f:
            f.write("line 2\n")
        time.sleep(0.3)
        with open(log, "a") as f:
            f.write("line 3\n")  # written just before the end: the final flush carries it
    assert tracked.container.read(tracked.blob_name) == b"line 1\nline 2\nline 3\n"

    job = JobOutputStorage.from_connection_string(connection, job_id)
    job.save_text(JobOutputKind.JOB_OUTPUT, "movie", "mymovie.mp4")
    job.save_text(JobOutputKind.JOB_PREVIEW, "thumb", "mymovie_preview.mp4")

    # On the client: list by kind and download, without knowing blob names.
    client = TaskOutputStorage.from_connection_string(connection, job_id, "task-7")
    outputs = client.list_outputs(TaskOutputKind.TASK_OUTPUT)
    assert [(o.file_path, o.blob_name) for o in outputs] == [("frames/full.jpg", "task-7/$TaskOutput/frames/full.jpg")]
    outputs[0].download_to_file(tmp_path / "down" / "full.jpg")
    assert (tmp_path / "down" / "full.jpg").read_bytes() == b"full"
    assert [o.file_path for o in client.list_outputs(TaskOutputKind.TASK_PREVIEW)] == ["preview.txt"]
    assert client.get_output(TaskOutputKind.custom("Checkpoint"), "step-1.bin").read() == b"state"
    assert [o.file_path for o in client.list_outputs(TaskOutputKind.TASK_LOG)] == ["stdout.txt"]
    assert [o.file_path for o in job.list_outputs(JobOutputKind.JOB_OUTPUT)] == ["mymovie.mp4"]
    assert job.get_output(JobOutputKind.JOB_PREVIEW, "mymovie_preview.mp4").read() == b"thumb"
    assert TaskOutputStorage(url, "other-task").list_outputs(TaskOutputKind.TASK_OUTPUT) == []
