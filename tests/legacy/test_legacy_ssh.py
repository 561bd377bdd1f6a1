"""The seed's "Connect to Linux nodes" snippet with the legacy SDK (azure-batch 14.2.0), as written but
for the module paths of that SDK (`azure.batch` for `batch_service_client`, `batch_url` for `base_url`),
then an SSH login (asyncssh) with the printed address and port.

Run by the legacy venv: `.venv-legacy/bin/python -m pytest tests/legacy -q`.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pytest

pytest.importorskip("azure.batch.batch_auth", reason="needs the legacy azure-batch 12.x-14.x SDK (.venv-legacy)")
asyncssh = pytest.importorskip("asyncssh")

import azure.batch as batch  # noqa: E402
import azure.batch.batch_auth as batchauth  # noqa: E402
import azure.batch.models as batchmodels  # noqa: E402

from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME  # noqa: E402
from tests.conftest import wait_for  # noqa: E402


def test_connect_to_linux_nodes_snippet(service: Any, unique: Any, capsys: pytest.CaptureFixture[str]) -> None:
    batch_account_name = DEV_ACCOUNT_NAME
    batch_account_key = DEV_ACCOUNT_KEY
    batch_account_url = service.url
    pool_id = unique("sshpool")
    setup = batch.BatchServiceClient(batchauth.SharedKeyCredentials(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY), service.url)
    setup.pool.add(
        batchmodels.PoolAddParameter(
            id=pool_id,
            vm_size="STANDARD_A1_v2",
            target_dedicated_nodes=2,
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=batchmodels.ImageReference(
                    publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 22.04",
            ),
        )
    )
    try:
        wait_for(
            lambda: [n for n in setup.compute_node.list(pool_id) if n.state == "idle"][1:],
            timeout=60,
            what="two idle nodes",
        )
        username = "linuxuser"
        password = "seed-snippet-password"  # the snippet asks getpass.getpass()

        # --- the seed's snippet ---
        credentials = batchauth.SharedKeyCredentials(batch_account_name, batch_account_key)
        batch_client = batch.BatchServiceClient(credentials, batch_url=batch_account_url)
        user = batchmodels.ComputeNodeUser(name=username)
        user.password = password
        user.is_admin = True
        user.expiry_time = (datetime.datetime.today() + datetime.timedelta(days=30)).isoformat()
        nodes = batch_client.compute_node.list(pool_id)
        for node in nodes:
            batch_client.compute_node.add_user(pool_id, node.id, user)
            login = batch_client.compute_node.get_remote_login_settings(pool_id, node.id)
            print(
                "{0} | {1} | {2} | {3}".format(  # noqa: UP030, UP032 - the seed's code as written
                    node.id, node.state, login.remote_login_ip_address, login.remote_login_port
                )
            )
        # --- end of the snippet ---

        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 2
        for line in lines:
            node_id, state, address, port = (part.strip() for part in line.split("|"))
            assert state == "ComputeNodeState.idle"  # as in the seed's sample output

            async def login_and_run(address: str = address, port: str = port) -> str:
                async with asyncssh.connect(
                    address, int(port), username=username, password=password, known_hosts=None, client_keys=None
                ) as conn:
                    return str((await conn.run("echo $AZ_BATCH_NODE_ID", check=True)).stdout).strip()

            assert asyncio.run(login_and_run()) == node_id
    finally:
        setup.pool.delete(pool_id)
        time.sleep(0.1)
