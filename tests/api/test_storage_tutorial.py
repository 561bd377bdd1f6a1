"""Acceptance: the seed's Python tutorial workflow with Azure Storage (examples/python_tutorial_storage.py)
against a service linked to Azurite, through azure-batch and azure-storage-blob."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.storage_support import shared_azurite, start_linked_service
from tests.conftest import Service

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python_tutorial_storage.py"

# The top three words of each of the example's input files (python_tutorial.INPUT_FILES).
EXPECTED = {
    "taskdata1_OUTPUT.txt": "the: 10\nlamp: 5\nkeeper: 4\n",
    "taskdata2_OUTPUT.txt": "the: 11\nriver: 5\nsea: 4\n",
    "taskdata3_OUTPUT.txt": "the: 7\ntime: 6\ndough: 4\n",
}


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_linked_service(tmp_path_factory.mktemp("tutorial"))
    yield svc
    svc.stop()


def test_python_tutorial_with_storage(linked: Service, tmp_path: Path) -> None:
    storage = shared_azurite()
    out = tmp_path / "outputs"
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--endpoint",
            linked.url,
            "--storage-connection-string",
            storage.connection_string,
            "--nodes",
            "2",
            "--timeout",
            "120",
            "--output-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert "Uploading file" in result.stdout and "Success! All tasks reached the 'Completed' state" in result.stdout
    # The client downloaded the three outputs the tasks uploaded with the container SAS.
    for name, text in EXPECTED.items():
        assert (out / name).read_text() == text, report
        assert f"Output: {name}\n{text}" in result.stdout
    # ...and cleaned up the containers, as the tutorial does.
    names = {c.name for c in storage.client().list_containers()}
    assert not names & {"application", "input", "output"}
