"""Several Batch accounts on one service: made and deleted through the management plane (azure-mgmt-batch with a
token of a contributor on the service's own account, which is a role on the subscription), each with its own
keys, endpoint (`https://` + accountEndpoint) and data, isolated from the others (pools, jobs, tasks, nodes,
files, certificates, applications, keys, quotas)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.batch import BatchClient
from azure.batch import models as m
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as mm

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.api.helpers import (
    create_job,
    create_pool,
    error_code,
    idle_nodes,
    read_task_file,
    run_task,
    signed_request,
)
from tests.api.management_support import GROUP, arm_code, management_client
from tests.api.test_identity import bearer_client, create_principal, credential
from tests.conftest import Service, start_service, wait_for

OTHER = "teamb"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # two pools per account, so that a third in one account while the other has room shows per-account counting
    service = start_service(tmp_path_factory.mktemp("accounts"), "--pool-quota", "2")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def arm(svc: Service) -> BatchManagementClient:
    return management_client(svc, create_principal(svc, "--name", "subscription-operator"))


@pytest.fixture(scope="module")
def other(svc: Service, arm: BatchManagementClient) -> mm.BatchAccount:
    made = arm.batch_account.begin_create(
        GROUP, OTHER, mm.BatchAccountCreateParameters(location="local", tags={"team": "b"})
    ).result()
    return made


def client_for(svc: Service, name: str, endpoint: str, key: str) -> BatchClient:
    """What a user builds from the management plane's answers: `https://` + accountEndpoint and a key."""
    return BatchClient("https://" + endpoint, AzureNamedKeyCredential(name, key), connection_verify=str(svc.ca))


def keys_of(arm: BatchManagementClient, name: str) -> tuple[str, str]:
    keys = arm.batch_account.get_keys(GROUP, name)
    assert keys.primary is not None and keys.secondary is not None
    return keys.primary, keys.secondary


def test_an_account_is_made_with_its_own_endpoint_and_keys(
    svc: Service, arm: BatchManagementClient, other: mm.BatchAccount
) -> None:
    host = svc.https_url.removeprefix("https://")
    assert other.name == OTHER and other.tags == {"team": "b"} and other.provisioning_state == "Succeeded"
    assert other.account_endpoint == f"{host}/accounts/{OTHER}"
    assert sorted(account.name for account in arm.batch_account.list()) == sorted([DEV_ACCOUNT_NAME, OTHER])
    primary, secondary = keys_of(arm, OTHER)
    assert len({primary, secondary, DEV_ACCOUNT_KEY}) == 3
    taken = arm.location.check_name_availability("local", mm.CheckNameAvailabilityParameters(name=OTHER))
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")
    # a PUT of an existing account updates it
    again = arm.batch_account.begin_create(
        GROUP, OTHER, mm.BatchAccountCreateParameters(location="local", tags={"team": "b2"})
    ).result()
    assert again.tags == {"team": "b2"} and keys_of(arm, OTHER) == (primary, secondary)
    with pytest.raises(HttpResponseError) as invalid:
        arm.batch_account.begin_create(GROUP, "Not_Valid", mm.BatchAccountCreateParameters(location="local"))
    assert invalid.value.status_code == 400 and arm_code(invalid.value) == "AccountNameInvalid"
    with pytest.raises(HttpResponseError) as elsewhere:
        arm.batch_account.begin_create(GROUP, "teamx", mm.BatchAccountCreateParameters(location="westeurope"))
    assert arm_code(elsewhere.value) == "LocationNotAvailableForResourceType"


