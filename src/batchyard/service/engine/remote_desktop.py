"""Remote login to the nodes of Windows pools: Remote Desktop, port 3389 (README, "Windows pools").

Azure's Windows nodes are reached with RDP (the `.rdp` file of GetRemoteDesktop, or an address and port from
GetRemoteLoginSettings), not SSH. A Windows node here is a Linux process that runs its command lines through
Wine, and Wine has no Remote Desktop server: the settings and the file name the node's address and the RDP
port as Azure shows them, and nothing answers there.
"""

from __future__ import annotations

from typing import Any

from batchyard.service.models import catalog

RDP_PORT = 3389


def is_windows_pool(pool_doc: dict[str, Any] | None) -> bool:
    configuration = (pool_doc or {}).get("virtualMachineConfiguration") or {}
    return catalog.is_windows_agent_sku(configuration.get("nodeAgentSKUId"))


def login_settings(node_doc: dict[str, Any]) -> dict[str, Any]:
    """GetRemoteLoginSettings of a Windows node."""
    return {"remoteLoginIPAddress": _address(node_doc), "remoteLoginPort": RDP_PORT}


def rdp_file(node_doc: dict[str, Any]) -> str:
    """The body of GetRemoteDesktop: a Remote Desktop Connection file for the node (CRLF lines)."""
    lines = (
        f"full address:s:{_address(node_doc)}:{RDP_PORT}",
        "prompt for credentials:i:1",
        "administrative session:i:1",
    )
    return "".join(f"{line}\r\n" for line in lines)


def _address(node_doc: dict[str, Any]) -> str:
    return str(node_doc.get("ipAddress") or "127.0.0.1")
