"""Task and node file routes: list (optionally recursive), get (with ocp-range), properties, delete.

Files live on the node; the service asks the node's agent for them over its session.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchyard.service import errors
from batchyard.service.api.common import list_filter, service_of, url_for
from batchyard.service.api.nodes import find_node
from batchyard.service.clock import parse_iso, rfc1123, ticks
from batchyard.service.engine.records import NodeRecord
from batchyard.service.http import check_conditions, endpoint, list_response, parse_max_results
from batchyard.service.ports import AgentGone

CHUNK = 1024 * 1024
LIST_CALLS = 10  # agent pages one list request may look through to fill a page that $filter thins out
MAX_NAME = 255  # bytes of one path component (Linux NAME_MAX); a longer name cannot exist
MAX_PATH = 4096  # bytes of a whole path (Linux PATH_MAX)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class FileScope:
    """Where a file route points: a node, a base directory on it, and the URL prefix of its files."""

    def __init__(self, node: NodeRecord, base: str, url_prefix: str) -> None:
        self.node = node
        self.base = base.strip("/")
        self.url_prefix = url_prefix

    def path(self, relative: str) -> str:
        """The node-relative path of `relative` under this scope's base; `..` may not climb out of the base
        (a task's file URL reaches only that task's directory, never its neighbours or the node's)."""
        if "\x00" in relative:
            raise errors.BatchError(
                400,
                "InvalidUri",
                "The requested URI does not represent any resource on the server.",
                {"Reason": "The file path contains a NUL character."},
            )
        encoded = relative.encode(errors="surrogateescape")
        if len(encoded) > MAX_PATH or any(len(part) > MAX_NAME for part in encoded.split(b"/")):
            raise errors.not_found("FileNotFound", "The specified file does not exist.")
        parts: list[str] = []
        for part in relative.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise errors.not_found("FileNotFound", "The specified file does not exist.")
                parts.pop()
            else:
                parts.append(part)
        relative = "/".join(parts)
        return f"{self.base}/{relative}" if self.base and relative else (self.base or relative)

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        session = self.node.session
        if session is None:
            raise errors.conflict("NodeNotReady", "The compute node is not reachable at the moment.")
        try:
            # `base`: the agent keeps the path inside this directory once links are resolved.
            reply = await session.request({"op": op, "base": self.base, **args})
        except AgentGone:
            raise errors.conflict("NodeNotReady", "The compute node is not reachable at the moment.") from None
        if not reply.get("ok"):
            code = reply.get("code", "FileNotFound")
            if code == "FileNotFound":
                raise errors.not_found("FileNotFound", "The specified file does not exist.")
            status = {"InternalServerError": 500, "ServerBusy": 503}.get(code, 400)
            raise errors.BatchError(status, code, reply.get("message", "The file operation failed."))
        return reply


def _task_scope(request: Request) -> FileScope:
    service = service_of(request)
    job, doc = service.task(request.path_params["jobId"], request.path_params["taskId"])
    node_info = doc.get("nodeInfo") or {}
    node = service.find_node(node_info.get("nodeId", ""))
    if node is None:
        raise errors.conflict("TaskFilesUnavailable", "The node files for the task are unavailable.")
    prefix = url_for(request, f"/jobs/{job.doc['id']}/tasks/{doc['id']}/files")
    return FileScope(node, node_info["taskRootDirectory"], prefix)


def _node_scope(request: Request) -> FileScope:
    node = find_node(request)
    pool_id = service_of(request).pool_id_of(node)
    return FileScope(node, "", url_for(request, f"/pools/{pool_id}/nodes/{node.id}/files"))


def _properties(entry: dict[str, Any]) -> dict[str, Any]:
    props = {
        "lastModified": entry["mtime"],
        "contentLength": str(entry.get("size", 0)),  # the contract's int64 is a JSON string
        "contentType": "application/octet-stream",
        "fileMode": entry.get("mode", "0o100644"),
    }
    if entry.get("ctime"):
        props["creationTime"] = entry["ctime"]
    return props


async def _list(request: Request, scope: FileScope, kind: str) -> Response:
    keep = list_filter(request, kind)
    recursive = request.query_params.get("recursive", "false").lower() == "true"
    size = parse_max_results(request)
    # The agent lists in name order, one page at a time; the continuation is the last name it looked at.
    token = request.query_params.get("$skiptoken")
    entries: list[dict[str, Any]] = []
    for _ in range(LIST_CALLS):
        reply = await scope.call("list", path=scope.path(""), recursive=recursive, after=token, max=size - len(entries))
        entries.extend(entry for entry in reply["files"] if keep(entry))
        token = reply.get("next")
        if token is None or len(entries) >= size:
            break
    items = [
        {
            "name": entry["name"],
            "url": f"{scope.url_prefix}/{quote(entry['name'])}",
            "isDirectory": entry["isDirectory"],
            **({} if entry["isDirectory"] else {"properties": _properties(entry)}),
        }
        for entry in entries
    ]
    return list_response(request, "files", items, token)


def _file_headers(scope: FileScope, name: str, stat: dict[str, Any]) -> dict[str, str]:
    modified = parse_iso(stat["mtime"])
    headers = {
        "ETag": _file_etag(stat),
        "Last-Modified": rfc1123(modified),
        "ocp-batch-file-isdirectory": "true" if stat["isDirectory"] else "false",
        "ocp-batch-file-url": f"{scope.url_prefix}/{quote(name)}",
        "ocp-batch-file-mode": stat.get("mode", "0o100644"),
        "Content-Type": "application/octet-stream",
    }
    if stat.get("ctime"):
        headers["ocp-creation-time"] = rfc1123(parse_iso(stat["ctime"]))
    return headers


async def _stat(request: Request, scope: FileScope) -> tuple[str, dict[str, Any]]:
    name = request.path_params["filePath"]
    stat = await scope.call("stat", path=scope.path(name))
    _check_conditions(request, stat)
    return name, stat


def _check_conditions(request: Request, stat: dict[str, Any]) -> None:
    """A file's conditions, as an entity's: its ETag and its modification time (see _file_headers)."""
    check_conditions(request, {"eTag": _file_etag(stat), "lastModified": stat["mtime"]}, reading=True)


def _file_etag(stat: dict[str, Any]) -> str:
    return f"0x{ticks(parse_iso(stat['mtime'])):X}"  # changes when the file is written


def _range(request: Request, size: int) -> tuple[int, int]:
    """The first byte and the length that `ocp-range` asks for (the whole file without one)."""
    start, end = 0, size - 1
    if raw := request.headers.get("ocp-range"):
        match = _RANGE.match(raw.strip())
        if not match or (not match.group(1) and not match.group(2)):
            raise errors.invalid_header("ocp-range", raw)
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        else:  # suffix range: the last N bytes
            start = max(0, size - int(match.group(2)))
        if start > end and size > 0:
            raise errors.BatchError(
                416, "InvalidRange", "The range specified is invalid for the current size of the file."
            )
    return start, max(0, end - start + 1)


async def _get(request: Request, scope: FileScope) -> Response:
    # The agent opens the file once and every read goes through that descriptor: the size announced is
    # that of the file being read, even when it is replaced or deleted meanwhile.
    name = request.path_params["filePath"]
    opened = await scope.call("open", path=scope.path(name))
    handle = opened["handle"]
    try:
        _check_conditions(request, opened)
        start, length = _range(request, int(opened["size"]))
        # The first chunk is read before the status line: an error there is still an error response.
        first = await _read(scope, handle, start, min(CHUNK, length)) if length else b""
    except BaseException:
        await _close(scope, handle)
        raise
    if len(first) < min(CHUNK, length):
        length = len(first)  # shrunk in place since it was opened: announce what there is
    headers = _file_headers(scope, name, opened) | {"Content-Length": str(length)}

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            offset, left = start + len(first), length - len(first)
            while left > 0:
                data = await _read(scope, handle, offset, min(CHUNK, left))
                if not data:
                    return
                yield data
                offset += len(data)
                left -= len(data)
        finally:
            await _close(scope, handle)

    return StreamingResponse(body(), status_code=200, headers=headers, media_type="application/octet-stream")


async def _read(scope: FileScope, handle: str, offset: int, length: int) -> bytes:
    reply = await scope.call("read", handle=handle, offset=offset, length=length)
    return base64.b64decode(reply["data"])


async def _close(scope: FileScope, handle: str) -> None:
    try:
        await scope.call("close", handle=handle)
    except errors.BatchError:
        pass  # the node is gone, or closed it already: the descriptor went with it


async def _head(request: Request, scope: FileScope) -> Response:
    name, stat = await _stat(request, scope)
    headers = _file_headers(scope, name, stat) | {"Content-Length": str(stat.get("size", 0))}
    return Response(status_code=200, headers=headers)


async def _delete(request: Request, scope: FileScope) -> Response:
    recursive = request.query_params.get("recursive", "false").lower() == "true"
    await scope.call("delete", path=scope.path(request.path_params["filePath"]), recursive=recursive)
    return Response(status_code=200)


@endpoint
async def list_task_files(request: Request) -> Response:
    return await _list(request, _task_scope(request), "taskFiles")


@endpoint
async def get_task_file(request: Request) -> Response:
    return await _get(request, _task_scope(request))


@endpoint
async def head_task_file(request: Request) -> Response:
    return await _head(request, _task_scope(request))


@endpoint
async def delete_task_file(request: Request) -> Response:
    return await _delete(request, _task_scope(request))


@endpoint
async def list_node_files(request: Request) -> Response:
    return await _list(request, _node_scope(request), "nodeFiles")


@endpoint
async def get_node_file(request: Request) -> Response:
    return await _get(request, _node_scope(request))


@endpoint
async def head_node_file(request: Request) -> Response:
    return await _head(request, _node_scope(request))


@endpoint
async def delete_node_file(request: Request) -> Response:
    return await _delete(request, _node_scope(request))


_TASK = "/jobs/{jobId}/tasks/{taskId}/files"
_NODE = "/pools/{poolId}/nodes/{nodeId}/files"
routes = [
    Route(_TASK, list_task_files, methods=["GET"]),
    Route(_TASK + "/{filePath:path}", head_task_file, methods=["HEAD"]),
    Route(_TASK + "/{filePath:path}", get_task_file, methods=["GET"]),
    Route(_TASK + "/{filePath:path}", delete_task_file, methods=["DELETE"]),
    Route(_NODE, list_node_files, methods=["GET"]),
    Route(_NODE + "/{filePath:path}", head_node_file, methods=["HEAD"]),
    Route(_NODE + "/{filePath:path}", get_node_file, methods=["GET"]),
    Route(_NODE + "/{filePath:path}", delete_node_file, methods=["DELETE"]),
]
