"""The az-style `batchyard` resource commands against a running service: create from options and
--json-file, list with OData options, show, delete, the actions, the output formats and --query, the
errors and exit codes. One pool (made by the CLI itself) serves the whole module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.cli_support import as_json, batchyard, ok, table_rows
from tests.api.helpers import self_signed_pfx, vm_config
from tests.conftest import Service, wait_for


@pytest.fixture(scope="module")
def pool(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A two-node pool created from a --json-file (the REST body)."""
    pool_id = f"cli-pool-{os.getpid()}"
    body = {
        "id": pool_id,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": vm_config().as_dict(),
        "targetDedicatedNodes": 2,
        "taskSlotsPerNode": 2,
    }
    spec = tmp_path_factory.mktemp("cli") / "pool.json"
    spec.write_text(json.dumps(body))
    created = as_json(service, "pool", "create", "--json-file", str(spec))
    assert created["id"] == pool_id and created["taskSlotsPerNode"] == 2
    wait_for(
        lambda: (
            as_json(
                service, "node", "list", "--pool-id", pool_id, "--filter", "state eq 'idle'", "--query", "length(@)"
            )
            == 2
        ),
        what="two idle nodes",
    )
    yield pool_id
    batchyard(service, "pool", "delete", "--pool-id", pool_id)


def test_pool_list_show_and_output_formats(service: Service, pool: str) -> None:
    table = ok(service, "pool", "list", "--filter", f"id eq '{pool}'")
    rows = table_rows(table)
    assert rows[0] == ["Id", "State", "Alloc", "VM Size", "Nodes", "Spot", "Auto"]
    assert rows[1] == [pool, "active", "steady", "standard_d2s_v3", "2/2", "0/0", "false"]
    assert all(len(line) <= 80 for line in table.splitlines())

    shown = as_json(service, "pool", "show", "--pool-id", pool, "--select", "id,vmSize")
    assert shown["id"] == pool and "state" not in shown  # $select reached the service
    assert ok(service, "pool", "show", "--pool-id", pool, "--query", "targetDedicatedNodes", "-o", "tsv") == "2\n"
    assert ok(service, "pool", "list", "--filter", f"id eq '{pool}'", "--query", "[].id", "-o", "tsv") == f"{pool}\n"
    projected = ok(
        service, "pool", "list", "--filter", f"id eq '{pool}'", "--query", "[].{Name:id,Slots:taskSlotsPerNode}"
    )
    assert table_rows(projected) == [["Name", "Slots"], [pool, "2"]]
    colored = ok(service, "pool", "show", "--pool-id", pool, "-o", "jsonc", "--query", "{id:id}")
    assert "\x1b[" in colored and pool in colored
    assert ok(service, "pool", "show", "--pool-id", pool, "-o", "none") == ""


