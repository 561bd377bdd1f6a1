"""An agent on another host: trade the pool's join token for a node identity, and keep it.

The identity is stored in the node root (readable by the agent's user only), so a restarted agent
comes back as the same node.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from batchyard.agent import safe_files
from batchyard.protocol import messages

IDENTITY_FILE = ".agent-identity.json"


class JoinError(Exception):
    pass


def join(service_url: str, root: Path, pool: str, join_token: str | None) -> tuple[str, str]:
    saved = root / IDENTITY_FILE
    if saved.exists():
        data = json.loads(saved.read_text())
        return data["nodeId"], data["nodeToken"]
    if not join_token:
        raise JoinError(f"no identity in {root} and no join token to claim a node of pool {pool}")
    request = urllib.request.Request(
        service_url.rstrip("/") + messages.JOIN_PATH,
        data=json.dumps({"pool": pool, "token": join_token}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise JoinError(f"the service refused to let this agent join pool {pool}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise JoinError(f"cannot reach the service at {service_url}: {exc}") from None
    root.mkdir(parents=True, exist_ok=True)
    fd = safe_files.create(saved, 0o600)  # the node root is writable by tasks: never through a link
    with os.fdopen(fd, "w") as out:
        json.dump({"nodeId": data["nodeId"], "nodeToken": data["nodeToken"]}, out)
    return data["nodeId"], data["nodeToken"]


def join_any(service_urls: Sequence[str], root: Path, pool: str, join_token: str | None) -> tuple[str, str]:
    """`join` through the first service instance that answers (failover: standby instances refuse)."""
    problem = JoinError("no service URL")
    for url in service_urls:
        try:
            return join(url, root, pool, join_token)
        except JoinError as exc:
            problem = exc
    raise problem
