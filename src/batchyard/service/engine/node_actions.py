"""Operations on one compute node: reboot, reimage, scheduling, deallocate/start, users, health.

(uploadbatchservicelogs is service_logs.py.)

Also the node side of certificates (installed at every boot) and agent heartbeats: an agent that
sends nothing for `heartbeat_timeout` seconds is treated like one whose connection dropped.

Reboot and reimage on the local provider restart the node's agent process (reimage also wipes its
root), so the new agent says hello with a new boot id and the node boots as new: the start task
runs again and certificates are installed again. Users and certificates live in the service; the
agent gets them after each hello and keeps them in memory only.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from datetime import timedelta
from typing import Any

from batchyard.service import errors
from batchyard.service.clock import iso, parse_iso
from batchyard.service.engine import endpoints, remote_desktop, states
from batchyard.service.engine.certificates import CertificateOps
from batchyard.service.engine.core import Concern, EngineCore
from batchyard.service.engine.events import NodeBooting, NodeFreed, NodeGreeted, Tick, handles_message, reacts_to
from batchyard.service.engine.node_sessions import AgentSessionOps
from batchyard.service.engine.nodes import NodeOps
from batchyard.service.engine.records import NodeRecord
from batchyard.service.engine.task_runs import TaskRunOps
from batchyard.service.ports import AgentChannel, AgentGone

# A node whose restarted agent has not said hello by then becomes unusable.
RESTART_DEADLINE = 120.0
# Node error codes the agent's health checks report (replaced wholesale by each report).
HEALTH_CODES = frozenset({"DiskFull", "NodeDirectoryMissing", "TaskDirectoryDeleted"})
# Pool metadata: the free disk space (MB) below which a node reports DiskFull.
MIN_FREE_DISK_KEY = "batchyard-min-free-disk-mb"

_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_TASKS_RUN_STATES = ("idle", "running", "offline")
_STATE_CONFLICTS = {
    "creating": ("NodeBeingCreated", "The specified node is being created."),
    "starting": ("NodeBeingStarted", "The specified node is being started."),
    "waitingforstarttask": ("NodeBeingStarted", "The specified node is being started."),
    "rebooting": ("NodeBeingRebooted", "The specified node is being rebooted."),
    "reimaging": ("NodeBeingReimaged", "The specified node is being reimaged."),
    "unusable": ("NodeStateUnusable", "The state of the specified node is unusable."),
    "leavingpool": ("OperationInvalidForCurrentState", "The specified node is leaving the pool."),
    "unknown": ("OperationInvalidForCurrentState", "The Batch service has lost contact with the node."),
    "deallocating": ("OperationInvalidForCurrentState", "The specified node is being deallocated."),
    "deallocated": ("OperationInvalidForCurrentState", "The specified node is deallocated."),
    "starttaskfailed": ("OperationInvalidForCurrentState", "The start task of the specified node failed."),
}

STARTING_NODE_WAIT = 30.0  # seconds GetRemoteLoginSettings waits for a starting node's agent


def _state_conflict(node: NodeRecord) -> errors.BatchError:
    code, message = _STATE_CONFLICTS.get(
        node.doc["state"], ("OperationInvalidForCurrentState", "The operation is not valid in the node's state.")
    )
    return errors.conflict(code, message)


def hash_password(password: str, salt: bytes | None = None) -> dict[str, str]:
    """scrypt, so neither the store nor the agent ever holds a user's password."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return {"salt": salt.hex(), "hash": digest.hex()}


