"""uploadbatchservicelogs: answered at once, uploaded afterwards by the node's agent.

As on Azure (`numberOfFilesUploaded` is "the number of log files which will be uploaded"; the SAS "must
allow enough time for the upload to finish"), the request answers with the virtual directory and the
number of files as soon as the agent has chosen them. An upload that fails afterwards (the container
cannot be reached, the SAS is refused) becomes the node error `UploadBatchServiceLogsFailed`, which the
node keeps until a later upload of its logs succeeds (or it boots again).
"""

from __future__ import annotations

import uuid
from typing import Any

from batchyard.service import errors
from batchyard.service.clock import parse_iso
from batchyard.service.engine.core import Concern
from batchyard.service.engine.events import handles_message
from batchyard.service.engine.node_actions import NodeActionOps, rpc
from batchyard.service.engine.records import NodeRecord

UPLOAD_FAILED = "UploadBatchServiceLogsFailed"


class ServiceLogOps(Concern):
    def __init__(self, node_actions: NodeActionOps) -> None:
        super().__init__(node_actions.core)
        self.node_actions = node_actions  # whether a node is ready for an operation

    async def upload_logs(self, node: NodeRecord, spec: dict[str, Any]) -> dict[str, Any]:
        session = self.node_actions.require_ready(node)
        pool = self.pools.get(node.pool_key)
        directory = f"{pool.doc['id'] if pool else node.pool_key}/{node.id}/{uuid.uuid4()}"
        start = parse_iso(spec["startTime"]).timestamp()
        end = parse_iso(spec["endTime"]).timestamp() if spec.get("endTime") else None
        reply = await rpc(
            session,
            {"op": "uploadlogs", "container": spec["containerUrl"], "dir": directory, "start": start, "end": end},
        )
        if not reply.get("ok"):
            raise errors.invalid_property("containerUrl", spec["containerUrl"], str(reply.get("message")))
        return {"virtualDirectoryName": directory, "numberOfFilesUploaded": int(reply["count"])}

    @handles_message("logsuploaded")
    def _logs_uploaded(self, node: NodeRecord, message: dict[str, Any]) -> None:
        kept = [error for error in node.doc.get("errors") or [] if error.get("code") != UPLOAD_FAILED]
        if not message.get("ok"):
            kept.append(
                {
                    "code": UPLOAD_FAILED,
                    "message": "The Batch service log files of the node could not be uploaded to the container.",
                    "errorDetails": [
                        {"name": "VirtualDirectoryName", "value": str(message.get("dir", ""))},
                        {"name": "Reason", "value": str(message.get("message", ""))},
                    ],
                }
            )
        if kept != (node.doc.get("errors") or []):
            if kept:
                node.doc["errors"] = kept
            else:
                node.doc.pop("errors", None)
            self.core.save_node(node)
