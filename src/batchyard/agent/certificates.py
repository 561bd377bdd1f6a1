"""Certificates on the node: written into each run's AZ_BATCH_CERTIFICATES_DIR before it starts.

The agent keeps the pool's certificates in memory (the service resends them at every boot) and
writes them, readable only by the task user (0600 files in a 0700 directory), as:

  sha1-<thumbprint>.pem   the certificate (PEM)
  sha1-<thumbprint>.key   its private key (unencrypted PKCS #8 PEM), for certificates added as pfx

A pool's certificate reference says who sees it (`visibility`): the start task, tasks (every other
run: job manager, preparation and release too) and remote users (into `certs` in their home).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from batchyard.agent import safe_files


def file_names(cert: dict[str, Any]) -> tuple[str, str]:
    stem = f"{cert.get('algorithm', 'sha1')}-{cert['thumbprint']}"
    return f"{stem}.pem", f"{stem}.key"


def visible_to(certs: list[dict[str, Any]], audience: str) -> list[dict[str, Any]]:
    """The certificates `audience` (starttask, task or remoteuser) may read."""
    return [cert for cert in certs if not cert.get("visibility") or audience in cert["visibility"]]


def write_into(directory: Path, certs: list[dict[str, Any]], owner: int | None = None) -> None:
    """Install `certs` in `directory` (created 0700); files are 0600 from the moment they exist.

    `owner`: the uid (and gid) that gets them, when not the agent's own user.
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    # Through a descriptor opened without following links: one left at `directory` fails here, and
    # neither the mode, the owner nor a file goes to what it points at.
    folder = safe_files.open_dir(directory)
    try:
        os.fchmod(folder, 0o700)
        if owner is not None:
            os.fchown(folder, owner, owner)
        for cert in certs:
            pem_name, key_name = file_names(cert)
            _write_private(folder, pem_name, cert["cert"], owner)
            if cert.get("key"):
                _write_private(folder, key_name, cert["key"], owner)
    finally:
        os.close(folder)


def _write_private(folder: int, name: str, text: str, owner: int | None) -> None:
    fd = safe_files.create_at(folder, name, 0o600)  # new: never through a link or hard link left there
    if owner is not None:
        os.fchown(fd, owner, owner)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode())
