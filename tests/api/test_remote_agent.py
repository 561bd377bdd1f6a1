"""An agent on "another host": it joins a pool with the pool's join token and runs tasks."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from azure.batch import models as m
from azure.batch.models._models import BatchNodeRebootOptions, BatchNodeReimageOptions  # not exported by 15.1.0

from batchyard.cli.client import API_VERSION
from tests.api.helpers import completed, create_job, create_pool
from tests.conftest import Service, passable_for_task_users, wait_for

# The service runs with the development account: so does the CLI, whatever this shell has set.
_CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}


def _join_token(service: Service, pool_id: str) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchyard.cli.main",
            "join-token",
            "--endpoint",
            service.url,
            "--pool",
            pool_id,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=_CLEAN_ENV,
    )
    return out.stdout.strip()


def _start_agent(service_url: str, root: Path, pool_id: str, token: str, *extra: str) -> subprocess.Popen[bytes]:
    passable_for_task_users(root)  # a root agent refuses a root its task users cannot reach
    args = [
        sys.executable,
        "-m",
        "batchyard.agent",
        "--service-url",
        service_url,
        "--root",
        str(root),
        "--pool",
        pool_id,
        "--join-token",
        token,
        *extra,
    ]
    return subprocess.Popen(args, env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_agent_joins_a_pool_with_its_token_and_runs_tasks(
    service: Service, client: Any, unique: Any, tmp_path: Path
) -> None:
    pool_id, job_id = unique("remote"), unique("job")
    create_pool(client, pool_id, nodes=1, metadata=[m.BatchMetadataItem(name="batchyard-provider", value="external")])
    (node,) = list(client.list_nodes(pool_id))
    assert node.state == "creating"  # nobody has claimed it yet

    wrong = _start_agent(service.url, tmp_path / "wrong", pool_id, "0" * 64)
    assert wrong.wait(30) == 2

    token = _join_token(service, pool_id)
    agent = _start_agent(service.url, tmp_path / "node", pool_id, token)
    try:
        wait_for(lambda: client.get_node(pool_id, node.id).state == "idle", what="the joined node to be idle")
        create_job(client, job_id, pool_id)
        client.create_task(
            job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/bash -c 'echo $AZ_BATCH_NODE_ID'")
        )
        task = wait_for(lambda: completed(client, job_id, "t"), what="the task")
        assert task.execution_info.exit_code == 0
        assert b"".join(client.download_task_file(job_id, "t", "stdout.txt")).decode() == f"{node.id}\n"
        assert (tmp_path / "node" / "workitems" / job_id / "job-1" / "t" / "stdout.txt").exists()

        # A restarted agent with the same root comes back as the same node.
        agent.kill()
        agent.wait(10)
        wait_for(lambda: client.get_node(pool_id, node.id).state in ("unknown", "unusable"), what="lost node")
        agent = _start_agent(service.url, tmp_path / "node", pool_id, token)
        wait_for(lambda: client.get_node(pool_id, node.id).state == "idle", what="the node to come back")
    finally:
        agent.kill()
        agent.wait(10)
        client.begin_delete_pool(pool_id)


def test_a_joined_node_reboots_and_reimages_itself(service: Service, client: Any, unique: Any, tmp_path: Path) -> None:
    """The agent on another host starts itself again (same process, same node); a reimage wipes its
    root but keeps the node's identity."""
    pool_id = unique("remote-reboot")
    create_pool(client, pool_id, nodes=1, metadata=[m.BatchMetadataItem(name="batchyard-provider", value="external")])
    (node,) = list(client.list_nodes(pool_id))
    root = tmp_path / "node"
    agent = _start_agent(service.url, root, pool_id, _join_token(service, pool_id))
    try:
        booted = wait_for(
            lambda: (n := client.get_node(pool_id, node.id)).state == "idle" and n, what="the joined node"
        )
        (root / "shared" / "left-behind.txt").write_text("from before\n")
        for kind in ("reboot", "reimage"):
            if kind == "reboot":
                client.begin_reboot_node(pool_id, node.id, BatchNodeRebootOptions(node_reboot_kind="requeue"))
            else:
                client.begin_reimage_node(pool_id, node.id, BatchNodeReimageOptions(node_reimage_option="requeue"))
            before = booted.last_boot_time
            booted = wait_for(
                lambda b=before: (
                    (n := client.get_node(pool_id, node.id)).state == "idle" and n.last_boot_time > b and n
                ),
                timeout=60,
                what=f"the node to {kind} and be idle",
            )
            assert agent.poll() is None  # the same agent process, started again in place
            assert (root / "shared" / "left-behind.txt").exists() == (kind == "reboot")
            assert (root / ".agent-identity.json").exists()
    finally:
        agent.kill()
        agent.wait(10)
        client.begin_delete_pool(pool_id)


