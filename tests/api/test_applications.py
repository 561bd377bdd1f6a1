"""Applications and packages: management (CLI and REST) with the seed's rules and quotas, the data-plane
list, deployment at pool and task level with the environment variables, reuse, zip-slip and failures."""

from __future__ import annotations

import io
import stat
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.batch.models._models import BatchNodeRebootOptions  # not exported by azure-batch 15.1.0

from tests.api.helpers import create_job, create_pool, idle_nodes, signed_request
from tests.api.storage_support import start_linked_service
from tests.conftest import Service, make_client, wait_for

MGMT = "/management/applications"


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_linked_service(tmp_path_factory.mktemp("apps"), "--application-quota", "6", "--package-quota", "3")
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def batch(linked: Service) -> Any:
    return make_client(linked.url)


def make_zip(path: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | mode) << 16
            zf.writestr(info, data)
    path.write_bytes(buffer.getvalue())
    return path


def cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "applications", "--endpoint", service.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_package(service: Service, app: str, version: str, archive: Path) -> None:
    done = cli(service, "add-package", app, version, str(archive))
    assert done.returncode == 0, done.stderr


def hello_zip(tmp_path: Path, text: str) -> Path:
    return make_zip(
        tmp_path / f"{uuid.uuid4().hex}.zip", {"bin/hello.sh": (f"#!/bin/sh\necho {text}\n".encode(), 0o755)}
    )


def app_id() -> str:
    return f"App-{uuid.uuid4().hex[:6]}"


def test_management_rules_and_the_data_plane_list(linked: Service, batch: Any, tmp_path: Path) -> None:
    app = app_id()
    created = cli(linked, "create", app, "--display-name", "Blender")
    assert created.returncode == 0, created.stderr
    # An application without an active package is not usable: the data plane does not list it.
    assert app not in {a.id for a in batch.list_applications()}
    pending = signed_request(linked.url, "PUT", f"{MGMT}/{app}/versions/0.9", body={})
    assert pending.status_code == 201 and "sig=" in pending.json()["properties"]["storageUrl"]
    not_uploaded = signed_request(linked.url, "POST", f"{MGMT}/{app}/versions/0.9/activate", body={"format": "zip"})
    assert not_uploaded.status_code == 409 and not_uploaded.json()["code"] == "ApplicationPackageBlobNotExists"

    add_package(linked, app, "2.7", hello_zip(tmp_path, "v27"))
    listed = {a.id: a for a in batch.list_applications()}
    assert listed[app].versions == ["2.7"] and listed[app].display_name == "Blender"  # 0.9 is still pending
    assert batch.get_application(app).versions == ["2.7"]

    # Package quota (3): 0.9, 2.7 and one more; the fourth is refused.
    add_package(linked, app, "2.76b", hello_zip(tmp_path, "v276b"))
    over = cli(linked, "add-package", app, "3.0", str(hello_zip(tmp_path, "v3")))
    assert over.returncode == 1 and "ApplicationPackageQuotaReached" in over.stderr

    # allowUpdates false: versions can be neither replaced nor deleted.
    assert cli(linked, "update", app, "--allow-updates", "false", "--default-version", "2.7").returncode == 0
    replace = cli(linked, "add-package", app, "2.7", str(hello_zip(tmp_path, "again")))
    assert replace.returncode == 1 and "ApplicationUpdatesNotAllowed" in replace.stderr
    assert "ApplicationUpdatesNotAllowed" in cli(linked, "delete-package", app, "2.7").stderr
    # An application with packages cannot be deleted.
    refused = signed_request(linked.url, "DELETE", f"{MGMT}/{app}")
    assert refused.status_code == 409 and refused.json()["code"] == "ApplicationHasPackages"

    assert cli(linked, "update", app, "--allow-updates", "true").returncode == 0
    for version in ("0.9", "2.7", "2.76b"):
        assert cli(linked, "delete-package", app, version).returncode == 0
    assert signed_request(linked.url, "GET", f"{MGMT}/{app}").json()["properties"]["defaultVersion"] is None
    assert signed_request(linked.url, "DELETE", f"{MGMT}/{app}").status_code == 200
    missing = signed_request(linked.url, "GET", f"/applications/{app}")
    assert missing.status_code == 404 and missing.json()["code"] == "ApplicationNotFound"


