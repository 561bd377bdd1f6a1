"""An agent on another host cut off by the network: its runs end on the lease the service gave it, and the
service requeues them only after that, so a task never runs twice at once (README, Reliability)."""

from __future__ import annotations

import time
from pathlib import Path

from azure.batch import models as m

from batchyard.agent import proctree
from tests.api.helpers import completed, create_job, create_pool
from tests.api.tcp_proxy import TcpProxy
from tests.api.test_remote_agent import _join_token, _start_agent
from tests.conftest import make_client, start_service, wait_for

EXTERNAL = [m.BatchMetadataItem(name="batchyard-provider", value="external")]


def test_a_partitioned_agent_ends_its_runs_before_they_run_elsewhere(tmp_path: Path) -> None:
    # Heartbeats missing for 3 s lose the node; its agent ends its runs 3 s after it notices the cut.
    service = start_service(tmp_path / "svc", "--heartbeat-timeout", "3", "--agent-lease", "3")
    client = make_client(service.url)
    proxy = TcpProxy(int(service.url.rsplit(":", 1)[1]))
    proxy.start()
    marker = tmp_path / "marker"
    agents = []
    try:
        # The second node waits for an agent until the task runs on the first.
        create_pool(client, "p", nodes=2, metadata=EXTERNAL)
        token = _join_token(service, "p")
        # The first agent's link to the service goes through the proxy.
        agents.append(_start_agent(f"http://127.0.0.1:{proxy.port}", tmp_path / "a", "p", token))
        (first,) = wait_for(lambda: [n.id for n in client.list_nodes("p") if n.state == "idle"], what="node a")
        create_job(client, "j", "p")
        # The copy on the first node would run for a minute; the one after the requeue ends at once.
        script = (
            f"echo start $AZ_BATCH_NODE_ID >> {marker}; [ $AZ_BATCH_NODE_ID = {first} ] && sleep 60;"
            f" echo end $AZ_BATCH_NODE_ID >> {marker}"
        )
        client.create_task("j", m.BatchTaskCreateOptions(id="t", command_line=f"/bin/bash -c '{script}'"))
        wait_for(lambda: marker.exists() and marker.read_text() == f"start {first}\n", what="the first copy")
        agents.append(_start_agent(service.url, tmp_path / "b", "p", _join_token(service, "p")))
        wait_for(lambda: len([n for n in client.list_nodes("p") if n.state == "idle"]) == 1, what="node b")

        proxy.cut()
        cut_at = time.monotonic()
        second = wait_for(
            lambda: (t := client.get_task("j", "t")).node_info and t.node_info.node_id != first and t.node_info.node_id,
            timeout=60,
            what="the task to run again on the other node",
        )
        requeued_after = time.monotonic() - cut_at
        # When it could start again, the first copy was gone: no process of the first node's runs is left.
        assert proctree.node_processes(str(tmp_path / "a")) == set()
        assert completed(client, "j", "t") or wait_for(lambda: completed(client, "j", "t"), what="the second copy")
        assert marker.read_text() == f"start {first}\nstart {second}\nend {second}\n"  # the first never ended
        assert requeued_after >= 3 + 3  # not before the node was lost and the lease surely over
        assert client.get_node("p", first).state in ("unknown", "unusable")

        proxy.heal()  # the agent comes back: it kept nothing of the run the lease ended
        wait_for(lambda: client.get_node("p", first).state == "idle", timeout=30, what="the first node back")
        assert agents[0].poll() is None
    finally:
        for agent in agents:
            agent.kill()
            agent.wait(10)
        proxy.stop()
        service.stop()
