"""Certificates on the node: written into each run's AZ_BATCH_CERTIFICATES_DIR before it starts.

The agent keeps the pool's certificates in memory (the service resends them at every boot) and
writes them, readable only by the task user (0600 files in a 0700 directory), as:

  sha1-<thumbprint>.pem   the certificate (PEM)
  sha1-<thumbprint>.key   its private key (unencrypted PKCS #8 PEM), for certificates added as pfx
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def file_names(cert: dict[str, Any]) -> tuple[str, str]:
    stem = f"{cert.get('algorithm', 'sha1')}-{cert['thumbprint']}"
    return f"{stem}.pem", f"{stem}.key"


def write_into(directory: Path, certs: list[dict[str, Any]]) -> None:
    """Install `certs` in `directory` (created 0700); files are 0600 from the moment they exist."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    for cert in certs:
        pem_name, key_name = file_names(cert)
        _write_private(directory / pem_name, cert["cert"])
        if cert.get("key"):
            _write_private(directory / key_name, cert["key"])


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode())