def test_bad_management_requests_are_batch_errors(linked: Service) -> None:
    bad_id = signed_request(linked.url, "PUT", f"{MGMT}/bad.id", body={"properties": {}})
    assert bad_id.status_code == 400 and bad_id.json()["code"] == "InvalidPropertyValue"
    bad_flag = signed_request(linked.url, "PUT", f"{MGMT}/{app_id()}", body={"properties": {"allowUpdates": "yes"}})
    assert bad_flag.status_code == 400
    unknown = signed_request(linked.url, "PATCH", f"{MGMT}/nope", body={"properties": {}})
    assert unknown.status_code == 404 and unknown.json()["code"] == "ApplicationNotFound"
    app = app_id()
    signed_request(linked.url, "PUT", f"{MGMT}/{app}", body={})
    no_version = signed_request(linked.url, "PATCH", f"{MGMT}/{app}", body={"properties": {"defaultVersion": "9"}})
    assert no_version.status_code == 400


def test_without_a_linked_account_packages_need_one(service: Service, client: Any) -> None:
    app = app_id()
    assert signed_request(service.url, "PUT", f"{MGMT}/{app}", body={}).status_code == 201
    refused = signed_request(service.url, "PUT", f"{MGMT}/{app}/versions/1.0", body={})
    assert refused.status_code == 409 and refused.json()["code"] == "AutoStorageNotConfigured"
    assert app not in {a.id for a in client.list_applications()}


def test_pool_and_task_packages_environment_and_reuse(linked: Service, batch: Any, tmp_path: Path) -> None:
    pool_app, task_app = app_id(), app_id()
    add_package(linked, pool_app, "1.0", hello_zip(tmp_path, "pool-app"))
    assert cli(linked, "update", pool_app, "--default-version", "1.0").returncode == 0
    add_package(linked, task_app, "2.0-beta", hello_zip(tmp_path, "task-app"))
    pool_id, job_id = f"apps-{uuid.uuid4().hex[:6]}", f"apps-job-{uuid.uuid4().hex[:6]}"
    create_pool(
        batch,
        pool_id,
        nodes=1,
        application_package_references=[m.BatchApplicationPackageReference(application_id=pool_app)],
    )
    create_job(batch, job_id, pool_id)
    wait_for(lambda: idle_nodes(batch, pool_id, 1), timeout=60, what="an idle node with the pool package")

    upper, flat = pool_app.upper().replace("-", "_"), task_app.upper().replace("-", "_")
    script = (
        f"$AZ_BATCH_APP_PACKAGE_{upper}/bin/hello.sh; $AZ_BATCH_APP_PACKAGE_{upper}_1_0/bin/hello.sh; "
        f"$AZ_BATCH_APP_PACKAGE_{flat}_2_0_BETA/bin/hello.sh; "
        f'python3 -c "import os; print(os.environ[\\"AZ_BATCH_APP_PACKAGE_{task_app.upper()}#2.0-beta\\"])"; '
        f"ls $AZ_BATCH_APP_PACKAGE_{flat}_2_0_BETA; touch $AZ_BATCH_APP_PACKAGE_{flat}_2_0_BETA/seen"
    )
    refs = [m.BatchApplicationPackageReference(application_id=task_app, version="2.0-beta")]
    outputs = []
    for index in range(2):
        task_id = f"use-{index}"
        batch.create_task(
            job_id,
            m.BatchTaskCreateOptions(
                id=task_id,
                command_line=f"/bin/bash -c '{script}'",
                application_package_references=refs,
                # Packages are shared by every task user of the node: only an admin task writes in one.
                user_identity=m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level="admin")),
            ),
        )
        task = wait_for(lambda t=task_id: _completed(batch, job_id, t), timeout=60, what=f"task {task_id}")
        assert task.execution_info.result == "success", task.execution_info.failure_info
        outputs.append(b"".join(batch.download_task_file(job_id, task_id, "stdout.txt")).decode().splitlines())
    first, second = outputs
    assert first[:3] == ["pool-app", "pool-app", "task-app"]
    assert first[3].endswith(f"applications/{task_app.lower().replace('-', '_')}_2_0_beta")
    assert first[4:] == ["bin"]
    # The second task reused the version on the node: the file the first one left is still there.
    assert second[4:] == ["bin", "seen"]

    # A rebooted node installs the pool's packages again as it boots: tasks still find them.
    node_id = next(iter(batch.list_nodes(pool_id))).id
    batch.begin_reboot_node(pool_id, node_id, BatchNodeRebootOptions(node_reboot_kind="requeue")).result(timeout=60)
    wait_for(lambda: idle_nodes(batch, pool_id, 1), timeout=60, what="the rebooted node")
    batch.create_task(
        job_id,
        m.BatchTaskCreateOptions(id="after", command_line=f"/bin/bash -c $AZ_BATCH_APP_PACKAGE_{upper}/bin/hello.sh"),
    )
    task = wait_for(lambda: _completed(batch, job_id, "after"), timeout=60, what="the task after the reboot")
    assert task.execution_info.result == "success", task.execution_info.failure_info
    assert b"".join(batch.download_task_file(job_id, "after", "stdout.txt")) == b"pool-app\n"
    batch.begin_delete_pool(pool_id, polling_interval=0.2)


