"""Every state change is logged with the ids that find it: nodes and pools at info, tasks and jobs at debug."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from batchyard.service.engine import states


def test_a_task_transition_names_its_job_and_node_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    doc = {"id": "t1", "state": "active", "nodeInfo": {"nodeId": "tvmps_1"}}
    with caplog.at_level(logging.DEBUG, logger="batchyard.state"):
        states.move(doc, states.TASK, "running", datetime.now(UTC), previous=True, owner="job1")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "task job1/t1: active -> running on tvmps_1")
    ]


def test_a_node_transition_names_its_pool_at_info(caplog: pytest.LogCaptureFixture) -> None:
    doc = {"id": "tvmps_1", "state": "idle"}
    with caplog.at_level(logging.INFO, logger="batchyard.state"):
        states.move(doc, states.NODE, "unknown", datetime.now(UTC), previous=False, owner="pool1")
        states.move(doc, states.NODE, "unknown", datetime.now(UTC), previous=False, owner="pool1")  # no change
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "node pool1/tvmps_1: idle -> unknown")
    ]
