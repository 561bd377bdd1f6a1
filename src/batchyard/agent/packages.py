"""Application packages on a node: download a version's zip (SAS URL), extract it under
`applications/` of the node root, and name it in the task environment.

A version already on the node (same uploaded content) is reused, not fetched again. Extraction
refuses entries that would land outside the package directory (zip-slip: `..`, absolute paths,
links) and keeps the Unix permission bits of the archive, so executables stay executable.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import stat
import threading
import zipfile
from pathlib import Path
from typing import Any

from batchyard.agent import safe_files, transfer
from batchyard.agent.transfer import TransferError

APPLICATIONS_DIR = "applications"
_MARKER = ".batchyard-package"
_FLATTEN = re.compile(r"[.\-#]")
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class PackageError(Exception):
    def __init__(self, package: dict[str, Any], reason: str) -> None:
        super().__init__(reason)
        self.failure = {
            "category": "usererror",
            "code": "ApplicationPackageDeploymentFailed",
            "message": f"Application package {package['id']} version {package['version']} could not be deployed: "
            f"{reason}",
            "details": [
                {"name": "ApplicationId", "value": package["id"]},
                {"name": "Version", "value": package["version"]},
            ],
        }


def env_names(app_id: str, version: str, default: bool) -> list[str]:
    """The variables naming a package's directory.

    `AZ_BATCH_APP_PACKAGE_<ID>_<VERSION>` (upper-cased, `.`, `-` and `#` as `_`), the same with the
    case preserved (today's Linux nodes), the 2017 documentation's `AZ_BATCH_APP_PACKAGE_<ID>#<version>`, and
    for a reference without a version (the application's default) the names without a version.
    """
    upper, preserved = _flat(app_id.upper()), _flat(app_id)
    names = [
        f"AZ_BATCH_APP_PACKAGE_{upper}_{_flat(version.upper())}",
        f"AZ_BATCH_APP_PACKAGE_{preserved}_{_flat(version)}",
    ]
    names.append(f"AZ_BATCH_APP_PACKAGE_{app_id.upper()}#{version}")
    if default:
        names += [f"AZ_BATCH_APP_PACKAGE_{upper}", f"AZ_BATCH_APP_PACKAGE_{preserved}"]
    return list(dict.fromkeys(names))


def _flat(text: str) -> str:
    return _FLATTEN.sub("_", text)


def package_dir(root: Path, package: dict[str, Any]) -> Path:
    return root / APPLICATIONS_DIR / f"{_flat(package['id'].lower())}_{_flat(package['version'].lower())}"


def _lock(key: str) -> threading.Lock:
    with _guard:
        return _locks.setdefault(key, threading.Lock())


def install(root: Path, package: dict[str, Any]) -> Path:
    """Make one package version present on the node (blocking); returns its directory."""
    target = package_dir(root, package)
    with _lock(str(target)):
        marker = target / _MARKER
        if marker.exists() and marker.read_text() == package["blob"]:
            return target  # already on the node: reused
        staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        archive = staging.with_suffix(".zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            try:
                transfer.download(package["url"], archive, None)
            except (TransferError, OSError) as exc:
                raise PackageError(package, f"download failed: {exc}") from None
            extract(archive, staging, package)
            with os.fdopen(safe_files.create(staging / _MARKER), "w") as marker_file:
                marker_file.write(package["blob"])
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            archive.unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
    return target


def extract(archive: Path, directory: Path, package: dict[str, Any]) -> None:
    """Extract with zip-slip protection, streaming each member, keeping its permission bits."""
    try:
        with zipfile.ZipFile(archive) as zf:
            directory.mkdir(parents=True)
            top = directory.resolve()
            for info in zf.infolist():
                mode = info.external_attr >> 16
                name = info.filename
                target = (top / name).resolve()
                if name.startswith("/") or "\\" in name or (target != top and top not in target.parents):
                    raise PackageError(package, f"the archive entry {name!r} leads outside the package directory")
                if stat.S_ISLNK(mode):
                    raise PackageError(package, f"the archive entry {name!r} is a symbolic link")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, os.fdopen(safe_files.create(target), "wb") as out:
                    if info.create_system == 3 and mode & 0o777:  # made on Unix: keep rwx bits
                        os.fchmod(out.fileno(), mode & 0o777)
                    shutil.copyfileobj(source, out, 1024 * 1024)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise PackageError(package, f"the package is not a valid zip file: {exc}") from None


async def install_packages(root: Path, packages: list[dict[str, Any]]) -> dict[str, str]:
    """Install every package; the environment variables that name them. Raises PackageError."""
    env: dict[str, str] = {}
    for package in packages:
        directory = await asyncio.to_thread(install, root, package)
        for name in env_names(package["id"], package["version"], bool(package.get("default"))):
            env[name] = str(directory)
    return env
