"""Node users and SSH remote login through azure-batch 15.x, logged in with a real SSH client (asyncssh).

The seed's "Connect to Linux nodes" flow: add a user to every node, print each node's login address
and port, then log in with those settings (password or key) and run commands and SFTP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from batchyard.agent.accounts import nss_wrapper, sftp_server
from tests.api.helpers import (
    add_certificate,
    create_job,
    create_pool,
    delete_pool_quietly,
    error_code,
    idle_nodes,
    pool_body,
    read_task_file,
    run_task,
    self_signed_pfx,
    signed_request,
)
from tests.conftest import Service, make_client, start_service, wait_for

POOL = "ssh-pool"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="node users get OS accounts only from an agent running as root")
needs_sftp = pytest.mark.skipif(
    sftp_server() is None or nss_wrapper() is None,
    reason="Debian's openssh-sftp-server and libnss-wrapper are missing (scripts/setup.sh installs them as root)",
)


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    # Node users log in as uids of their own: the node roots must be reachable for them, which
    # pytest's own temporary directories (mode 0700) are not.
    top = Path(tempfile.mkdtemp(prefix="batchyard-ssh-"))
    top.chmod(0o711)
    svc = start_service(top / "data")
    yield svc
    svc.stop()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def client(service: Service) -> Any:
    return make_client(service.url)


@pytest.fixture(scope="module")
def nodes(client: Any) -> Iterator[list[Any]]:
    create_pool(client, POOL, nodes=2)
    found = wait_for(lambda: idle_nodes(client, POOL, 2), timeout=60, what="two idle nodes")
    yield found
    delete_pool_quietly(client, POOL)


def _login(client: Any, node_id: str) -> tuple[str, int]:
    settings = client.get_node_remote_login_settings(POOL, node_id)
    return settings.remote_login_ip_address, settings.remote_login_port


async def _run(address: tuple[str, int], username: str, command: str, **auth: Any) -> asyncssh.SSHCompletedProcess:
    async with asyncssh.connect(
        address[0], address[1], username=username, known_hosts=None, client_keys=auth.pop("client_keys", None), **auth
    ) as conn:
        return await conn.run(command, check=False)


def run(address: tuple[str, int], username: str, command: str, **auth: Any) -> asyncssh.SSHCompletedProcess:
    return asyncio.run(_run(address, username, command, **auth))


def refused(address: tuple[str, int], username: str, **auth: Any) -> bool:
    try:
        run(address, username, "true", **auth)
    except asyncssh.PermissionDenied:
        return True
    return False


def test_seed_snippet_adds_a_user_to_every_node_and_logs_in_with_the_printed_settings(
    client: Any, nodes: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # The seed's snippet, in azure-batch 15.x terms (ComputeNodeUser is BatchNodeUserCreateOptions now).
    username, password = "linuxuser", "S3cret-pass!"
    user = m.BatchNodeUserCreateOptions(name=username)
    user.password = password
    user.is_admin = True
    user.expiry_time = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    for node in client.list_nodes(POOL):
        client.create_node_user(POOL, node.id, user)
        login = client.get_node_remote_login_settings(POOL, node.id)
        print(f"{node.id} | {node.state} | {login.remote_login_ip_address} | {login.remote_login_port}")

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        node_id, state, address, port = (part.strip() for part in line.split("|"))
        assert state.lower().endswith("idle") and address == "127.0.0.1"  # "BatchNodeState.IDLE", as the seed shows
        result = run(
            (address, int(port)), username, "pwd; echo $AZ_BATCH_NODE_ID; echo $AZ_BATCH_POOL_ID", password=password
        )
        root, seen_id, pool_id = result.stdout.splitlines()
        assert result.exit_status == 0
        assert root.endswith(f"/nodes/{node_id}") and seen_id == node_id and pool_id == POOL
        assert refused((address, int(port)), username, password="wrong")
        assert refused((address, int(port)), "nobody", password=password)
    # Every node has its own port and only its own users.
    first, second = (_login(client, node.id) for node in nodes)
    assert first[1] != second[1]
    for node in nodes:
        client.delete_node_user(POOL, node.id, username)


@needs_sftp
def test_key_login_and_sftp_of_an_admin_user(client: Any, service: Service, nodes: list[Any], tmp_path: Path) -> None:
    node_id = nodes[0].id
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode()
    client.create_node_user(
        POOL, node_id, m.BatchNodeUserCreateOptions(name="keyadmin", ssh_public_key=public, is_admin=True)
    )
    address = _login(client, node_id)
    other = asyncssh.generate_private_key("ssh-ed25519")
    assert refused(address, "keyadmin", client_keys=[other])
    result = run(address, "keyadmin", "echo hello from $USER; pwd", client_keys=[key])
    assert result.stdout.splitlines()[0] == "hello from keyadmin"

    async def sftp() -> bytes:
        async with asyncssh.connect(*address, username="keyadmin", client_keys=[key], known_hosts=None) as conn:
            async with conn.start_sftp_client() as client_sftp:
                local = tmp_path / "up.txt"
                local.write_text("uploaded over sftp\n")
                await client_sftp.put(str(local), "shared/up.txt")
                await client_sftp.get("shared/up.txt", str(tmp_path / "down.txt"))
                assert await client_sftp.realpath(".") == str(service.data_dir / "nodes" / node_id)  # starts there
                return (tmp_path / "down.txt").read_bytes()

    assert asyncio.run(sftp()) == b"uploaded over sftp\n"
    # The file is on the node, where the Batch file API sees it.
    assert b"".join(client.download_node_file(POOL, node_id, "shared/up.txt")) == b"uploaded over sftp\n"
    client.delete_node_user(POOL, node_id, "keyadmin")
    assert refused(address, "keyadmin", client_keys=[key])


@as_root
def test_non_admin_users_run_as_uids_of_their_own_and_cannot_read_secrets(
    client: Any, service: Service, nodes: list[Any]
) -> None:
    node_id = nodes[0].id
    for name, admin in (("alice", False), ("bob", False), ("boss", True)):
        client.create_node_user(
            POOL, node_id, m.BatchNodeUserCreateOptions(name=name, password=f"{name}-pass", is_admin=admin)
        )
    address = _login(client, node_id)
    root = service.data_dir / "nodes" / node_id

    def sh(user: str, command: str) -> asyncssh.SSHCompletedProcess:
        return run(address, user, command, password=f"{user}-pass")

    alice = sh("alice", "id -u; echo $HOME; pwd; umask; echo for alice only > ~/diary.txt")
    uid, home, cwd, umask = alice.stdout.split()
    assert alice.exit_status == 0 and int(uid) != 0 and umask == "0077"
    assert home == str(root / "home" / "alice") and cwd == str(root)
    bob = sh("bob", "id -u")
    assert int(bob.stdout) not in (0, int(uid))
    # Secrets of the agent and the service, and other users' files, are out of reach...
    for path in (root / "agent.log", service.data_dir / "batchyard.db", root / "home" / "alice" / "diary.txt"):
        denied = sh("bob", f"cat {path}")
        assert denied.exit_status != 0 and "Permission denied" in denied.stderr, path
    assert sh("bob", f"ls {root / 'home' / 'alice'}").exit_status != 0
    assert sh("bob", f"cat /proc/{service.process.pid}/environ").exit_status != 0  # where a key may be
    # ...while the node's own directories can be read, as when debugging a task.
    assert sh("bob", "ls workitems shared startup").exit_status == 0
    # An admin runs as the agent's user and reads everything.
    boss = sh("boss", f"id -u; cat {root / 'home' / 'alice' / 'diary.txt'}")
    assert boss.stdout.split("\n")[:2] == ["0", "for alice only"]
    for name in ("alice", "bob", "boss"):
        client.delete_node_user(POOL, node_id, name)


@as_root
@needs_sftp
def test_sftp_of_a_non_admin_user_runs_as_its_uid(
    client: Any, service: Service, nodes: list[Any], tmp_path: Path
) -> None:
    node_id = nodes[1].id
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode()
    client.create_node_user(POOL, node_id, m.BatchNodeUserCreateOptions(name="keyuser", ssh_public_key=public))
    address = _login(client, node_id)
    local = tmp_path / "up.txt"
    local.write_text("uploaded over sftp\n")

    async def sftp() -> list[str]:
        outcomes = []
        async with asyncssh.connect(*address, username="keyuser", client_keys=[key], known_hosts=None) as conn:
            async with conn.start_sftp_client() as client_sftp:
                await client_sftp.put(str(local), "home/keyuser/up.txt")
                await client_sftp.get("home/keyuser/up.txt", str(tmp_path / "down.txt"))
                outcomes.append((tmp_path / "down.txt").read_text())
                for attempt in (
                    client_sftp.get("agent.log", str(tmp_path / "agent.log")),
                    client_sftp.put(str(local), "shared/up.txt"),
                ):
                    try:
                        await attempt
                        outcomes.append("allowed")
                    except asyncssh.SFTPError as exc:
                        outcomes.append(type(exc).__name__)
        return outcomes

    assert asyncio.run(sftp()) == ["uploaded over sftp\n", "SFTPPermissionDenied", "SFTPPermissionDenied"]
    uploaded = service.data_dir / "nodes" / node_id / "home" / "keyuser" / "up.txt"
    assert uploaded.stat().st_uid != 0 and uploaded.stat().st_mode & 0o077 == 0
    client.delete_node_user(POOL, node_id, "keyuser")
    assert refused(address, "keyuser", client_keys=[key])


def test_replace_changes_the_credentials_and_delete_refuses_the_user(client: Any, nodes: list[Any]) -> None:
    node_id = nodes[1].id
    client.create_node_user(POOL, node_id, m.BatchNodeUserCreateOptions(name="swap", password="first-pass"))
    address = _login(client, node_id)
    assert run(address, "swap", "true", password="first-pass").exit_status == 0
    client.replace_node_user(POOL, node_id, "swap", m.BatchNodeUserReplaceOptions(password="second-pass"))
    assert refused(address, "swap", password="first-pass")
    assert run(address, "swap", "true", password="second-pass").exit_status == 0
    client.delete_node_user(POOL, node_id, "swap")
    assert refused(address, "swap", password="second-pass")


def test_an_expired_user_is_refused(client: Any, nodes: list[Any]) -> None:
    node_id = nodes[1].id
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    client.create_node_user(
        POOL, node_id, m.BatchNodeUserCreateOptions(name="brief", password="brief-pass", expiry_time=expiry)
    )
    address = _login(client, node_id)
    assert run(address, "brief", "true", password="brief-pass").exit_status == 0
    time.sleep(max(0.0, (expiry - dt.datetime.now(dt.UTC)).total_seconds()) + 0.5)
    assert refused(address, "brief", password="brief-pass")


def test_user_mistakes_get_batch_errors(client: Any, service: Service, nodes: list[Any]) -> None:
    node_id = nodes[0].id
    client.create_node_user(POOL, node_id, m.BatchNodeUserCreateOptions(name="dup", password="dup-pass"))
    with pytest.raises(HttpResponseError) as exists:
        client.create_node_user(POOL, node_id, m.BatchNodeUserCreateOptions(name="DUP", password="x"))
    assert exists.value.status_code == 409 and error_code(exists.value) == "NodeUserExists"
    with pytest.raises(HttpResponseError) as missing:
        client.delete_node_user(POOL, node_id, "nosuchuser")
    assert missing.value.status_code == 404 and error_code(missing.value) == "NodeUserNotFound"
    path = f"/pools/{POOL}/nodes/{node_id}/users"
    for body, code in (
        ({"name": "nokey"}, "MissingRequiredProperty"),
        ({"name": "badkey", "sshPublicKey": "ssh-rsa notakey"}, "InvalidPropertyValue"),
        ({"name": "past", "password": "p", "expiryTime": "2001-01-01T00:00:00Z"}, "InvalidPropertyValue"),
        ({"name": "bad name", "password": "p"}, "InvalidPropertyValue"),
        ({"password": "p"}, "MissingRequiredProperty"),
    ):
        answer = signed_request(service.url, "POST", path, body=body)
        assert (answer.status_code, answer.json()["code"]) == (400, code), body
    # The password never comes back: not in the node, not in its users.
    node = signed_request(service.url, "GET", f"/pools/{POOL}/nodes/{node_id}").text
    assert "dup-pass" not in node and "_users" not in node
    client.delete_node_user(POOL, node_id, "dup")


def test_certificate_visibility_decides_who_gets_it(client: Any, service: Service) -> None:
    """A certificate goes to whom its visibility names: remote users get it in `~/certs`."""
    pool = "ssh-cert-pool"
    users_pfx = self_signed_pfx("pw")
    tasks_pfx = self_signed_pfx("pw")
    refs = []
    for (thumbprint, data, _), visibility in ((users_pfx, ["remoteuser"]), (tasks_pfx, ["task"])):
        assert add_certificate(service.url, thumbprint, data, "pw").status_code == 201
        refs.append({"thumbprint": thumbprint, "thumbprintAlgorithm": "sha1", "visibility": visibility})
    start = "/bin/bash -c 'ls $AZ_BATCH_CERTIFICATES_DIR > $AZ_BATCH_NODE_SHARED_DIR/start-certs.txt 2>&1; true'"
    body = pool_body(pool, targetDedicatedNodes=1, certificateReferences=refs, startTask={"commandLine": start})
    assert signed_request(service.url, "POST", "/pools", body=body).status_code == 201
    try:
        (node,) = wait_for(lambda: idle_nodes(client, pool, 1), timeout=60, what="an idle node")
        started = b"".join(client.download_node_file(pool, node.id, "shared/start-certs.txt")).decode()
        assert "sha1-" not in started  # neither certificate is visible to the start task
        create_job(client, "ssh-cert-job", pool)
        task = run_task(client, "ssh-cert-job", "lister", "/bin/bash -c 'ls $AZ_BATCH_CERTIFICATES_DIR'")
        listed = read_task_file(client, "ssh-cert-job", "lister", "stdout.txt").split()
        assert task.execution_info.exit_code == 0 and listed == [f"sha1-{tasks_pfx[0]}.key", f"sha1-{tasks_pfx[0]}.pem"]

        client.create_node_user(pool, node.id, m.BatchNodeUserCreateOptions(name="certuser", password="cert-pass"))
        settings = client.get_node_remote_login_settings(pool, node.id)
        address = (settings.remote_login_ip_address, settings.remote_login_port)
        result = run(
            address,
            "certuser",
            "ls ~/certs; openssl pkey -noout -in ~/certs/*.key && echo readable",
            password="cert-pass",
        )
        assert result.stdout.split() == [f"sha1-{users_pfx[0]}.key", f"sha1-{users_pfx[0]}.pem", "readable"]
    finally:
        client.begin_delete_job("ssh-cert-job", polling_interval=0.2)
        signed_request(service.url, "DELETE", f"/pools/{pool}")