def test_accounts_are_isolated_from_each_other(
    svc: Service, arm: BatchManagementClient, other: mm.BatchAccount
) -> None:
    assert other.account_endpoint is not None
    own_endpoint = svc.https_url.removeprefix("https://")
    own = client_for(svc, DEV_ACCOUNT_NAME, own_endpoint, DEV_ACCOUNT_KEY)
    other_key, _ = keys_of(arm, OTHER)
    theirs = client_for(svc, OTHER, other.account_endpoint, other_key)

    # the same ids in both accounts are different pools, jobs and tasks
    for client in (own, theirs):
        create_pool(client, "shared")
        create_job(client, "j", "shared")
    own_node = wait_for(lambda: idle_nodes(own, "shared", 1), timeout=60, what="own node")[0]
    their_node = wait_for(lambda: idle_nodes(theirs, "shared", 1), timeout=60, what="other account's node")[0]
    assert own_node.id != their_node.id
    report = "echo $AZ_BATCH_ACCOUNT_NAME $AZ_BATCH_ACCOUNT_URL"
    for client in (own, theirs):
        assert run_task(client, "j", "t", f"/bin/sh -c '{report}'", timeout=60).execution_info.exit_code == 0
    # (tasks get the account's URL on the service's HTTP listener, which nodes reach without its CA)
    assert read_task_file(own, "j", "t", "stdout.txt").split() == [DEV_ACCOUNT_NAME, svc.url]
    assert read_task_file(theirs, "j", "t", "stdout.txt").split() == [OTHER, f"{svc.url}/accounts/{OTHER}"]
    their_task = theirs.get_task("j", "t")
    assert their_task.url == f"https://{other.account_endpoint}/jobs/j/tasks/t"
    assert their_task.node_info is not None and their_task.node_info.node_id == their_node.id

    # each account sees only its own
    assert [pool.id for pool in own.list_pools()] == ["shared"] == [pool.id for pool in theirs.list_pools()]
    assert [node.id for node in theirs.list_nodes("shared")] == [their_node.id]
    with pytest.raises(ResourceNotFoundError) as no_node:
        theirs.get_node("shared", own_node.id)
    assert error_code(no_node.value) == "NodeNotFound"
    with pytest.raises(HttpResponseError) as no_file:
        theirs.download_node_file("shared", own_node.id, "startup/stdout.txt")
    assert no_file.value.status_code == 404
    theirs.create_job(m.BatchJobCreateOptions(id="only-b", pool_info=m.BatchPoolInfo(pool_id="shared")))
    with pytest.raises(ResourceNotFoundError) as no_job:
        own.get_job("only-b")
    assert error_code(no_job.value) == "JobNotFound"
    assert sorted(job.id for job in theirs.list_jobs()) == ["j", "only-b"]
    assert [job.id for job in own.list_jobs()] == ["j"]

    # an account's key does not open another account
    for wrong in (
        client_for(svc, OTHER, other.account_endpoint, DEV_ACCOUNT_KEY),
        client_for(svc, DEV_ACCOUNT_NAME, own_endpoint, other_key),
    ):
        with pytest.raises(HttpResponseError) as refused:
            list(wrong.list_pools())
        assert refused.value.status_code == 403 and error_code(refused.value) == "AuthenticationFailed"

    # pool quotas count per account: the other account's second pool does not use this one's room
    create_pool(theirs, "second", nodes=0)
    with pytest.raises(HttpResponseError) as full:
        create_pool(theirs, "third", nodes=0)
    assert error_code(full.value) == "PoolQuotaReached"
    create_pool(own, "second", nodes=0)


def test_principals_have_roles_on_their_own_account(
    svc: Service, arm: BatchManagementClient, other: mm.BatchAccount
) -> None:
    assert other.account_endpoint is not None
    with_key = client_for(svc, OTHER, other.account_endpoint, keys_of(arm, OTHER)[0])
    with_key.create_job(m.BatchJobCreateOptions(id="readable", pool_info=m.BatchPoolInfo(pool_id="nowhere")))
    reader = create_principal(svc, "--name", "b-reader", "--role", "reader", "--account", OTHER)
    theirs = BatchClient("https://" + other.account_endpoint, credential(reader), connection_verify=str(svc.ca))
    assert "readable" in [job.id for job in theirs.list_jobs()]
    with pytest.raises(HttpResponseError) as write:
        theirs.create_job(m.BatchJobCreateOptions(id="by-reader", pool_info=m.BatchPoolInfo(pool_id="nowhere")))
    assert write.value.status_code == 403
    # its role is on its account only: the service's own account refuses it
    with pytest.raises(HttpResponseError) as elsewhere:
        list(bearer_client(svc, reader).list_jobs())
    assert elsewhere.value.status_code == 403
    # and on the management plane it sees its account only
    seen = management_client(svc, reader).batch_account.list()
    assert [account.name for account in seen] == [OTHER]