def test_remote_login_on_the_address_the_agent_was_given(
    service: Service, client: Any, unique: Any, tmp_path: Path
) -> None:
    """An agent on another host says where its SSH server listens (here a second loopback address)."""
    import asyncio

    import asyncssh

    pool_id = unique("remote-login")
    create_pool(client, pool_id, nodes=1, metadata=[m.BatchMetadataItem(name="batchyard-provider", value="external")])
    (node,) = list(client.list_nodes(pool_id))
    token = _join_token(service, pool_id)
    agent = _start_agent(service.url, tmp_path / "node", pool_id, token, "--remote-login-address", "127.0.0.2")
    try:
        wait_for(lambda: client.get_node(pool_id, node.id).state == "idle", what="the joined node")
        user = m.BatchNodeUserCreateOptions(name="visitor", password="visitor-pass", is_admin=True)
        client.create_node_user(pool_id, node.id, user)
        login = client.get_node_remote_login_settings(pool_id, node.id)
        assert login.remote_login_ip_address == "127.0.0.2"

        async def whoami() -> str:
            async with asyncssh.connect(
                "127.0.0.2", login.remote_login_port, username="visitor", password="visitor-pass", known_hosts=None
            ) as conn:
                return str((await conn.run("echo $AZ_BATCH_NODE_ID", check=True)).stdout).strip()

        assert asyncio.run(whoami()) == node.id
    finally:
        agent.kill()
        agent.wait(10)
        client.begin_delete_pool(pool_id)


def test_join_tokens_come_from_the_running_service_to_signed_requests_only(service: Service) -> None:
    """`batchyard join-token` asks the service (it never opens the database); the route needs the account key."""
    from batchyard.protocol.messages import join_token

    token = _join_token(service, "anypool")  # the pool need not exist yet
    assert len(token) == len(join_token(b"\0" * 32, "anypool"))
    assert token != _join_token(service, "otherpool")

    unsigned = httpx.get(f"{service.url}/_batchyard/pools/anypool/jointoken", params={"api-version": API_VERSION})
    assert unsigned.status_code == 403 and token not in unsigned.text

    wrong_key = base64.b64encode(b"not the key").decode()
    refused = subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "join-token", "--endpoint", service.url, "--pool", "anypool"],
        env={**_CLEAN_ENV, "BATCHYARD_ACCOUNT_KEY": wrong_key},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "403" in refused.stderr and refused.stdout == ""


def test_an_agent_of_another_protocol_version_is_refused_and_stops(
    service: Service, client: Any, unique: Any, tmp_path: Path
) -> None:
    """An agent from another release (here: this agent, saying protocol version 0) is told why and stops."""
    pool_id = unique("oldagent")
    create_pool(client, pool_id, nodes=1, metadata=[m.BatchMetadataItem(name="batchyard-provider", value="external")])
    (node,) = list(client.list_nodes(pool_id))
    token = _join_token(service, pool_id)
    older = (
        "import argparse, sys; from batchyard.protocol import messages; messages.PROTOCOL_VERSION = 0; "
        "from batchyard.agent.command import add_agent_arguments, run_agent_command; "
        "parser = argparse.ArgumentParser(); add_agent_arguments(parser); "
        "sys.exit(run_agent_command(parser.parse_args()))"
    )
    passable_for_task_users(tmp_path / "node")
    agent = subprocess.Popen(
        [sys.executable, "-c", older, "--service-url", service.url, "--root", str(tmp_path / "node")]
        + ["--pool", pool_id, "--join-token", token],
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = agent.communicate(timeout=30)
    assert agent.returncode == 3
    assert b"the service refused this agent: this agent speaks protocol version 0, the service 1" in stderr
    assert client.get_node(pool_id, node.id).state != "idle"
