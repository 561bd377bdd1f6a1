"""The README's first job from Python, run as a newcomer would run it (its endpoint pointed at the test service)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.api.helpers import README_ENDPOINT, readme_code_block
from tests.conftest import Service


def test_the_readme_python_first_job(service: Service, tmp_path: Path) -> None:
    snippet = readme_code_block("A first job from Python", "python")
    assert snippet.count(README_ENDPOINT) == 1
    script = tmp_path / "first_job.py"
    script.write_text(snippet.replace(README_ENDPOINT, service.url))
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = sorted(result.stdout.splitlines())
    assert len(lines) == 4, result.stdout
    for i, line in enumerate(lines):
        task, _node, *rest = line.split(" ", 2)
        assert task == f"task{i}" and rest == [f"exit code 0 hello from task {i}"], line


def test_the_readme_token_from_python(service: Service, tmp_path: Path) -> None:
    """The README's bearer-token example with the JSON that `batchyard principals create` printed."""
    snippet = readme_code_block("A token from Python", "python")
    created = subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "principals", "create", "--name", "readme"]
        + ["--data-dir", str(service.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / "principal.json").write_text(created.stdout)
    script = tmp_path / "bearer_example.py"
    script.write_text(snippet)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    pools, token = result.stdout.splitlines()
    assert pools.startswith("[") and token.startswith("eyJ") and "... expires" in token