def test_the_account_quota_and_deleting_an_account(
    svc: Service, arm: BatchManagementClient, other: mm.BatchAccount
) -> None:
    doomed = arm.batch_account.begin_create(GROUP, "teamdel", mm.BatchAccountCreateParameters(location="local"))
    made = doomed.result()
    assert made.account_endpoint is not None
    assert arm.location.get_quotas("local").account_quota == 3  # the service's own, teamb and this one
    with pytest.raises(HttpResponseError) as over:
        arm.batch_account.begin_create(GROUP, "teamd", mm.BatchAccountCreateParameters(location="local"))
    assert over.value.status_code == 409 and arm_code(over.value) == "AccountQuotaExceeded"

    key, _ = keys_of(arm, "teamdel")
    theirs = client_for(svc, "teamdel", made.account_endpoint, key)
    create_pool(theirs, "shared")
    create_job(theirs, "j", "shared")
    wait_for(lambda: idle_nodes(theirs, "shared", 1), timeout=60, what="the account's node")
    own = client_for(svc, DEV_ACCOUNT_NAME, svc.https_url.removeprefix("https://"), DEV_ACCOUNT_KEY)
    own_pools = sorted(pool.id for pool in own.list_pools())
    arm.batch_account.begin_delete(GROUP, "teamdel").result()  # done once its pool's node is gone
    with pytest.raises(HttpResponseError) as gone:
        arm.batch_account.get(GROUP, "teamdel")
    assert gone.value.status_code == 404
    with pytest.raises(HttpResponseError) as refused:
        list(theirs.list_pools())
    assert refused.value.status_code == 404 and error_code(refused.value) == "AccountNotFound"

    # the service's own account keeps everything, and the name can be used again, empty, with new keys
    assert sorted(pool.id for pool in own.list_pools()) == own_pools
    again = arm.batch_account.begin_create(GROUP, "teamdel", mm.BatchAccountCreateParameters(location="local"))
    assert again.result().account_endpoint == made.account_endpoint
    new_key, _ = keys_of(arm, "teamdel")
    assert new_key != key
    fresh = client_for(svc, "teamdel", made.account_endpoint, new_key)
    assert list(fresh.list_pools()) == [] and list(fresh.list_jobs()) == []
    arm.batch_account.begin_delete(GROUP, "teamdel").result()


def test_accounts_survive_a_restart(svc: Service, arm: BatchManagementClient) -> None:
    made = arm.batch_account.begin_create(GROUP, "teamr", mm.BatchAccountCreateParameters(location="local")).result()
    assert made.account_endpoint is not None
    key, _ = keys_of(arm, "teamr")
    client = client_for(svc, "teamr", made.account_endpoint, key)
    create_pool(client, "kept", nodes=0)
    svc.stop()
    svc.restart()
    assert keys_of(arm, "teamr")[0] == key
    assert [pool.id for pool in client.list_pools()] == ["kept"]
    arm.batch_account.begin_delete(GROUP, "teamr").result()


def test_applications_are_the_accounts_own(svc: Service, arm: BatchManagementClient, other: mm.BatchAccount) -> None:
    arm.application.create(GROUP, OTHER, "renderer", mm.Application(display_name="B's renderer"))
    assert [app.name for app in arm.application.list(GROUP, OTHER)] == ["renderer"]
    assert [app.name for app in arm.application.list(GROUP, DEV_ACCOUNT_NAME)] == []
    with pytest.raises(HttpResponseError) as elsewhere:
        arm.application.get(GROUP, DEV_ACCOUNT_NAME, "renderer")
    assert elsewhere.value.status_code == 404
    # the same name in the other account is another application
    arm.application.create(GROUP, DEV_ACCOUNT_NAME, "renderer", mm.Application(display_name="own renderer"))
    assert arm.application.get(GROUP, OTHER, "renderer").display_name == "B's renderer"
    arm.application.delete(GROUP, OTHER, "renderer")
    assert arm.application.get(GROUP, DEV_ACCOUNT_NAME, "renderer").display_name == "own renderer"
    arm.application.delete(GROUP, DEV_ACCOUNT_NAME, "renderer")


def test_an_accounts_endpoint_serves_the_data_plane_only(
    svc: Service, arm: BatchManagementClient, other: mm.BatchAccount
) -> None:
    """The service's own routes (principals, join tokens) take the service's account key: another account's key
    below its endpoint does not reach them."""
    key, _ = keys_of(arm, OTHER)
    below = f"{svc.https_url}/accounts/{OTHER}"  # principals are made over HTTPS
    principal = {"name": "escalated", "role": "contributor", "account": DEV_ACCOUNT_NAME}
    for method, path, body in (
        ("POST", "/_batchyard/principals", principal),
        ("GET", "/_batchyard/principals", None),
        ("POST", "/_batchyard/clock", {"advanceSeconds": 60}),
        ("GET", "/_batchyard/events", None),
    ):
        answer = signed_request(below, method, path, body=body, key=key, account=OTHER, ca=svc.ca)
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
    # the data plane there answers with that key, and the service's routes about the account's own pools
    assert signed_request(below, "GET", "/jobs", key=key, account=OTHER, ca=svc.ca).status_code == 200
    token = signed_request(below, "GET", "/_batchyard/pools/kept-pool/jointoken", key=key, account=OTHER, ca=svc.ca)
    assert token.status_code == 200 and token.json()["poolId"] == f"{OTHER}/kept-pool"