def test_pool_created_from_options_resized_autoscaled_and_deleted(service: Service, unique: Any) -> None:
    pool_id = unique("cli-opts")
    created = as_json(service, "pool", "create", "--id", pool_id, "--target-dedicated-nodes", "0", "--metadata", "a=b")
    assert created["metadata"] == [{"name": "a", "value": "b"}]
    assert created["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 22.04"
    said = ok(service, "pool", "resize", "--pool-id", pool_id, "--target-dedicated-nodes", "1")
    assert said == f"Resizing pool {pool_id} to 1 dedicated nodes\n"
    wait_for(
        lambda: as_json(service, "pool", "show", "--pool-id", pool_id)["allocationState"] == "steady", what="steady"
    )
    enabled = ok(
        service,
        "pool",
        "autoscale",
        "enable",
        "--pool-id",
        pool_id,
        "--auto-scale-formula",
        "$TargetDedicatedNodes = 0;",
    )
    assert enabled == f"Autoscale enabled on pool {pool_id}\n"
    assert as_json(service, "pool", "show", "--pool-id", pool_id)["enableAutoScale"] is True
    evaluate = [
        "pool",
        "autoscale",
        "evaluate",
        "--pool-id",
        pool_id,
        "--auto-scale-formula",
        "$TargetDedicatedNodes = 2;",
    ]
    assert "$TargetDedicatedNodes=2" in as_json(service, *evaluate)["results"]
    ok(service, "pool", "autoscale", "disable", "--pool-id", pool_id)
    assert as_json(service, "pool", "show", "--pool-id", pool_id)["enableAutoScale"] is False
    changed = as_json(service, "pool", "set", "--pool-id", pool_id, "--metadata", "c=d")
    assert changed["metadata"] == [{"name": "c", "value": "d"}]
    assert ok(service, "pool", "delete", "--pool-id", pool_id) == f"Deleting pool {pool_id}\n"


def test_jobs_tasks_and_files(service: Service, pool: str, unique: Any, tmp_path: Path) -> None:
    job_id = unique("cli-job")
    job = as_json(service, "job", "create", "--id", job_id, "--pool-id", pool, "--priority", "5")
    assert job["poolInfo"]["poolId"] == pool and job["priority"] == 5
    task = as_json(service, "task", "create", "--job-id", job_id, "--task-id", "one", "--command-line", "echo hello")
    assert task["id"] == "one"
    many = tmp_path / "tasks.json"
    many.write_text(json.dumps([{"id": "two", "commandLine": "echo two"}, {"id": "one", "commandLine": "true"}]))
    results = table_rows(ok(service, "task", "create", "--job-id", job_id, "--json-file", str(many), "-o", "table"))
    assert results == [["Id", "Status", "Error"], ["two", "success"], ["one", "clienterror", "TaskExists"]]

    ok(service, "task", "wait", "--job-id", job_id, "--task-id", "one", "two")
    rows = table_rows(ok(service, "task", "list", "--job-id", job_id))
    assert rows[0] == ["Id", "State", "Exit", "Node", "Command line"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [("one", "completed", "0"), ("two", "completed", "0")]
    assert as_json(service, "task", "list", "--job-id", job_id, "--filter", "id eq 'two'", "--query", "[].id") == [
        "two"
    ]
    assert as_json(service, "job", "task-counts", "show", "--job-id", job_id)["taskCounts"]["succeeded"] == 2

    names = as_json(service, "task", "file", "list", "--job-id", job_id, "--task-id", "one", "--query", "[].name")
    assert {"stdout.txt", "stderr.txt"} <= set(names)
    stdout = ["task", "file", "download", "--job-id", job_id, "--task-id", "one", "--file-path", "stdout.txt"]
    assert ok(service, *stdout, "--destination", "-") == "hello\n"
    saved = tmp_path / "out.txt"
    assert "Downloaded stdout.txt" in ok(service, *stdout, "--destination", str(saved))
    assert saved.read_text() == "hello\n"
    props = as_json(
        service, "task", "file", "show", "--job-id", job_id, "--task-id", "one", "--file-path", "stdout.txt"
    )
    assert props["properties"]["contentLength"] == 6 and props["isDirectory"] is False

    assert "Terminating task" in ok(service, "task", "stop", "--job-id", job_id, "--task-id", "one")
    assert "Deleting task two" in ok(service, "task", "delete", "--job-id", job_id, "--task-id", "two")
    assert ok(service, "job", "disable", "--job-id", job_id) == f"Disabling job {job_id} (running tasks: requeue)\n"
    wait_for(lambda: as_json(service, "job", "show", "--job-id", job_id)["state"] == "disabled", what="disabled job")
    assert ok(service, "job", "enable", "--job-id", job_id) == f"Enabling job {job_id}\n"
    patched = as_json(service, "job", "set", "--job-id", job_id, "--priority", "7")
    assert patched["priority"] == 7
    assert ok(service, "job", "stop", "--job-id", job_id) == f"Terminating job {job_id}\n"
    listed = table_rows(ok(service, "job", "list", "--filter", f"id eq '{job_id}'"))
    assert listed[1][:3] in ([job_id, "terminating", pool], [job_id, "completed", pool])
    assert ok(service, "job", "delete", "--job-id", job_id) == f"Deleting job {job_id}\n"


def test_job_schedules(service: Service, pool: str, unique: Any) -> None:
    schedule_id = unique("cli-sched")
    created = as_json(
        service, "job-schedule", "create", "--id", schedule_id, "--pool-id", pool, "--recurrence-interval", "PT1H"
    )
    assert created["schedule"]["recurrenceInterval"] == "PT1H"
    assert "Disabling job schedule" in ok(service, "job-schedule", "disable", "--job-schedule-id", schedule_id)
    assert as_json(service, "job-schedule", "show", "--job-schedule-id", schedule_id)["state"] == "disabled"
    ok(service, "job-schedule", "enable", "--job-schedule-id", schedule_id)
    rows = table_rows(ok(service, "job-schedule", "list", "--filter", f"id eq '{schedule_id}'"))
    assert rows[1][:4] == [schedule_id, "active", "PT1H", pool]
    wait_for(
        lambda: as_json(service, "job", "list", "--job-schedule-id", schedule_id, "--query", "[].id"),
        what="the schedule's first job",
    )
    ok(service, "job-schedule", "stop", "--job-schedule-id", schedule_id)
    assert ok(service, "job-schedule", "delete", "--job-schedule-id", schedule_id).startswith("Deleting job schedule")


def test_node_commands_users_and_files(service: Service, pool: str, tmp_path: Path) -> None:
    rows = table_rows(ok(service, "node", "list", "--pool-id", pool))
    assert rows[0] == ["Id", "State", "Sched", "Dedicated", "Tasks"]
    node = rows[1][0]
    assert len(node) > 30  # the id column is kept whole in 80 columns
    assert as_json(service, "node", "show", "--pool-id", pool, "--node-id", node)["id"] == node

    user = ok(
        service,
        "node",
        "user",
        "create",
        "--pool-id",
        pool,
        "--node-id",
        node,
        "--name",
        "cliuser",
        "--password",
        "Pa55-word",
    )
    assert user == f"Created user cliuser on node {node}\n"
    spec = tmp_path / "user.json"
    spec.write_text(json.dumps({"password": "An0ther-one"}))
    reset = [
        "node",
        "user",
        "reset",
        "--pool-id",
        pool,
        "--node-id",
        node,
        "--name",
        "cliuser",
        "--json-file",
        str(spec),
    ]
    assert ok(service, *reset) == f"Updated user cliuser on node {node}\n"
    ok(service, "node", "user", "delete", "--pool-id", pool, "--node-id", node, "--name", "cliuser")
    login = as_json(service, "node", "remote-login-settings", "show", "--pool-id", pool, "--node-id", node)
    assert login["remoteLoginPort"] > 0
    names = as_json(service, "node", "file", "list", "--pool-id", pool, "--node-id", node, "--query", "[].name")
    assert "startup" in names

    said = ok(
        service, "node", "scheduling", "disable", "--pool-id", pool, "--node-id", node, "--option", "taskcompletion"
    )
    assert said == f"Disabling task scheduling on node {node} of pool {pool} (running tasks: taskcompletion)\n"
    wait_for(
        lambda: as_json(service, "node", "show", "--pool-id", pool, "--node-id", node)["state"] == "offline",
        what="offline",
    )
    ok(service, "node", "scheduling", "enable", "--pool-id", pool, "--node-id", node)
    assert ok(service, "node", "reboot", "--pool-id", pool, "--node-id", node).startswith(f"Rebooting node {node}")
    wait_for(
        lambda: as_json(service, "node", "show", "--pool-id", pool, "--node-id", node)["state"] == "idle",
        what="idle again",
    )


def test_older_nodes_commands_share_the_output_style(service: Service, pool: str) -> None:
    rows = table_rows(ok(service, "nodes", "list", pool))
    assert rows[0] == ["Id", "State", "Sched", "Dedicated", "Tasks"] and len(rows) == 3
    assert len(as_json(service, "nodes", "list", pool)) == 2
    node = rows[1][0]
    ok(service, "nodes", "disable-scheduling", pool, node)
    said = ok(service, "nodes", "enable-scheduling", pool, node)
    assert said == f"Enabling task scheduling on node {node} of pool {pool}\n"


def test_certificates_and_applications(service: Service, tmp_path: Path) -> None:
    thumbprint, data, _ = self_signed_pfx("secret")
    pfx = tmp_path / "cert.pfx"
    pfx.write_bytes(data)
    added = as_json(
        service,
        "certificate",
        "create",
        "--certificate-file",
        str(pfx),
        "--thumbprint",
        thumbprint,
        "--password",
        "secret",
    )
    assert added["thumbprint"] == thumbprint and added["state"] == "active"
    rows = table_rows(ok(service, "certificate", "show", "--thumbprint", thumbprint, "-o", "table"))
    assert rows[1][:3] == [thumbprint, "sha1", "active"]
    state = ok(service, "certificate", "list", "--query", f"[?thumbprint=='{thumbprint}'].state", "-o", "tsv")
    assert state == "active\n"
    assert ok(service, "certificate", "delete", "--thumbprint", thumbprint) == f"Deleting certificate {thumbprint}\n"
    assert table_rows(ok(service, "application", "list"))[0] == ["Id", "Name", "Versions"]
    missing = batchyard(service, "application", "show", "--application-id", "nope")
    assert missing.returncode == 1 and "ApplicationNotFound" in missing.stderr


def test_errors_and_exit_codes(service: Service, tmp_path: Path) -> None:
    missing = batchyard(service, "pool", "show", "--pool-id", "no-such-pool")
    assert missing.returncode == 1 and missing.stdout == ""
    assert "PoolNotFound: The specified pool does not exist." in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused = batchyard(service, "pool", "create", "--json-file", str(bad))
    assert refused.returncode == 2 and "not JSON" in refused.stderr
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"id": "x y z", "vmSize": "standard_d2s_v3"}))
    answered = batchyard(service, "pool", "create", "--json-file", str(invalid))
    assert answered.returncode == 1 and "HTTP 400" in answered.stderr
    assert batchyard(service, "pool", "create").returncode == 2  # --id or --json-file
    assert batchyard(service, "pool", "list", "--query", "[").returncode == 2
    unreachable = batchyard(service, "pool", "list", BATCHYARD_ENDPOINT="http://127.0.0.1:9")
    assert unreachable.returncode == 3 and "cannot reach the service" in unreachable.stderr


