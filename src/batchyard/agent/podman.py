"""The node's container runtime: rootful podman, driven through its command line.

Every invocation uses the agent's own containers.conf (written into the node root) through
CONTAINERS_CONF: the `runc` runtime where it is installed, and no default ulimits. Podman's defaults
(crun, and a `nofile` limit above what an unprivileged parent may grant) fail on hosts such as the
containers this project is developed in; the file makes the agent independent of the host's
/etc/containers/containers.conf.

Containers this agent makes carry the label `batchyard.node-root=<node root>`, so that what an earlier
agent of the node left behind can be found and removed (`remove_leftovers`).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

PODMAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_LABEL = "batchyard.node-root"
# A pull that hangs must not hold a node in `starting` or a task in `running` forever.
PULL_TIMEOUT = 600.0
COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def error_message(stderr: str) -> str:
    """Podman's final `Error: ...` line (earlier lines are warnings, later ones hints), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or [""])[-1].removeprefix("Error:").strip()


class RuntimeMissing(Exception):
    """Podman is not installed on this host."""


def containers_conf(runc: bool) -> str:
    """The agent's containers.conf: no default ulimits, and runc when the host has it."""
    text = "[containers]\ndefault_ulimits = []\n"
    if runc:
        text += '[engine]\nruntime = "runc"\n'
    return text


class Podman:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.program = shutil.which("podman", path=PODMAN_PATH)
        self.conf = root / ".batchyard" / "containers.conf"
        # Podman's own environment: nothing of the agent's (its credentials) and nothing of a task's.
        self.env = {"PATH": PODMAN_PATH, "LANG": "C.UTF-8", "CONTAINERS_CONF": str(self.conf)}

    def ready(self) -> str:
        """The podman program, once the agent's configuration is written; RuntimeMissing without one."""
        if self.program is None:
            raise RuntimeMissing("podman is not installed on the node (Debian: apt-get install podman)")
        if not self.conf.exists():
            runc = shutil.which("runc", path=PODMAN_PATH) is not None
            self.conf.parent.mkdir(parents=True, exist_ok=True)
            self.conf.write_text(containers_conf(runc))
        return self.program

    async def run(self, *args: str, timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> Outcome:
        """One podman command, its output captured. A cancelled or timed-out command is killed."""
        process = await asyncio.create_subprocess_exec(
            self.ready(),
            *args,
            env=env or self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except (asyncio.CancelledError, TimeoutError):
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return Outcome(process.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    async def image_exists(self, image: str) -> bool:
        return (await self.run("image", "exists", image)).code == 0

    async def remove(self, container: str) -> None:
        """Remove a container, stopping it at once if it still runs; one that is gone already is fine."""
        await self.run("rm", "--force", "--ignore", "--time", "0", container)

    async def stop(self, container: str, grace: float) -> None:
        """SIGTERM to the container's processes, SIGKILL after `grace` seconds (its main process, pid 1
        in the container, ignores a SIGTERM it has no handler for)."""
        await self.run("stop", "--ignore", "--time", str(max(0, round(grace))), container)

    async def never_started(self, container: str) -> bool:
        """True when the container's command never ran (the runtime could not start it)."""
        outcome = await self.run("inspect", "--format", "{{.State.Status}}", container)
        return outcome.code == 0 and outcome.out.strip() == "created"

    async def remove_leftovers(self, root: Path) -> int:
        """Remove every container an earlier agent of this node root made; how many there were."""
        if self.program is None or not self.conf.exists():  # this node never ran a container: nothing to ask
            return 0
        listed = await self.run("ps", "--all", "--quiet", "--filter", f"label={NODE_LABEL}={root}")
        ids = listed.out.split()
        if ids:
            await self.run("rm", "--force", "--ignore", "--time", "0", *ids)
        return len(ids)
