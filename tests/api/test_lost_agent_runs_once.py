"""A killed agent's tasks run exactly once: what the lost agent ran is ended before its tasks run again.

Tasks run in sessions of their own, so they outlive a kill -9 of their agent. Two ways back:
- the node is declared lost (`--node-lost-grace`) while its agent is still gone: the provider ends the
  node's processes, then the tasks are requeued (here onto the pool's other node);
- a new agent starts on the node first (`--adopt-grace`): it ends what the old one left before it says
  hello, and the tasks are requeued onto the same node.
"""

from __future__ import annotations

import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from azure.batch import models as m

from tests.api.helpers import create_job, idle_nodes, vm_config
from tests.api.test_durability import agent_processes
from tests.conftest import make_client, start_service, wait_for

TASKS = 4


def _node_processes(node_root: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("AZ_BATCH_NODE_ROOT_DIR") == str(node_root):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@dataclass
class Outcome:
    """What one trial saw: each task's result and requeue count, the lines the runs wrote, survivors."""

    results: dict[str, tuple[str, int]]
    lines: Counter[str]
    survivors: list[int]

    def runs_twice(self) -> int:
        """Tasks whose body ran to its end more than once."""
        return sum(1 for i in range(TASKS) if self.lines[f"end-t{i}"] > 1)


MODES = {
    # lost, fenced, requeued onto the pool's other node
    "requeued-elsewhere": (2, ["--node-lost-grace", "1", "--adopt-grace", "600"]),
    # a new agent starts on the node and ends the leftovers before its hello
    "new-agent-on-the-node": (1, ["--node-lost-grace", "600", "--adopt-grace", "1"]),
}


def kill_agent_during_tasks(workdir: Path, mode: str) -> Outcome:
    """Run TASKS long tasks on one node, kill -9 its agent while they run, wait for every task to end.

    A first run that ended before its node was fenced would be rerun (its result died with the agent);
    the first runs here last 30 s, so every `end` line comes from a rerun."""
    nodes, options = MODES[mode]
    service = start_service(workdir / "svc", *options)
    try:
        client = make_client(service.url)
        client.create_pool(
            m.BatchPoolCreateOptions(
                id="p",
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=vm_config(),
                target_dedicated_nodes=nodes,
                task_slots_per_node=TASKS,
                task_scheduling_policy=m.BatchTaskSchedulingPolicy(node_fill_type="pack"),
            )
        )
        wait_for(lambda: idle_nodes(client, "p", nodes), timeout=60, what="idle nodes")
        create_job(client, "j", "p")
        # Where the tasks write: they run as a user of their own when the service is root.
        out = workdir / "out"
        out.mkdir(exist_ok=True)
        out.chmod(0o1777)
        log = out / "runs.log"
        # A background child that leaves the task's session must end with the lost run too. The first run
        # lasts far longer than the kill and the fencing take, however loaded the machine; the rerun is short.
        marker = f"{out}/ran-$AZ_BATCH_TASK_ID"
        command = (
            f"/bin/bash -c 'echo start-$AZ_BATCH_TASK_ID >> {log}; setsid sleep 60 & "
            f"if [ -e {marker} ]; then sleep 1; else touch {marker}; sleep 30; fi; "
            f"echo end-$AZ_BATCH_TASK_ID >> {log}'"
        )
        client.create_task_collection(
            "j",
            m.BatchTaskGroup(
                task_values=[m.BatchTaskCreateOptions(id=f"t{i}", command_line=command) for i in range(TASKS)]
            ),
        )
        wait_for(lambda: log.exists() and len(log.read_text().split()) == TASKS, what="every task started")
        victim = client.get_task("j", "t0").node_info.node_id
        assert {client.get_task("j", f"t{i}").node_info.node_id for i in range(TASKS)} == {victim}
        first_run = _node_processes((service.data_dir / "nodes" / victim).resolve())
        assert len(first_run) >= 2 * TASKS  # each task's bash and its sleeps
        (agent,) = [p for p in agent_processes(service.data_dir) if victim in " ".join(p.cmdline())]
        agent.send_signal(signal.SIGKILL)

        def all_completed() -> bool:
            return all(client.get_task("j", f"t{i}").state == "completed" for i in range(TASKS))

        wait_for(all_completed, timeout=60, what="every task to complete")
        results = {}
        for i in range(TASKS):
            info = client.get_task("j", f"t{i}").execution_info
            results[f"t{i}"] = (str(getattr(info.result, "value", info.result)), int(info.requeue_count))
        survivors = [p.pid for p in first_run if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        return Outcome(results, Counter(log.read_text().split()), survivors)
    finally:
        service.stop()


@pytest.mark.parametrize("mode", list(MODES))
def test_tasks_of_a_killed_agent_run_exactly_once(tmp_path: Path, mode: str) -> None:
    outcome = kill_agent_during_tasks(tmp_path, mode)
    assert outcome.results == {f"t{i}": ("success", 1) for i in range(TASKS)}
    assert outcome.survivors == []
    expected = {f"start-t{i}": 2 for i in range(TASKS)} | {f"end-t{i}": 1 for i in range(TASKS)}
    assert outcome.lines == Counter(expected)
    assert outcome.runs_twice() == 0
