"""GET /metrics (Prometheus): the figures follow what really happens in the service."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from azure.batch import models as m
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import create_job, create_pool, delete_pool_quietly, idle_nodes, vm_config
from tests.conftest import Service, start_service, wait_for


def scrape(url: str, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the service's metrics: (name, labels) -> value."""
    answer = httpx.get(f"{url}/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")  # the text exposition format
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_tasks_nodes_requests_and_starts_follow_real_activity(service: Service, client: Any) -> None:
    pool_id, job_id = f"metrics-{uuid.uuid4().hex[:8]}", f"metrics-{uuid.uuid4().hex[:8]}"
    before = scrape(service.url)
    create_pool(client, pool_id, nodes=1, slots=2)
    try:
        wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=60, what="an idle node")
        create_job(client, job_id, pool_id)
        tasks = [m.BatchTaskCreateOptions(id=f"t{i}", command_line="/bin/true") for i in range(5)]
        client.create_task_collection(job_id, m.BatchTaskGroup(task_values=tasks))
        wait_for(lambda: client.get_job_task_counts(job_id).task_counts.completed == 5, timeout=60, what="5 tasks done")
        wait_for(lambda: idle_nodes(client, pool_id, 1), timeout=30, what="the node idle again")
        httpx.get(f"{service.url}/no/such/route")

        after = scrape(service.url)
        assert value(after, "batchyard_tasks", job=job_id, state="completed") == 5
        for state in ("active", "preparing", "running"):
            assert value(after, "batchyard_tasks", job=job_id, state=state) == 0
        assert value(after, "batchyard_nodes", pool=pool_id, state="idle") == 1
        assert value(after, "batchyard_agent_connections") >= 1
        assert ("batchyard_queued_tasks", frozenset()) in after

        added = "batchyard_requests_total", {"operation": "add_task_collection", "status": "200"}
        assert value(after, added[0], **added[1]) - value(before, added[0], **added[1]) == 1
        assert value(after, "batchyard_request_duration_seconds_count", operation="add_task_collection") >= 1
        assert value(after, "batchyard_requests_total", operation="unmatched", status="404") >= 1
        starts = "batchyard_task_start_latency_seconds_count"
        assert value(after, starts) - value(before, starts) >= 5
        assert value(after, "batchyard_task_start_latency_seconds_sum") > value(
            before, "batchyard_task_start_latency_seconds_sum"
        )
        commits = "batchyard_store_transaction_seconds_count"
        assert value(after, commits) > value(before, commits)

        client.begin_delete_job(job_id, polling_interval=0.2).result()
        wait_for(
            lambda: value(scrape(service.url), "batchyard_tasks", job=job_id, state="completed") == 0,
            timeout=30,
            what="the deleted job's figures gone",
        )
    finally:
        delete_pool_quietly(client, pool_id)


def test_autoscale_runs_are_counted_by_result(service: Service, client: Any) -> None:
    pool_id = f"metrics-auto-{uuid.uuid4().hex[:8]}"
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            enable_auto_scale=True,
            auto_scale_formula="$TargetDedicatedNodes = 0;",
            auto_scale_evaluation_interval="PT5M",
        )
    )
    try:
        runs = value(scrape(service.url), "batchyard_autoscale_evaluations_total", pool=pool_id, result="success")
        assert runs == 1  # the run when the pool was created
    finally:
        delete_pool_quietly(client, pool_id)


def test_a_metrics_token_file_closes_the_endpoint_to_others(tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text("s3cret-scrape-token\n")
    service = start_service(tmp_path / "svc", "--metrics-token-file", str(token_file))
    try:
        assert httpx.get(f"{service.url}/metrics").status_code == 401
        assert httpx.get(f"{service.url}/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        samples = scrape(service.url, authorization="Bearer s3cret-scrape-token")
        assert ("batchyard_agent_connections", frozenset()) in samples
        assert "s3cret-scrape-token" not in service.log()
    finally:
        service.stop()


def test_an_empty_metrics_token_file_is_refused_at_start(tmp_path: Path) -> None:
    token_file = tmp_path / "empty"
    token_file.write_text("\n")
    data_dir = tmp_path / "svc"
    data_dir.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchyard.cli.main",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            "0",
            "--metrics-token-file",
            str(token_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--metrics-token-file" in done.stderr and "holds no token" in done.stderr
