"""Fetch azure-batch's source distribution from PyPI (pip), unpack it, and run its own live tests
(tests/test_batch.py, unmodified) against batchyard, with this folder's devtools_testutils stand-in on
PYTHONPATH. `python tests/sdk_suite/runner.py [pytest args]` runs it by hand; tests/api/test_azure_sdk_suite.py
runs it and checks the outcome of every scenario."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from batchyard.service.tls import local_certificates, server_names

SDK_VERSION = "15.1.0"
# What the suite imports beyond the project's test dependencies: management-plane models (batch_preparers.py)
# and aiohttp (the async client), installed beside the sdist rather than into the project's environment;
# the first without their dependencies, which the environment has (azure-core) and must not be shadowed.
PREPARER_PACKAGES = ("azure-mgmt-batch==19.0.0", "azure-mgmt-core==1.6.0", "six==1.17.0")
ASYNC_PACKAGES = ("aiohttp==3.12.15",)
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = REPO / ".sdk-suite"  # gitignored: the sdist and the preparers' packages, kept between runs


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"], check=True)


def fetch_suite(cache: Path = CACHE) -> tuple[Path, Path]:
    """The unpacked sdist's tests folder, and the folder with the preparers' extra packages."""
    unpacked = cache / f"azure_batch-{SDK_VERSION}"
    site = cache / "site"
    if not (unpacked / "tests" / "test_batch.py").is_file():
        _pip("download", "--no-binary", ":all:", "--no-deps", f"azure-batch=={SDK_VERSION}", "-d", str(cache))
        with tarfile.open(cache / f"azure_batch-{SDK_VERSION}.tar.gz") as sdist:
            sdist.extractall(cache, filter="data")
    if not (site / "azure" / "mgmt" / "batch").is_dir():
        _pip("install", "--target", str(site), *ASYNC_PACKAGES)
        _pip("install", "--no-deps", "--target", str(site), *PREPARER_PACKAGES)
    return unpacked / "tests", site


def suite_certificates(directory: Path) -> dict[str, str]:
    """A CA and a certificate for 127.0.0.1 that every account's service serves (`--tls-cert`), and the
    environment that makes requests and aiohttp trust it (aiohttp reads it when imported)."""
    files = local_certificates(directory, server_names("127.0.0.1", []))
    assert files.ca is not None
    tls = directory / "suite"
    tls.mkdir(exist_ok=True)
    shutil.copy(files.cert, tls / "server.pem")
    shutil.copy(files.key, tls / "server.key")
    ca = str(files.ca)
    return {"BATCHYARD_SDK_SUITE_TLS": str(tls), "SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca}


def run_suite(report: Path, *pytest_args: str, cache: Path = CACHE) -> dict[str, str]:
    """Run tests/test_batch.py; the outcome ("passed", "failed", "skipped") of each test by its id."""
    tests, site = fetch_suite(cache)
    env_path = ":".join([str(HERE), str(REPO), str(site)])
    command = [sys.executable, "-m", "pytest", "test_batch.py", "-p", "sdk_suite_plugin", "-p", "no:cacheprovider"]
    command += ["-q", "--rootdir", str(tests), f"--junitxml={report}", *pytest_args]
    env = {"PYTHONPATH": env_path, "AZURE_TEST_RUN_LIVE": "true"}
    with tempfile.TemporaryDirectory(prefix="batchyard-sdk-tls-") as tls:
        env |= suite_certificates(Path(tls))
        subprocess.run(command, cwd=tests, env=_base_env() | env, check=False, timeout=900)
    return outcomes(report)


def _base_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "AZURE_", "BATCHYARD_", "SSL_", "REQUESTS_"))
    }


def outcomes(report: Path) -> dict[str, str]:
    results: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        results[case.attrib["name"]] = outcome
    return results


if __name__ == "__main__":
    found = run_suite(CACHE / "report.xml", *sys.argv[1:])
    passed = sum(outcome == "passed" for outcome in found.values())
    print(f"azure-batch {SDK_VERSION} suite: {passed} of {len(found)} passed")