def _completed(batch: Any, job_id: str, task_id: str) -> Any:
    task = batch.get_task(job_id, task_id)
    return task if task.state == "completed" else None


def test_zip_slip_fails_the_task_and_makes_a_pool_node_unusable(linked: Service, batch: Any, tmp_path: Path) -> None:
    app = app_id()
    evil = make_zip(tmp_path / "evil.zip", {"ok.txt": (b"ok", 0o644), "../../../../escaped.txt": (b"x", 0o644)})
    add_package(linked, app, "1.0", evil)
    ref = [m.BatchApplicationPackageReference(application_id=app, version="1.0")]

    pool_id, job_id = f"slip-{uuid.uuid4().hex[:6]}", f"slip-job-{uuid.uuid4().hex[:6]}"
    create_pool(batch, pool_id, nodes=1)
    create_job(batch, job_id, pool_id)
    batch.create_task(
        job_id, m.BatchTaskCreateOptions(id="slip", command_line="/bin/true", application_package_references=ref)
    )
    task = wait_for(lambda: _completed(batch, job_id, "slip"), timeout=60, what="the zip-slip task")
    failure = task.execution_info.failure_info
    assert failure.code == "ApplicationPackageDeploymentFailed" and app in failure.message
    assert "outside the package directory" in failure.message
    assert not list(linked.data_dir.rglob("escaped.txt"))

    bad_pool = f"slip-pool-{uuid.uuid4().hex[:6]}"
    create_pool(batch, bad_pool, nodes=1, application_package_references=ref)
    node = wait_for(
        lambda: next((n for n in batch.list_nodes(bad_pool) if n.state == "unusable"), None),
        timeout=60,
        what="the node to become unusable",
    )
    assert node.errors[0].code == "ApplicationPackageDeploymentFailed" and app in node.errors[0].message
    for pool in (pool_id, bad_pool):
        batch.begin_delete_pool(pool, polling_interval=0.2)


def test_a_package_that_is_no_zip_activates_and_fails_where_it_is_deployed(
    linked: Service, batch: Any, tmp_path: Path
) -> None:
    app = app_id()
    not_a_zip = tmp_path / "package.tar"
    not_a_zip.write_bytes(b"this is not a zip archive\n")
    add_package(linked, app, "1.0", not_a_zip)  # uploaded and activated, as on Azure
    listed = {p.id: p for p in batch.list_applications()}
    assert "1.0" in listed[app].versions

    pool_id, job_id = f"nozip-{uuid.uuid4().hex[:6]}", f"nozip-job-{uuid.uuid4().hex[:6]}"
    create_pool(batch, pool_id, nodes=1)
    try:
        create_job(batch, job_id, pool_id)
        ref = [m.BatchApplicationPackageReference(application_id=app, version="1.0")]
        batch.create_task(
            job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true", application_package_references=ref)
        )
        task = wait_for(lambda: _completed(batch, job_id, "t"), timeout=60, what="the task")
        failure = task.execution_info.failure_info
        assert failure.code == "ApplicationPackageDeploymentFailed" and "not a valid zip file" in failure.message
    finally:
        batch.begin_delete_pool(pool_id, polling_interval=0.2)
