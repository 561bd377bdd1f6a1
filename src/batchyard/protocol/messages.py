"""The agent protocol: JSON messages over one WebSocket per node, opened by the agent.

service -> agent
  welcome   {node, pool, account, accountUrl, dedicated}        after a successful hello
  run       {runs: [Run]}                                         start tasks (batched)
  kill      {aids: [aid]}                                         end these runs (whole process tree)
  ack       {aids: [aid]}                                         results recorded; forget them
  rpc       {rid, op, ...}                                        file operations (list/stat/read/delete)
  cleanup   {paths: [relative dir]}                               remove task/job directories
  shutdown  {}                                                    stop all runs and exit
agent -> service
  hello     {node, running: [aid], done: [Done]}                  first message; also after reconnect
  done      {results: [Done]}                                     finished runs (batched)
  reply     {rid, ok, ...}                                        answer to an rpc

Run:  {aid, kind: "task"|"start", job, task, dir, cmd, env, files, wall, retry}
Done: {aid, exit, start, end, failure|null, stats}
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson

AGENT_PATH = "/_agent/connect"
JOIN_PATH = "/_agent/join"
NODE_HEADER = "x-batchyard-node"
TOKEN_HEADER = "x-batchyard-token"


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def decode(data: str | bytes) -> dict[str, Any]:
    message = orjson.loads(data)
    if not isinstance(message, dict) or "t" not in message:
        raise ValueError("not an agent message")
    return message


def node_token(secret: bytes, node_id: str) -> str:
    """The credential a node's agent presents; derived, so the service stores no per-node secret."""
    return hmac.new(secret, b"node:" + node_id.encode(), hashlib.sha256).hexdigest()


def join_token(secret: bytes, pool_id: str) -> str:
    """The credential an agent on another host presents to join a pool (see README, "Nodes elsewhere")."""
    return hmac.new(secret, b"join:" + pool_id.lower().encode(), hashlib.sha256).hexdigest()
