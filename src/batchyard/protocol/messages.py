"""The agent protocol: JSON messages over one WebSocket per node, opened by the agent.

service -> agent
  welcome   {node, pool, account, accountUrl, dedicated,        after a successful hello; taskDirs: the
             taskDirs, userAccounts,                               multi-instance tasks still running on the node;
             commands?, osType?, lease?}                           userAccounts: the pool's named accounts
                                                                  [{name, admin, uid, gid, sshKey}];
                                                                  commands: {command: host command} the node's
                                                                  image has (agent/image_commands.py);
                                                                  osType "windows": command lines run through
                                                                  Wine (agent/wine.py)
  run       {runs: [Run]}                                         start tasks (batched)
  kill      {aids: [aid]}                                         end these runs (whole process tree)
  ack       {aids: [aid]}                                         results recorded; forget them
  rpc       {rid, op, ...}                                        file operations, on `path` kept inside
                                                                  `base` after links (agent/files.py):
                                                                  list {recursive, after, max} -> one page
                                                                  {files, next}; stat; open -> {handle, stat};
                                                                  read {handle, offset, length}; close {handle};
                                                                  delete {recursive} (a link, not its target)
  cleanup   {paths: [relative dir]}                               remove task/job directories
  endtask   {dirs: [relative dir]}                                a multi-instance task ended: end its runs and
                                                                  every process its instances left running
  shutdown  {}                                                    stop all runs and exit
  restart   {wipe}                                                stop all runs and start again in place (a
                                                                  reboot of a node on another host; wipe: reimage)
  sample    {every}                                               report resource use every `every` seconds
(A frame carries one message, or a JSON array of messages sent in the same loop turn.)
agent -> service  (frames of at most 8 MiB: the service drops the connection on one over 16 MiB)
  hello     {node, boot, pid, version, running: [aid],            first message; also after reconnect
             done: [Done]}
  done      {results: [Done]}                                     finished runs (batched)
  reply     {rid, ok, ...}                                        answer to an rpc: every rpc gets one
                                                                  (ok false with code and message on failure)
  metrics   {cpu, mem, disk, rb, wb, rops, wops, nin, nout}       resource use (agent/metrics.py), for autoscale

Run:  {aid, kind: "task"|"start"|"prep"|"release"|"packages", job, task, dir, cmd, env, files, wall, retry,
       user: {name} | {scope: "pool"|"task", admin}}   (whom it runs as: agent/task_users.py)
      built by service/engine/run_builder.py; tasks add outputs, packages or prefail; packages runs add
      packages or prefail, and images {names, registries} on a container pool; runs of a job with a
      preparation task add prepDir; runs with containerSettings add container {image, registries,
      options, workdir, mounts} (agent/container_runs.py)
      multi-instance runs add: mi, sharedFiles, session ("linger": coordination, "end": application),
      stdout/stderr (file names in the task directory when not stdout.txt/stderr.txt)
Done: {aid, exit, start, end, failure|null, stats, container?}   (container: the run's containerInfo)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

import orjson

# The protocol's version: an agent says it in its hello, and a service that speaks another one closes the
# connection with AGENT_REFUSED and a reason (agents and the service of one release always match).
PROTOCOL_VERSION = 1
AGENT_REFUSED = 4426  # WebSocket close code: this agent's protocol version is not the service's
# WebSocket close code of a service instance that is not (or no longer) the active one of several (failover):
# the agent tries the next service URL it knows.
AGENT_MOVED = 4503

AGENT_PATH = "/_agent/connect"
JOIN_PATH = "/_agent/join"
NODE_HEADER = "x-batchyard-node"
# The agent pings the service this often and counts the link as cut when a ping is not answered in time.
AGENT_PING_INTERVAL = 2.0
AGENT_PING_TIMEOUT = 4.0
AGENT_CLOSE_TIMEOUT = 1.0  # and gives up on a closing handshake that a cut link cannot carry
TOKEN_HEADER = "x-batchyard-token"


def encode(message: Mapping[str, Any]) -> bytes:
    return orjson.dumps(message)


def encode_batch(frames: list[bytes]) -> bytes:
    """Several encoded messages as one frame (a JSON array), so one loop turn costs one frame."""
    return b"[" + b",".join(frames) + b"]"


def decode_frame(data: str | bytes) -> list[dict[str, Any]]:
    """The messages of one frame: a single message object or an array of them."""
    value = orjson.loads(data)
    found = value if isinstance(value, list) else [value]
    if not all(isinstance(message, dict) and "t" in message for message in found):
        raise ValueError("not an agent message")
    return found


def lease_expiry(lease: float) -> float:
    """Seconds after the service loses an agent with this lease until the agent's runs have surely ended:
    the agent may notice the cut only after a ping interval and timeout and a closing handshake's timeout,
    then waits out the lease and kills its runs (a margin for that and for clocks that run at slightly
    different rates)."""
    return lease + AGENT_PING_INTERVAL + AGENT_PING_TIMEOUT + AGENT_CLOSE_TIMEOUT + 2.0 + lease * 0.01


def node_token(secret: bytes, node_id: str) -> str:
    """The credential a node's agent presents; derived, so the service stores no per-node secret."""
    return hmac.new(secret, b"node:" + node_id.encode(), hashlib.sha256).hexdigest()


