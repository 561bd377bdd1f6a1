"""Active/standby failover: two real service processes on one real PostgreSQL (tests/postgres_cluster.py).

Only the lease's holder serves; the standby answers ServerBusy (503, Retry-After), which the SDK retries.
When the active instance is killed (-9) the standby takes over within seconds, the nodes' agents reconnect
to it, running tasks finish and report in, and every acknowledged task runs to completion exactly once.
(The store-level lease and fencing tests are tests/unit/test_store_fencing.py.)"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from batchyard.protocol import messages
from tests.api.failover_support import Instance, start_instances
from tests.api.helpers import create_job, create_pool, idle_nodes, signed_request
from tests.conftest import make_client, postgres_cluster, wait_for

TAKEOVER_LIMIT = 10.0  # seconds from the kill to the standby answering as the active instance


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[Instance]]:
    instances = start_instances(tmp_path / "data", postgres_cluster().new_database("failover"))
    yield instances
    for instance in instances:  # the active one last: its clean stop ends the nodes' agents
        if instance.role() != "active":
            instance.stop()
    for instance in instances:
        instance.stop()


def _marked_tasks(client: Any, job_id: str, ids: list[str], markers: Path) -> None:
    """Tasks that note their start and their end in a shared file (appends of a line are atomic)."""
    command = (
        f"/bin/bash -c 'echo start $AZ_BATCH_TASK_ID >> {markers}; sleep 3; echo end $AZ_BATCH_TASK_ID >> {markers}'"
    )
    client.create_task_collection(
        job_id, m.BatchTaskGroup(task_values=[m.BatchTaskCreateOptions(id=i, command_line=command) for i in ids])
    )


def test_a_standby_refuses_with_a_retryable_batch_error(pair: list[Instance]) -> None:
    active, standby = pair
    answer = signed_request(standby.url, "GET", "/jobs")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == "ServerBusy" and "standby" in answer.json()["message"]["value"]
    assert signed_request(active.url, "GET", "/jobs").status_code == 200
    # An agent's connection is refused before the handshake (it then tries its next service URL).
    with pytest.raises(InvalidStatus) as refused:
        connect(standby.url.replace("http://", "ws://") + messages.AGENT_PATH, open_timeout=5).close()
    assert refused.value.response.status_code == 403


def test_the_standby_takes_over_a_killed_active_instance_and_every_task_runs_once(
    pair: list[Instance], tmp_path: Path
) -> None:
    active, standby = pair
    markers = tmp_path / "markers.log"
    markers.touch()
    markers.chmod(0o666)  # as root, tasks run as users of their own
    client = make_client(active.url)
    create_pool(client, "p", nodes=2, slots=4)
    wait_for(lambda: idle_nodes(client, "p", 2), what="two idle nodes")
    create_job(client, "j", "p")
    before = [f"before{i}" for i in range(12)]  # 8 run at once, 4 wait in the queue
    _marked_tasks(client, "j", before, markers)
    wait_for(lambda: client.get_job_task_counts("j").task_counts.running == 8, what="eight running tasks")

    active.kill()
    killed_at = time.monotonic()
    takeover = standby.wait_role("active", timeout=TAKEOVER_LIMIT)
    assert takeover < TAKEOVER_LIMIT
    client = make_client(standby.url)
    after = [f"after{i}" for i in range(4)]
    _marked_tasks(client, "j", after, markers)  # acknowledged by the new active instance

    everything = before + after
    wait_for(
        lambda: client.get_job_task_counts("j").task_counts.completed == len(everything),
        timeout=60,
        what="every task to complete",
    )
    for task in client.list_tasks("j"):
        assert task.execution_info.result == "success", task.id
        # Running when the active instance died: they kept running on their nodes and reported in.
        assert task.execution_info.requeue_count == 0, task.id
    lines = Counter(markers.read_text().splitlines())
    assert lines == Counter({f"{what} {task}": 1 for task in everything for what in ("start", "end")})
    # The agents reconnected to the new active instance (they know both URLs).
    assert all(node.state in ("idle", "running") for node in client.list_nodes("p"))
    assert time.monotonic() - killed_at < 60

    # The former active instance, restarted, stands by: the new one keeps the lease.
    active.start()
    active.wait_role("standby")
    assert signed_request(active.url, "GET", "/jobs").status_code == 503
    assert standby.role() == "active"


def test_a_paused_former_active_instance_cannot_write_when_it_comes_back(pair: list[Instance]) -> None:
    """Cut off (here: paused, its lease's session ended by the server) while the standby takes over, the
    former active instance finds its epoch gone at its next write and stands by; nothing of it is written."""
    import psutil
    import psycopg

    active, standby = pair
    client = make_client(active.url)
    client.create_job(m.BatchJobCreateOptions(id="before", pool_info=m.BatchPoolInfo(pool_id="nowhere")))
    active.process.send_signal(signal.SIGSTOP)
    try:
        ports = [connection.laddr.port for connection in psutil.Process(active.process.pid).net_connections("tcp")]
        with psycopg.connect(postgres_cluster().url(), autocommit=True) as conn:
            ended = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'batchyard-lease' AND client_port = ANY(%s)",
                (ports,),
            ).fetchall()
        assert ended == [(True,)]
        standby.wait_role("active", timeout=TAKEOVER_LIMIT)
    finally:
        active.process.send_signal(signal.SIGCONT)
    # Its first request after coming back: refused (ServerBusy once it noticed, or the fenced transaction's
    # error), never written.
    answer = signed_request(active.url, "POST", "/jobs", body={"id": "after", "poolInfo": {"poolId": "nowhere"}})
    assert answer.status_code in (500, 503), answer.text
    active.wait_role("standby")
    ids = [job.id for job in make_client(standby.url).list_jobs()]
    assert ids == ["before"]
    assert "lost the lease" in active.log() or "no longer the active one" in active.log()