def test_version_and_help() -> None:
    version = subprocess.run([sys.executable, "-m", "batchyard.cli.main", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("batchyard ")
    serve = subprocess.run(
        [sys.executable, "-m", "batchyard.cli.main", "serve", "--help"], capture_output=True, text=True
    )
    assert "address to listen on" in serve.stdout and "HTTP port" in serve.stdout


def test_the_data_plane_commands_over_https_trust_the_ca_file_they_are_given(service: Service, pool: str) -> None:
    https = {"BATCHYARD_ENDPOINT": service.https_url, "SSL_CERT_FILE": os.devnull}  # no CA trusted by default
    listed = json.loads(
        ok(service, "pool", "show", "--pool-id", pool, "--ca-file", str(service.ca), "-o", "json", **https)
    )
    assert listed["id"] == pool
    assert pool in ok(
        service, "pool", "list", "-o", "tsv", "--query", "[].id", **https, BATCHYARD_CA_FILE=str(service.ca)
    )
    untrusted = batchyard(service, "pool", "show", "--pool-id", pool, **https)
    assert untrusted.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr
    unreadable = batchyard(service, "pool", "show", "--pool-id", pool, "--ca-file", "/nonexistent/ca.pem", **https)
    assert unreadable.returncode == 2 and "CA file /nonexistent/ca.pem" in unreadable.stderr, unreadable.stderr
    assert "Traceback" not in untrusted.stderr + unreadable.stderr
