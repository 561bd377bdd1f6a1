"""Whom tasks run as (agent/task_users.py), through azure-batch 15.x with real agents and processes.

As root, the service's agents run a task as its `userIdentity` says: the pool's non-admin auto-user by
default, an auto-user of the task's own for task scope, root for admin elevation, or one of the pool's
`userAccounts` with the uid/gid of its `linuxUserConfiguration`. A non-admin task then reaches none of
the service's secrets (the account key in its environment, batchyard.db, the agent's files) and none of
another user's task files.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import psutil
import pytest
from azure.batch import models as m

from batchyard.agent.accounts import nss_wrapper
from tests.api.helpers import create_job, create_pool, idle_nodes, read_task_file, run_task
from tests.conftest import Service, make_client, start_service, wait_for

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="tasks run as users of their own only under a root agent")
needs_nss = pytest.mark.skipif(nss_wrapper() is None, reason="libnss-wrapper is missing (scripts/setup.sh installs it)")

ACCOUNT = "usersaccount"
KEY = base64.b64encode(secrets.token_bytes(64)).decode()
NAMED_UID, NAMED_GID = 4321, 4322
SSH_KEY = asyncssh.generate_private_key("ssh-rsa").export_private_key().decode()


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    # The key in the service's environment, where a task that could read /proc/<pid>/environ would find it.
    top = Path(tempfile.mkdtemp(prefix="batchyard-users-"))
    svc = start_service(top / "data", env={"BATCHYARD_ACCOUNT_NAME": ACCOUNT, "BATCHYARD_ACCOUNT_KEY": KEY})
    yield svc
    svc.stop()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def client(service: Service) -> Any:
    return make_client(service.url, key=KEY, name=ACCOUNT)


@pytest.fixture(scope="module")
def pools(client: Any) -> Iterator[tuple[str, str]]:
    """Two pools of one node each (two agents); the first has a named account."""
    named = m.UserAccount(
        name="alice",
        password="unused-on-linux",
        linux_user_configuration=m.LinuxUserConfiguration(uid=NAMED_UID, gid=NAMED_GID, ssh_private_key=SSH_KEY),
    )
    create_pool(client, "users-a", user_accounts=[named])
    create_pool(client, "users-b")
    for pool_id in ("users-a", "users-b"):
        wait_for(lambda pool_id=pool_id: idle_nodes(client, pool_id, 1), timeout=60, what=f"{pool_id} ready")
    create_job(client, "users-ja", "users-a")
    create_job(client, "users-jb", "users-b")
    yield "users-a", "users-b"
    for pool_id in ("users-a", "users-b"):
        client.begin_delete_pool(pool_id, polling_interval=0.2)


def _run(client: Any, job_id: str, task_id: str, script: str, **kwargs: Any) -> tuple[Any, str]:
    task = run_task(client, job_id, task_id, f"/bin/bash -c '{script}'", **kwargs)
    return task, read_task_file(client, job_id, task_id, "stdout.txt")


def _identity(scope: str = "pool", admin: bool = False) -> m.UserIdentity:
    return m.UserIdentity(
        auto_user=m.AutoUserSpecification(scope=scope, elevation_level="admin" if admin else "nonadmin")
    )


def _ids(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


SHOW = "echo uid=$(id -u); echo gid=$(id -g); echo user=$AZ_BATCH_TASK_USER; echo identity=$AZ_BATCH_TASK_USER_IDENTITY"


@as_root
def test_a_default_task_runs_as_the_pools_non_admin_auto_user(client: Any, pools: tuple[str, str]) -> None:
    first, out1 = _run(client, "users-ja", "plain-1", SHOW)
    second, out2 = _run(client, "users-ja", "plain-2", SHOW)
    assert first.execution_info.exit_code == 0 and second.execution_info.exit_code == 0
    one, two = _ids(out1), _ids(out2)
    assert one["uid"] != "0" and one["uid"] == two["uid"]  # one pool-wide auto-user
    assert one["user"] == "_azbatch" and one["identity"] == "PoolNonAdmin"


@as_root
@needs_nss
def test_whoami_finds_the_auto_user(client: Any, pools: tuple[str, str]) -> None:
    task, out = _run(client, "users-ja", "whoami", "whoami")
    assert task.execution_info.exit_code == 0 and out.strip() == "_azbatch"


@as_root
def test_task_scope_gives_each_task_a_user_of_its_own(client: Any, pools: tuple[str, str]) -> None:
    pool_user = _ids(_run(client, "users-ja", "scope-pool", SHOW)[1])["uid"]
    uids = set()
    for task_id in ("scope-task-1", "scope-task-2"):
        task, out = _run(client, "users-ja", task_id, SHOW, user_identity=_identity(scope="task"))
        assert task.execution_info.exit_code == 0
        ids = _ids(out)
        assert ids["identity"] == "TaskNonAdmin" and ids["uid"] != "0"
        uids.add(ids["uid"])
    assert len(uids) == 2 and pool_user not in uids


@as_root
def test_admin_elevation_runs_with_full_permissions(client: Any, service: Service, pools: tuple[str, str]) -> None:
    task, out = _run(
        client,
        "users-ja",
        "admin",
        f"{SHOW}; head -c 0 {service.data_dir}/batchyard.db && echo db=read",
        user_identity=_identity(admin=True),
    )
    ids = _ids(out)
    assert task.execution_info.exit_code == 0
    assert ids["uid"] == "0" and ids["identity"] == "PoolAdmin" and ids["db"] == "read"


@as_root
def test_a_named_account_runs_with_the_uid_and_gid_of_its_linux_configuration(
    client: Any, pools: tuple[str, str]
) -> None:
    script = "echo $(ls ~alice/.ssh)"
    task, out = _run(client, "users-ja", "named", SHOW, user_identity=m.UserIdentity(username="alice"))
    ids = _ids(out)
    assert task.execution_info.exit_code == 0
    assert (ids["uid"], ids["gid"], ids["user"], ids["identity"]) == (str(NAMED_UID), str(NAMED_GID), "alice", "alice")
    if nss_wrapper() is not None:  # the key pair is in the account's home, which nss_wrapper names
        _, out = _run(client, "users-ja", "named-ssh", script, user_identity=m.UserIdentity(username="alice"))
        assert {"authorized_keys", "id_rsa", "id_rsa.pub"} <= set(out.split())


@as_root
def test_an_unknown_account_fails_the_task(client: Any, pools: tuple[str, str]) -> None:
    task = run_task(client, "users-ja", "nobody", "/bin/true", user_identity=m.UserIdentity(username="nobody"))
    assert task.execution_info.result == "failure"
    assert task.execution_info.failure_info.code == "UserNotFound"


def _label(name: str) -> str:
    return name.replace(" ", "_")


def _agent_pids(node_id: str) -> list[int]:
    return [proc.pid for proc in psutil.process_iter(["cmdline"]) if node_id in (proc.info["cmdline"] or [])]


@as_root
def test_a_non_admin_task_reaches_no_secret_and_no_other_users_files(
    client: Any, service: Service, pools: tuple[str, str]
) -> None:
    secret = secrets.token_hex(8)
    owner, _ = _run(client, "users-ja", "owner", f"echo {secret} > diary.txt; sleep 0.1")
    assert owner.execution_info.exit_code == 0
    node_a = owner.node_info.node_id
    root_a = service.data_dir / "nodes" / node_a
    owner_dir = root_a / owner.node_info.task_root_directory
    assert (owner_dir / "wd" / "diary.txt").read_text().strip() == secret
    node_b = next(iter(client.list_nodes("users-b"))).id
    root_b = service.data_dir / "nodes" / node_b
    agents = _agent_pids(node_a) + _agent_pids(node_b)
    assert len(agents) == 2
    targets = {
        "service environ": f"/proc/{service.process.pid}/environ",
        "agent environ": f"/proc/{agents[0]}/environ",
        "database": f"{service.data_dir}/batchyard.db",
        "agent log": f"{root_b}/agent.log",
        "other node agent log": f"{root_a}/agent.log",
        "other task file": f"{owner_dir}/wd/diary.txt",
        "other task output": f"{owner_dir}/stdout.txt",
    }
    listings = {
        "data dir": f"{service.data_dir}",
        "other task directory": f"{owner_dir}",
        "blob cache": f"{root_b}/.batchyard",
    }
    attempts = [f"cat {path} >/dev/null 2>&1 && echo read:{_label(name)}" for name, path in targets.items()]
    attempts += [f"ls {path} >/dev/null 2>&1 && echo listed:{_label(name)}" for name, path in listings.items()]
    # Tries from another pool's node (another auto-user) and from a task-scope user of the same node.
    for job_id, task_id, kwargs in (
        ("users-jb", "snoop-other-node", {}),
        ("users-ja", "snoop-task-scope", {"user_identity": _identity(scope="task")}),
    ):
        script = "; ".join([*attempts, "grep -sqF -- " + KEY[:40] + " /proc/[0-9]*/environ && echo found:key", "true"])
        task, out = _run(client, job_id, task_id, script, **kwargs)
        assert task.execution_info.exit_code == 0, read_task_file(client, job_id, task_id, "stderr.txt")
        assert out.strip() == "", f"{task_id} reached: {out.split()}"
    # The same paths are right: an admin task reads them all.
    task, out = _run(client, "users-jb", "admin-reads", "; ".join(attempts), user_identity=_identity(admin=True))
    assert task.execution_info.exit_code is not None
    expected = [f"read:{_label(name)}" for name in targets] + [f"listed:{_label(name)}" for name in listings]
    assert sorted(out.split()) == sorted(expected)


@as_root
def test_task_files_stay_readable_through_the_files_api(client: Any, pools: tuple[str, str]) -> None:
    task, out = _run(client, "users-ja", "outputs", "echo to stdout; echo to stderr >&2; echo kept > wd-file.txt")
    assert out == "to stdout\n"
    assert read_task_file(client, "users-ja", "outputs", "stderr.txt") == "to stderr\n"
    assert read_task_file(client, "users-ja", "outputs", "wd/wd-file.txt") == "kept\n"


def test_the_key_can_come_from_a_file_and_stays_out_of_the_command_line(tmp_path: Path) -> None:
    key = base64.b64encode(secrets.token_bytes(64)).decode()
    key_file = tmp_path / "key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    svc = start_service(
        tmp_path / "data", "--account-key-file", str(key_file), env={"BATCHYARD_ACCOUNT_NAME": "filekey"}
    )
    try:
        assert list(make_client(svc.url, key=key, name="filekey").list_pools()) == []
        cmdline = Path(f"/proc/{svc.process.pid}/cmdline").read_bytes()
        assert key.encode() not in cmdline
    finally:
        svc.stop()
