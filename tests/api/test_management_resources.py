"""Applications, packages, pools and certificates through ARM (azure-mgmt-batch over HTTPS, unchanged)
sharing their state with the data plane (azure-batch): a package uploaded and activated through ARM is run
by a task, a pool made through ARM runs a data-plane job, and a data-plane pool is read, resized and
deleted through ARM. Certificates left the management API after 2024-07-01 (azure-mgmt-batch 19 has no
certificate operations): they are called as that version's contract has them, with a token."""

from __future__ import annotations

import base64
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.batch import models as m
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as mm
from azure.storage.blob import BlobClient

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.api.helpers import (
    certificate_path,
    create_job,
    create_pool,
    idle_nodes,
    read_task_file,
    run_task,
    self_signed_pfx,
    signed_request,
)
from tests.api.management_support import (
    GROUP,
    MANAGEMENT_SCOPE,
    account_path,
    arm_code,
    data_client,
    management_client,
)
from tests.api.storage_support import start_linked_service
from tests.api.test_applications import hello_zip
from tests.api.test_identity import create_principal, credential
from tests.conftest import Service, wait_for

ACCOUNT = DEV_ACCOUNT_NAME


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_linked_service(tmp_path_factory.mktemp("arm"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def builder(svc: Service) -> dict[str, Any]:
    return create_principal(svc, "--name", "builder")


@pytest.fixture(scope="module")
def arm(svc: Service, builder: dict[str, Any]) -> BatchManagementClient:
    return management_client(svc, builder)


@pytest.fixture(scope="module")
def batch(svc: Service, arm: BatchManagementClient) -> Any:
    endpoint = arm.batch_account.get(GROUP, ACCOUNT).account_endpoint
    return data_client(svc, endpoint, DEV_ACCOUNT_KEY)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def ubuntu() -> mm.DeploymentConfiguration:
    image = mm.ImageReference(publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts")
    return mm.DeploymentConfiguration(
        virtual_machine_configuration=mm.VirtualMachineConfiguration(
            image_reference=image, node_agent_sku_id="batch.node.ubuntu 22.04"
        )
    )


def fixed(dedicated: int) -> mm.ScaleSettings:
    return mm.ScaleSettings(fixed_scale=mm.FixedScaleSettings(target_dedicated_nodes=dedicated))


def test_a_package_uploaded_through_arm_runs_on_a_pool_made_through_arm(
    svc: Service, arm: BatchManagementClient, batch: Any, tmp_path: Path
) -> None:
    app = unique("Hello")
    created = arm.application.create(GROUP, ACCOUNT, app, mm.Application(display_name="Hello app"))
    assert created.id == f"{account_path()}/applications/{app}" and created.display_name == "Hello app"

    package = arm.application_package.create(GROUP, ACCOUNT, app, "1.0")
    assert package.state == mm.PackageState.PENDING and package.storage_url
    BlobClient.from_blob_url(package.storage_url).upload_blob(
        hello_zip(tmp_path, "from-arm").read_bytes(), overwrite=True
    )
    active = arm.application_package.activate(
        GROUP, ACCOUNT, app, "1.0", mm.ActivateApplicationPackageParameters(format="zip")
    )
    assert active.state == mm.PackageState.ACTIVE and active.format == "zip"
    assert arm.application.update(GROUP, ACCOUNT, app, mm.Application(default_version="1.0")).default_version == "1.0"
    assert [p.name for p in arm.application_package.list(GROUP, ACCOUNT, app)] == ["1.0"]
    assert app in {a.name for a in arm.application.list(GROUP, ACCOUNT)}
    # The data plane lists the same application with its active version.
    assert batch.get_application(app).versions == ["1.0"]

    pool_id, job_id = unique("arm-pool"), unique("arm-job")
    pool = arm.pool.create(
        GROUP,
        ACCOUNT,
        pool_id,
        mm.Pool(
            vm_size="STANDARD_D2S_V3",
            deployment_configuration=ubuntu(),
            scale_settings=fixed(1),
            application_packages=[mm.ApplicationPackageReference(id=created.id)],
            metadata=[mm.MetadataItem(name="made-by", value="arm")],
        ),
    )
    assert (
        pool.id == f"{account_path()}/pools/{pool_id}" and pool.provisioning_state == mm.PoolProvisioningState.SUCCEEDED
    )
    assert pool.application_packages[0].id == created.id
    # The data plane's pool is the same pool: a job there runs on its node, with the package deployed.
    seen = batch.get_pool(pool_id)
    assert seen.target_dedicated_nodes == 1 and seen.metadata[0].value == "arm"
    assert seen.application_package_references[0].application_id == app
    create_job(batch, job_id, pool_id)
    wait_for(lambda: idle_nodes(batch, pool_id, 1), timeout=60, what="the ARM pool's node")
    upper = app.upper().replace("-", "_")
    task = run_task(batch, job_id, "hello", f"/bin/sh -c '$AZ_BATCH_APP_PACKAGE_{upper}/bin/hello.sh'", timeout=60)
    assert task.execution_info.exit_code == 0, task.execution_info.failure_info
    assert read_task_file(batch, job_id, "hello", "stdout.txt").strip() == "from-arm"
    steady = arm.pool.get(GROUP, ACCOUNT, pool_id)
    assert steady.allocation_state == mm.AllocationState.STEADY and steady.current_dedicated_nodes == 1

    batch.begin_delete_job(job_id, polling_interval=0.2).result()
    arm.pool.begin_delete(GROUP, ACCOUNT, pool_id).result()
    with pytest.raises(HttpResponseError) as gone:
        arm.pool.get(GROUP, ACCOUNT, pool_id)
    assert gone.value.status_code == 404 and arm_code(gone.value) == "PoolNotFound"
    assert pool_id not in {p.id for p in batch.list_pools()}
    # A package in use by no pool can go, then its application.
    arm.application_package.delete(GROUP, ACCOUNT, app, "1.0")
    arm.application.delete(GROUP, ACCOUNT, app)
    assert app not in {a.name for a in arm.application.list(GROUP, ACCOUNT)}


def test_a_data_plane_pool_in_arms_shape_updated_through_arm(arm: BatchManagementClient, batch: Any) -> None:
    pool_id = unique("dp-pool")
    create_pool(
        batch,
        pool_id,
        nodes=0,
        user_accounts=[m.UserAccount(name="ops", password="Passw0rd!", elevation_level="admin")],
        enable_inter_node_communication=True,
    )
    pool = arm.pool.get(GROUP, ACCOUNT, pool_id)
    vm = pool.deployment_configuration.virtual_machine_configuration
    assert vm.node_agent_sku_id == "batch.node.ubuntu 22.04" and vm.image_reference.publisher == "canonical"
    assert pool.scale_settings.fixed_scale.target_dedicated_nodes == 0 and pool.scale_settings.auto_scale is None
    assert pool.inter_node_communication == mm.InterNodeCommunicationState.ENABLED
    assert pool.user_accounts[0].elevation_level == mm.ElevationLevel.ADMIN
    assert pool.etag and pool_id in {p.name for p in arm.pool.list_by_batch_account(GROUP, ACCOUNT)}

    # Autoscale on, through ARM's scale settings; the data plane sees the formula.
    formula = "$TargetDedicatedNodes = 0;"
    auto = mm.ScaleSettings(auto_scale=mm.AutoScaleSettings(formula=formula))
    updated = arm.pool.update(GROUP, ACCOUNT, pool_id, mm.Pool(scale_settings=auto))
    assert updated.scale_settings.auto_scale.formula == formula
    assert batch.get_pool(pool_id).enable_auto_scale is True
    disabled = arm.pool.disable_auto_scale(GROUP, ACCOUNT, pool_id)
    assert disabled.scale_settings.fixed_scale is not None and batch.get_pool(pool_id).enable_auto_scale is False

    # Metadata changed through ARM, with the pool's ETag; a stale ETag is refused and changes nothing.
    etag = arm.pool.get(GROUP, ACCOUNT, pool_id).etag
    tagged = mm.Pool(metadata=[mm.MetadataItem(name="stage", value="two")])
    arm.pool.update(GROUP, ACCOUNT, pool_id, tagged, etag=etag, match_condition=MatchConditions.IfNotModified)
    assert [(i.name, i.value) for i in batch.get_pool(pool_id).metadata] == [("stage", "two")]
    stale = mm.Pool(metadata=[mm.MetadataItem(name="stage", value="three")])
    with pytest.raises(HttpResponseError) as refused:
        arm.pool.update(GROUP, ACCOUNT, pool_id, stale, etag=etag, match_condition=MatchConditions.IfNotModified)
    assert refused.value.status_code == 412
    assert [(i.name, i.value) for i in batch.get_pool(pool_id).metadata] == [("stage", "two")]

    # A create that must not overwrite (If-None-Match: *) an existing pool is refused.
    again = mm.Pool(vm_size="standard_d2s_v3", deployment_configuration=ubuntu())
    with pytest.raises(HttpResponseError) as exists:
        arm.pool.create(GROUP, ACCOUNT, pool_id, again, match_condition=MatchConditions.IfMissing)
    assert exists.value.status_code == 412

    # A resize through ARM starts on the data plane; stopping it through ARM leaves the pool steady.
    arm.pool.update(GROUP, ACCOUNT, pool_id, mm.Pool(scale_settings=fixed(1)))
    assert batch.get_pool(pool_id).target_dedicated_nodes == 1
    arm.pool.stop_resize(GROUP, ACCOUNT, pool_id)
    wait_for(
        lambda: arm.pool.get(GROUP, ACCOUNT, pool_id).allocation_state == mm.AllocationState.STEADY,
        timeout=60,
        what="the pool steady after stopResize",
    )
    arm.pool.begin_delete(GROUP, ACCOUNT, pool_id).result()
    assert pool_id not in {p.id for p in batch.list_pools()}


def test_bad_pools_and_applications_are_arm_errors(svc: Service, arm: BatchManagementClient) -> None:
    with pytest.raises(HttpResponseError) as size:
        arm.pool.create(
            GROUP, ACCOUNT, unique("bad"), mm.Pool(vm_size="no_such_size", deployment_configuration=ubuntu())
        )
    assert size.value.status_code == 400 and arm_code(size.value) == "InvalidPropertyValue"
    assert "vmSize" in str(size.value.message)
    raw = {"properties": {"vmSize": "standard_d2s_v3", "deploymentConfiguration": {"cloudServiceConfiguration": {}}}}
    with pytest.raises(HttpResponseError) as cloud:
        arm.pool.create(GROUP, ACCOUNT, unique("bad"), raw)
    assert cloud.value.status_code == 400 and arm_code(cloud.value) == "InvalidRequestBody"
    with pytest.raises(HttpResponseError) as missing:
        arm.pool.get(GROUP, ACCOUNT, "no-such-pool")
    assert missing.value.status_code == 404 and arm_code(missing.value) == "PoolNotFound"
    with pytest.raises(HttpResponseError) as no_app:
        arm.application.get(GROUP, ACCOUNT, "no-such-app")
    assert no_app.value.status_code == 404 and arm_code(no_app.value) == "ApplicationNotFound"
    with pytest.raises(HttpResponseError) as unknown:
        arm.application.create(GROUP, ACCOUNT, unique("App"), {"properties": {"colour": "blue"}})
    assert unknown.value.status_code == 400 and arm_code(unknown.value) == "InvalidRequestBody"

    # A reader may look but not change.
    reader = management_client(svc, create_principal(svc, "--name", "viewer", "--role", "reader"))
    assert isinstance(list(reader.pool.list_by_batch_account(GROUP, ACCOUNT)), list)
    with pytest.raises(HttpResponseError) as write:
        reader.application.create(GROUP, ACCOUNT, unique("App"))
    assert write.value.status_code == 403 and arm_code(write.value) == "AuthorizationFailed"
    with pytest.raises(HttpResponseError) as pool_write:
        reader.pool.create(
            GROUP, ACCOUNT, unique("p"), mm.Pool(vm_size="standard_d2s_v3", deployment_configuration=ubuntu())
        )
    assert pool_write.value.status_code == 403


def test_a_certificate_added_through_arm_is_the_data_planes_and_cannot_go_while_a_pool_uses_it(
    svc: Service, builder: dict[str, Any], arm: BatchManagementClient, batch: Any
) -> None:
    token = credential(builder).get_token(MANAGEMENT_SCOPE).token
    http = httpx.Client(
        base_url=svc.https_url + account_path(),
        params={"api-version": "2024-07-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=str(svc.ca)),
    )
    thumbprint, pfx, _ = self_signed_pfx("secret")
    name = f"sha1-{thumbprint}"
    body = {"properties": {"format": "Pfx", "data": base64.b64encode(pfx).decode(), "password": "secret"}}
    added = http.put(f"/certificates/{name}", json=body)
    assert added.status_code == 200, added.text
    assert added.json()["properties"]["provisioningState"] == "Succeeded" and "data" not in added.json()["properties"]
    # azure-batch 15 has no certificate operations either: the data plane's own call, signed with the key.
    assert signed_request(svc.url, "GET", certificate_path(thumbprint)).json()["thumbprint"] == thumbprint
    assert name in {c["name"] for c in http.get("/certificates").json()["value"]}
    wrong = http.put(f"/certificates/sha1-{'0' * 40}", json=body)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "InvalidPropertyValue"

    # A pool made through ARM names the certificate by its ARM id; a delete then fails as the pool uses it.
    pool_id = unique("cert-pool")
    certificate_id = f"{account_path()}/certificates/{name}"
    pool = {
        "properties": {
            "vmSize": "standard_d2s_v3",
            "deploymentConfiguration": {
                "virtualMachineConfiguration": ubuntu().virtual_machine_configuration.as_dict()
            },
            "certificates": [{"id": certificate_id, "storeLocation": "CurrentUser", "visibility": ["Task"]}],
        }
    }
    made = http.put(f"/pools/{pool_id}", json=pool)
    assert made.status_code == 200, made.text
    assert made.json()["properties"]["certificates"][0]["id"] == certificate_id
    references = signed_request(svc.url, "GET", f"/pools/{pool_id}").json()["certificateReferences"]
    assert references[0]["thumbprint"] == thumbprint and references[0]["storeLocation"] == "currentuser"
    status = _delete(http, f"/certificates/{name}")
    assert status.status_code == 409 and status.json()["error"]["code"] == "CertificateInUse"
    assert http.get(f"/certificates/{name}").json()["properties"]["provisioningState"] == "Failed"
    assert http.post(f"/certificates/{name}/cancelDelete").json()["properties"]["provisioningState"] == "Succeeded"

    arm.pool.begin_delete(GROUP, ACCOUNT, pool_id).result()
    assert _delete(http, f"/certificates/{name}").status_code == 200
    gone = http.get(f"/certificates/{name}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "CertificateNotFound"


def _delete(http: httpx.Client, path: str) -> httpx.Response:
    """A long-running delete as ARM clients follow it: the Location's answer once it is no longer 202."""
    started = http.delete(path)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    for _ in range(300):
        status = http.get(location)
        if status.status_code != 202:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{path}: still deleting")


def test_the_linked_storage_account_is_the_accounts_auto_storage(arm: BatchManagementClient) -> None:
    account = arm.batch_account.get(GROUP, ACCOUNT)
    linked = account.auto_storage
    assert linked is not None and linked.storage_account_id.endswith("/storageAccounts/devstoreaccount1")
    assert linked.authentication_mode == mm.AutoStorageAuthenticationMode.STORAGE_KEYS
    before = linked.last_key_sync
    arm.batch_account.synchronize_auto_storage_keys(GROUP, ACCOUNT)
    assert arm.batch_account.get(GROUP, ACCOUNT).auto_storage.last_key_sync > before

    # Naming the linked account again (a read-modify-write) is accepted; another one is refused.
    same = mm.BatchAccountUpdateParameters(
        auto_storage=mm.AutoStorageBaseProperties(storage_account_id=linked.storage_account_id)
    )
    assert arm.batch_account.update(GROUP, ACCOUNT, same).auto_storage.storage_account_id == linked.storage_account_id
    other_id = linked.storage_account_id.replace("devstoreaccount1", "elsewhere")
    other = mm.BatchAccountUpdateParameters(auto_storage=mm.AutoStorageBaseProperties(storage_account_id=other_id))
    with pytest.raises(HttpResponseError) as refused:
        arm.batch_account.update(GROUP, ACCOUNT, other)
    assert refused.value.status_code == 400 and "devstoreaccount1" in str(refused.value.message)
