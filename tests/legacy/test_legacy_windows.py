"""A Windows pool with the legacy SDK (azure-batch 14.2.0): its node's Remote Desktop file through
`compute_node.get_remote_desktop` (GET .../rdp, gone from the SDKs of later api-versions) and its RDP login
settings.

Run by the legacy venv: `.venv-legacy/bin/python -m pytest tests/legacy -q`.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("azure.batch.batch_auth", reason="needs the legacy azure-batch 12.x-14.x SDK (.venv-legacy)")

import azure.batch.models as batchmodels  # noqa: E402

from tests.conftest import wait_for  # noqa: E402


def test_remote_desktop_of_a_windows_node(legacy_client: Any, unique: Any) -> None:
    pool_id = unique("winpool")
    legacy_client.pool.add(
        batchmodels.PoolAddParameter(
            id=pool_id,
            vm_size="STANDARD_A1_v2",
            target_dedicated_nodes=1,
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=batchmodels.ImageReference(
                    publisher="MicrosoftWindowsServer", offer="WindowsServer", sku="2019-datacenter"
                ),
                node_agent_sku_id="batch.node.windows amd64",
                windows_configuration=batchmodels.WindowsConfiguration(enable_automatic_updates=False),
            ),
        )
    )
    try:
        node = wait_for(
            lambda: [n for n in legacy_client.compute_node.list(pool_id) if n.state == "idle"],
            timeout=60,
            what="the Windows node",
        )[0]
        settings = legacy_client.compute_node.get_remote_login_settings(pool_id, node.id)
        assert settings.remote_login_port == 3389
        rdp = b"".join(legacy_client.compute_node.get_remote_desktop(pool_id, node.id)).decode()
        assert rdp.startswith(f"full address:s:{settings.remote_login_ip_address}:3389\r\n")
        pool = legacy_client.pool.get(pool_id)
        assert pool.virtual_machine_configuration.windows_configuration.enable_automatic_updates is False
    finally:
        legacy_client.pool.delete(pool_id)
