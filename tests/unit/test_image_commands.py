"""The commands of a node's image (models/catalog.py) and their links on the node (agent/image_commands.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchyard.agent import image_commands
from batchyard.service.models import catalog


@pytest.mark.parametrize(
    "sku", ["batch.node.ubuntu 22.04", "batch.node.ubuntu 24.04", "Batch.Node.Debian  12", "batch.node.el 9"]
)
def test_linux_images_have_python(sku: str) -> None:
    assert catalog.image_commands(sku) == {"python": "python3"}


def test_every_linux_image_says_what_it_has() -> None:
    for image in catalog.supported_images():
        if image["osType"] == "linux":
            assert "python" in catalog.image_commands(image["nodeAgentSKUId"]), image


def test_windows_images_add_no_linux_commands() -> None:
    """Their command lines run through Wine (agent/wine.py), which finds Windows programs, not the host's."""
    assert catalog.image_commands("batch.node.windows amd64") == {}


def test_unknown_images_have_nothing_extra() -> None:
    assert catalog.image_commands("batch.node.something 1") == {} == catalog.image_commands(None)


def _host(tmp_path: Path, *programs: str) -> str:
    host = tmp_path / "host-bin"
    host.mkdir()
    for name in programs:
        program = host / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    return str(host)


def test_links_to_the_host_command(tmp_path: Path) -> None:
    host = _host(tmp_path, "python3")
    directory = image_commands.install(tmp_path / "node", {"python": "python3", "pip": "pip3"}, host)
    assert os.readlink(directory / "python") == f"{host}/python3"
    assert not (directory / "pip").exists()  # the host has no pip3: nothing to link to
    # Again (every welcome), with fewer commands: the same link, and what is no longer wanted goes.
    (directory / "stale").symlink_to(f"{host}/python3")
    assert image_commands.install(tmp_path / "node", {"python": "python3"}, host) == directory
    assert sorted(p.name for p in directory.iterdir()) == ["python"]
    image_commands.install(tmp_path / "node", {}, host)
    assert list(directory.iterdir()) == []


def test_names_stay_in_the_directory(tmp_path: Path) -> None:
    host = _host(tmp_path, "python3")
    directory = image_commands.install(tmp_path / "node", {"../x": "python3", ".hidden": "python3"}, host)
    assert list(directory.iterdir()) == []
    assert not (tmp_path / "node" / ".batchyard" / "x").exists()