class NodeActionOps(Concern):
    def __init__(
        self,
        core: EngineCore,
        node_ops: NodeOps,
        sessions: AgentSessionOps,
        task_runs: TaskRunOps,
        certificate_ops: CertificateOps,
    ) -> None:
        super().__init__(core)
        self.node_ops = node_ops
        self.sessions = sessions
        self.task_runs = task_runs
        self.certificate_ops = certificate_ops
        self._restarting: dict[str, float] = {}  # node id -> monotonic deadline of its agent restart

    # --- reboot, reimage ------------------------------------------------------------------------

    def restart_node(self, node: NodeRecord, kind: str, option: str) -> None:
        """Reboot (kind "reboot") or reimage ("reimage") a node once its tasks allow (the option)."""
        if not self.core.provider_of(node).starts_agents and node.session is None:
            raise errors.conflict(
                "OperationNotValidOnNode", "The node's agent runs on another host and is not connected now."
            )
        if node.private.leaving is not None or node.doc["state"] not in (
            *_TASKS_RUN_STATES,
            "starttaskfailed",
            "unusable",
            "unknown",
        ):
            raise _state_conflict(node)
        now = self.core.now()
        node.private.action = {"kind": kind, "option": option}
        target = "rebooting" if kind == "reboot" else "reimaging"
        states.move(node.doc, states.NODE, target, now, previous=False, owner=node.pool_key)
        if option in ("requeue", "terminate"):
            self.task_runs.end_node_runs(node, requeue=option == "requeue", now=now)
        self.core.save_node(node)
        self._maybe_restart(node)

    def _maybe_restart(self, node: NodeRecord) -> None:
        action = node.private.action or {}
        if action.get("kind") not in ("reboot", "reimage", "deallocate") or node.id in self._restarting:
            return
        if any(run.occupies_node for run in node.runs.values()):
            return  # taskcompletion/retaineddata: after the last task
        if action["option"] == "retaineddata" and self.store.retained_until(node.id) > self.core.now().timestamp():
            return  # housekeeping looks again
        self._restarting[node.id] = time.monotonic() + RESTART_DEADLINE
        if action["kind"] == "deallocate":
            self.core.spawn(self._deallocate(node))
        else:
            self.core.spawn(self._restart_agent(node, wipe=action["kind"] == "reimage"))

    async def _restart_agent(self, node: NodeRecord, wipe: bool) -> None:
        provider = self.core.provider_of(node)
        if provider.starts_agents:
            await provider.stop_node(node.id, wipe=wipe)
        with self.store.transaction():
            node.private.action = None
            node.private.certificates = []
            if wipe:
                node.private.users = {}  # a new OS disk has none of the old accounts
                self.store.forget_retained(node.id)  # nor the old task directories
            self.core.save_node(node)
        if not provider.starts_agents:  # its agent starts itself again (agent/main.py), wiping its root for a reimage
            if node.session is not None:
                node.session.send({"t": "restart", "wipe": wipe})
            return
        await provider.start_node(self.node_ops.node_launch(node))
        # Until the new agent says hello (`_boot_node`), `_restarting` keeps the node from counting as lost.

    # --- deallocate, start ----------------------------------------------------------------------

    def deallocate_node(self, node: NodeRecord, option: str) -> None:
        if not self.core.provider_of(node).starts_agents:
            # Nothing here could start its agent again.
            raise errors.conflict("OperationNotValidOnNode", "Nodes on other hosts cannot be deallocated.")
        if node.private.leaving is not None or node.doc["state"] not in _TASKS_RUN_STATES:
            raise _state_conflict(node)
        now = self.core.now()
        node.private.action = {"kind": "deallocate", "option": option}
        self.core.set_node_state(node, "deallocating", now)
        if option in ("requeue", "terminate"):
            self.task_runs.end_node_runs(node, requeue=option == "requeue", now=now)
        self.core.save_node(node)
        self._maybe_restart(node)

    async def _deallocate(self, node: NodeRecord) -> None:
        await self.core.provider_of(node).stop_node(node.id, wipe=False)
        with self.store.transaction():
            self._restarting.pop(node.id, None)
            node.private.action = None
            node.private.certificates = []
            node.lost_at = None  # no agent, on purpose
            if node.id in self.nodes and node.doc["state"] == "deallocating":
                self.core.set_node_state(node, "deallocated", self.core.now())
            self.core.save_node(node)

    def start_node(self, node: NodeRecord) -> None:
        if node.doc["state"] != "deallocated":
            raise errors.conflict("OperationInvalidForCurrentState", "Only a deallocated node can be started.")
        now = self.core.now()
        self.core.set_node_state(node, "starting", now)
        self._restarting[node.id] = time.monotonic() + RESTART_DEADLINE
        self.core.spawn(self.node_ops.launch_agent(node))

    # --- scheduling -----------------------------------------------------------------------------

    def disable_scheduling(self, node: NodeRecord, option: str) -> None:
        if node.doc.get("schedulingState", "enabled") == "disabled":
            raise errors.conflict(
                "NodeAlreadyInTargetSchedulingState", "The specified node is already in the target scheduling state."
            )
        if node.private.leaving is not None or node.doc["state"] in ("leavingpool", "deallocating", "deallocated"):
            raise _state_conflict(node)
        now = self.core.now()
        node.doc["schedulingState"] = "disabled"
        if option in ("requeue", "terminate"):
            self.task_runs.end_node_runs(node, requeue=option == "requeue", now=now)
        self.node_ops.mark_node_free(node, now)
        self.core.save_node(node)

    def enable_scheduling(self, node: NodeRecord) -> None:
        if node.doc.get("schedulingState", "enabled") == "enabled":
            raise errors.conflict(
                "NodeAlreadyInTargetSchedulingState", "The specified node is already in the target scheduling state."
            )
        node.doc["schedulingState"] = "enabled"
        if node.doc["state"] == "offline":
            self.core.set_node_state(node, "idle", self.core.now())
        self.core.save_node(node)
        self.core.kick()

    # --- reactions to the node lifecycle -------------------------------------------------------------

    @reacts_to(NodeFreed)
    def _restart_when_free(self, event: NodeFreed) -> None:
        self._maybe_restart(event.node)

    @reacts_to(NodeBooting)
    def _install_certificates_on_boot(self, event: NodeBooting) -> None:
        """A fresh boot: certificates first (the agent handles messages in order), then the start task."""
        node = event.node
        self._restarting.pop(node.id, None)
        node.private.action = None
        if node.session is not None and node.doc["state"] != "leavingpool":
            installed = self.certificate_ops.send_certificates(node, event.pool)
            node.private.certificates = installed

    @reacts_to(NodeGreeted)
    def _configure_greeted_node(self, event: NodeGreeted) -> None:
        node = event.node
        errors_now = node.doc.get("errors") or []
        kept = [error for error in errors_now if error.get("code") != "NodeAgentUnreachable"]
        if kept != errors_now:  # the agent is back: that error is over
            if kept:
                node.doc["errors"] = kept
            else:
                node.doc.pop("errors", None)
            self.core.save_node(node)
        self._send_node_config(node)
        self._send_users(node)

    @handles_message("health")
    def _health_message(self, node: NodeRecord, message: dict[str, Any]) -> None:
        self._on_health(node, message.get("errors") or [])

    def _on_health(self, node: NodeRecord, reported: list[dict[str, Any]]) -> None:
        kept = [error for error in node.doc.get("errors") or [] if error.get("code") not in HEALTH_CODES]
        fresh = [error for error in reported if error.get("code") in HEALTH_CODES]
        new = kept + fresh
        if new != (node.doc.get("errors") or []):
            if new:
                node.doc["errors"] = new
            else:
                node.doc.pop("errors", None)
            self.core.save_node(node)

    def _send_node_config(self, node: NodeRecord) -> None:
        pool = self.pools.get(node.pool_key)
        metadata = {item.get("name"): item.get("value") for item in (pool.doc.get("metadata") or [])} if pool else {}
        try:
            min_free = float(metadata.get(MIN_FREE_DISK_KEY) or 0)
        except ValueError:
            min_free = 0.0
        if node.session is not None:
            node.session.send({"t": "config", "minFreeDiskMb": min_free})

    @reacts_to(Tick, order=-1)  # before the lost-node rules see these nodes
    def _notice_silent_and_restarting_agents(self, event: Tick) -> None:
        mono = time.monotonic()
        timeout = self.settings.timing.heartbeat_timeout
        for node in list(self.nodes.values()):
            deadline = self._restarting.get(node.id)
            if deadline is not None or node.doc["state"] in ("deallocating", "deallocated"):
                node.lost_at = None  # gone on purpose: not a lost node (the base housekeeping skips it)
            if deadline is not None and mono > deadline and node.session is None:
                self._restarting.pop(node.id, None)
                node.lost_at = mono - 3600.0  # never came back: the base rules make it unusable
            session = node.session
            if session is not None and mono - node.heard_at > timeout:
                # Silent but connected (a stopped process keeps its socket): lost, like a closed connection.
                node.session = None
                node.lost_at = mono
                session.close()
                self.sessions.node_lost(node)

    @reacts_to(Tick)
    def _restart_when_retained_data_may_go(self, event: Tick) -> None:
        for node in list(self.nodes.values()):
            action = node.private.action or {}
            if action.get("option") == "retaineddata":
                self._maybe_restart(node)

    # --- users ----------------------------------------------------------------------------------

    def require_ready(self, node: NodeRecord) -> AgentChannel:
        if node.session is None or node.doc["state"] not in (*_TASKS_RUN_STATES, "starttaskfailed"):
            raise _state_conflict(node)
        return node.session

    def add_user(self, node: NodeRecord, spec: dict[str, Any]) -> None:
        self.require_ready(node)
        name = spec["name"]
        users = node.private.users
        if name.lower() in {existing.lower() for existing in users}:
            raise errors.conflict("NodeUserExists", "The specified node user already exists.")
        users[name] = self._user_record(spec, name)
        self.core.save_node(node)
        self._send_users(node)

    def replace_user(self, node: NodeRecord, name: str, spec: dict[str, Any]) -> None:
        self.require_ready(node)
        users = node.private.users
        found = next((existing for existing in users if existing.lower() == name.lower()), None)
        if found is None:
            raise errors.not_found("NodeUserNotFound", "The specified node user does not exist.")
        record = self._user_record({**spec, "isAdmin": users[found].get("isAdmin", False)}, found)
        users[found] = record
        self.core.save_node(node)
        self._send_users(node)

    def delete_user(self, node: NodeRecord, name: str) -> None:
        self.require_ready(node)
        users = node.private.users
        found = next((existing for existing in users if existing.lower() == name.lower()), None)
        if found is None:
            raise errors.not_found("NodeUserNotFound", "The specified node user does not exist.")
        del users[found]
        self.core.save_node(node)
        self._send_users(node)

    def _user_record(self, spec: dict[str, Any], name: str) -> dict[str, Any]:
        if not _USER_NAME.match(name):
            raise errors.invalid_property("name", name, "Use letters, digits, '_', '.', '-' (at most 32).")
        password, key = spec.get("password"), spec.get("sshPublicKey")
        if not password and not key:
            raise errors.missing_property("password")  # a Linux node user needs a password or a key
        if key:
            _check_public_key(key)
        now = self.core.now()
        expiry = parse_iso(spec["expiryTime"]) if spec.get("expiryTime") else now + timedelta(days=1)
        if expiry <= now:
            raise errors.invalid_property("expiryTime", spec["expiryTime"], "The expiry time is in the past.")
        return {
            "isAdmin": bool(spec.get("isAdmin", False)),
            "expiryTime": iso(expiry),
            "pw": hash_password(password) if password else None,
            "key": key or None,
        }

    def _send_users(self, node: NodeRecord) -> None:
        """The node's accounts, with time left rather than a date (the service's clock decides)."""
        if node.session is None:
            return
        now = self.core.now()
        users = [
            {
                "name": name,
                "admin": record.get("isAdmin", False),
                "ttl": (parse_iso(record["expiryTime"]) - now).total_seconds(),
                "pw": record.get("pw"),
                "key": record.get("key"),
            }
            for name, record in (node.private.users).items()
        ]
        node.session.send({"t": "users", "users": users})

    async def remote_login_settings(self, node: NodeRecord) -> dict[str, Any]:
        # Azure answers for a node still starting (its load balancer rule exists); here the node's agent
        # gives its SSH port, so wait for it a while.
        deadline = time.monotonic() + STARTING_NODE_WAIT
        while node.doc["state"] in ("creating", "starting") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        session = self.require_ready(node)
        pool_doc = self._pool_doc(node)
        if remote_desktop.is_windows_pool(pool_doc):
            settings = remote_desktop.login_settings(node.doc)
        else:
            reply = await rpc(session, {"op": "ssh"})
            if not reply.get("ok"):
                raise errors.conflict("OperationNotValidOnNode", str(reply.get("message") or "SSH is not available."))
            settings = {"remoteLoginIPAddress": reply["address"], "remoteLoginPort": int(reply["port"])}
            login = (str(reply["address"]), int(reply["port"]))
            private = node.private
            if endpoints.ipv6_enabled(pool_doc) and (private.ipv6_login_address, private.ipv6_login_port) != login:
                # forwarded from the IPv6 loopback from the next second on (engine/endpoint_forwarding.py)
                private.ipv6_login_address, private.ipv6_login_port = login
                with self.store.transaction():
                    self.core.save_node(node)
        if endpoints.ipv6_enabled(pool_doc):
            settings["ipv6RemoteLoginIPAddress"] = endpoints.IPV6_ADDRESS
            settings["ipv6RemoteLoginPort"] = settings["remoteLoginPort"]
        return settings

    def remote_desktop_file(self, node: NodeRecord) -> str:
        """GetRemoteDesktop (api-versions before 2023-05-01.17.0): the .rdp file of a Windows node."""
        self.require_ready(node)
        if not remote_desktop.is_windows_pool(self._pool_doc(node)):
            raise errors.conflict(
                "OperationNotValidOnNode",
                "Remote Desktop is only available on the nodes of Windows pools: use GetRemoteLoginSettings (SSH).",
            )
        return remote_desktop.rdp_file(node.doc)

    def _pool_doc(self, node: NodeRecord) -> dict[str, Any] | None:
        pool = self.pools.get(node.pool_key)
        return pool.doc if pool else None


async def rpc(session: AgentChannel, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    try:
        return await session.request(message, timeout=timeout)
    except AgentGone:
        raise errors.conflict("OperationInvalidForCurrentState", "The node's agent is not reachable.") from None


def _check_public_key(key: str) -> None:
    import asyncssh

    try:
        asyncssh.import_public_key(key.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise errors.invalid_property("sshPublicKey", key, "The key is not an OpenSSH public key.") from None