def join_token(secret: bytes, pool_id: str) -> str:
    """The credential an agent on another host presents to join a pool (see README, "Nodes elsewhere")."""
    return hmac.new(secret, b"join:" + pool_id.lower().encode(), hashlib.sha256).hexdigest()


# --- the messages, typed (one TypedDict per message; the wire form is the same JSON object) -------------


class Run(TypedDict):
    """One run for the agent to execute (service/engine/run_builder.py builds them)."""

    aid: str
    kind: Literal["task", "start", "prep", "release", "packages"]
    dir: str
    cmd: str
    env: dict[str, str]
    files: list[dict[str, Any]]
    wall: float | None
    retry: int
    user: NotRequired[dict[str, Any]]  # {name} of a pool account, or the auto-user's {scope, admin}
    job: NotRequired[str]
    task: NotRequired[str]
    outputs: NotRequired[list[dict[str, Any]]]
    packages: NotRequired[list[dict[str, Any]]]
    prefail: NotRequired[dict[str, Any]]
    prepDir: NotRequired[str]
    container: NotRequired[dict[str, Any]]  # {image, registries, options, workdir, mounts}: run in a container
    images: NotRequired[dict[str, Any]]  # packages runs of a container pool: {names, registries} to pull
    # multi-instance runs
    mi: NotRequired[bool]
    sharedFiles: NotRequired[list[dict[str, Any]]]
    session: NotRequired[Literal["linger", "end"]]
    stdout: NotRequired[str]
    stderr: NotRequired[str]


class Done(TypedDict):
    """A finished run, as the agent reports it (and keeps until acknowledged)."""

    aid: str
    exit: int | None
    start: NotRequired[str]
    end: NotRequired[str]
    failure: NotRequired[dict[str, Any] | None]
    stats: NotRequired[dict[str, Any] | None]
    container: NotRequired[dict[str, str]]  # a run in a container: its containerInfo {containerId, state, error?}


# service -> agent


class Welcome(TypedDict):
    t: Literal["welcome"]
    node: str
    pool: str
    account: str
    accountUrl: str
    dedicated: bool
    taskDirs: list[str]
    userAccounts: NotRequired[list[dict[str, Any]]]
    commands: NotRequired[dict[str, str]]
    osType: NotRequired[Literal["linux", "windows"]]
    # Agents on other hosts: end every run after this many seconds cut off from the service.
    lease: NotRequired[float]


class RunBatch(TypedDict):
    t: Literal["run"]
    runs: list[Run]


class Kill(TypedDict):
    t: Literal["kill"]
    aids: list[str]


class Ack(TypedDict):
    t: Literal["ack"]
    aids: list[str]


class Cleanup(TypedDict):
    t: Literal["cleanup"]
    paths: list[str]


class EndTask(TypedDict):
    t: Literal["endtask"]
    dirs: list[str]


class Shutdown(TypedDict):
    t: Literal["shutdown"]


class Restart(TypedDict):
    t: Literal["restart"]
    wipe: bool


class Sample(TypedDict):
    t: Literal["sample"]
    every: float


class NodeConfig(TypedDict):
    t: Literal["config"]
    minFreeDiskMb: float


class Users(TypedDict):
    t: Literal["users"]
    users: list[dict[str, Any]]


class Certificates(TypedDict):
    t: Literal["certs"]
    certs: list[dict[str, Any]]


ServiceMessage = (
    Welcome
    | RunBatch
    | Kill
    | Ack
    | Cleanup
    | EndTask
    | Shutdown
    | Restart
    | Sample
    | NodeConfig
    | Users
    | Certificates
)
"""Every message the service sends but `rpc` (a request whose fields depend on its `op`, see AgentSession.request)."""


# agent -> service


class Hello(TypedDict):
    t: Literal["hello"]
    node: str
    boot: str
    running: list[str]
    done: list[Done]
    pid: NotRequired[int]
    version: NotRequired[int]  # absent: an agent from before versions were checked


class DoneBatch(TypedDict):
    t: Literal["done"]
    results: list[Done]


class Heartbeat(TypedDict):
    t: Literal["heartbeat"]


class Health(TypedDict):
    t: Literal["health"]
    errors: list[dict[str, Any]]


class LogsUploaded(TypedDict):
    """How an uploadbatchservicelogs upload ended, after the request was answered (agent/service_logs.py)."""

    t: Literal["logsuploaded"]
    dir: str
    ok: bool
    message: NotRequired[str]


AgentMessage = Hello | DoneBatch | Heartbeat | Health | LogsUploaded
"""Every message an agent sends but `reply` (the answer to an rpc) and `metrics` (agent/metrics.py)."""
