"""Answers the contract fuzz (test_contract_fuzz.py) found off the contract, each pinned by a plain request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.batch import models as m

from tests.api.helpers import (
    add_certificate,
    certificate_path,
    create_job,
    idle_nodes,
    pool_body,
    run_task,
    self_signed_pfx,
    signed_request,
    temp_pool,
)
from tests.conftest import Service, wait_for


def test_file_content_length_is_a_string_as_the_contract_says(
    service: Service, client: Any, unique: Callable[[str], str]
) -> None:
    """`FileProperties.contentLength` is `{"type": "string", "format": "int64"}`: "6", not 6."""
    pool_id, job_id = unique("cl-pool"), unique("cl-job")
    with temp_pool(client, pool_id):
        create_job(client, job_id, pool_id)
        task = run_task(client, job_id, "t", "/bin/echo hello")
        for path in (f"/jobs/{job_id}/tasks/t/files", f"/pools/{pool_id}/nodes/{task.node_info.node_id}/files"):
            answer = signed_request(service.url, "GET", path, params={"recursive": "true"})
            assert answer.status_code == 200, answer.text
            files = {item["name"]: item for item in answer.json()["value"]}
            stdout = files["stdout.txt"] if "stdout.txt" in files else files[f"workitems/{job_id}/job-1/t/stdout.txt"]
            assert stdout["properties"]["contentLength"] == "6"
        # and the SDK still reads it as a number
        listed = {f.name: f for f in client.list_task_files(job_id, "t")}
        assert listed["stdout.txt"].properties.content_length == 6


def test_certificate_answers_leave_out_what_only_an_add_carries(service: Service) -> None:
    """`certificateFormat`, like `data` and `password`, is create-only (`x-ms-mutability: ["create"]`)."""
    thumbprint, data, _ = self_signed_pfx("pw")
    assert add_certificate(service.url, thumbprint, data, "pw").status_code == 201
    try:
        got = signed_request(service.url, "GET", certificate_path(thumbprint)).json()
        listed = signed_request(service.url, "GET", "/certificates").json()["value"]
        mine = [item for item in listed if item["thumbprint"] == thumbprint]
        assert len(mine) == 1
        for body in (got, mine[0]):
            assert {"certificateFormat", "data", "password"}.isdisjoint(body), body
            assert body["state"] == "active" and body["publicData"]
    finally:
        signed_request(service.url, "DELETE", certificate_path(thumbprint))


def test_a_trailing_slash_is_answered_not_redirected(
    service: Service, client: Any, unique: Callable[[str], str]
) -> None:
    """A path with a trailing slash was answered 307 to the path without it (another resource, unsigned, and a
    redirect no Batch client follows): now `/jobs/` is 404 InvalidUri and `.../files/` (an empty file path)
    gets the files operation's own Batch error."""
    pool_id, job_id = unique("slash-pool"), unique("slash-job")
    assert signed_request(service.url, "POST", "/pools", body=pool_body(pool_id)).status_code == 201
    try:
        create_job(client, job_id, pool_id)
        client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
        for method in ("GET", "DELETE", "HEAD"):
            answer = signed_request(service.url, method, f"/jobs/{job_id}/tasks/t/files/")
            assert 400 <= answer.status_code < 500, (method, answer.status_code, answer.headers)
            if method != "HEAD":
                assert answer.json()["code"] == "TaskFilesUnavailable"  # the task has not run
        for path in ("/jobs/", f"/jobs/{job_id}/", f"/pools/{pool_id}/"):
            answer = signed_request(service.url, "GET", path)
            assert answer.status_code == 404 and answer.json()["code"] == "InvalidUri", (path, answer.status_code)
        assert client.get_task(job_id, "t").id == "t"
    finally:
        signed_request(service.url, "DELETE", f"/jobs/{job_id}")
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


def test_a_nested_object_in_a_patch_needs_what_it_needs_on_create(
    service: Service, client: Any, unique: Callable[[str], str]
) -> None:
    """A PATCH's nested object replaces the stored one whole; the contract's `...Update` twins require nothing,
    so `{"virtualMachineConfiguration": {}}` was accepted and left the pool without an image (and a schedule
    without a pool for its jobs). They are checked as the definitions they stand for."""
    pool_id, schedule_id = unique("patch-pool"), unique("patch-schedule")
    assert signed_request(service.url, "POST", "/pools", body=pool_body(pool_id)).status_code == 201
    schedule = {
        "id": schedule_id,
        "schedule": {"doNotRunUntil": "2100-01-01T00:00:00Z", "recurrenceInterval": "P1D"},
        "jobSpecification": {"poolInfo": {"poolId": pool_id}},
    }
    assert signed_request(service.url, "POST", "/jobschedules", body=schedule).status_code == 201
    try:
        refused = [
            (f"/pools/{pool_id}", {"virtualMachineConfiguration": {}}, "virtualMachineConfiguration.imageReference"),
            (
                f"/pools/{pool_id}",
                {
                    "virtualMachineConfiguration": {
                        **pool_body("x")["virtualMachineConfiguration"],
                        "containerConfiguration": {},
                    }
                },
                "virtualMachineConfiguration.containerConfiguration.type",
            ),
            (f"/pools/{pool_id}", {"upgradePolicy": {}}, "upgradePolicy.mode"),
            (f"/jobschedules/{schedule_id}", {"jobSpecification": {"priority": 3}}, "jobSpecification.poolInfo"),
            (
                f"/jobschedules/{schedule_id}",
                {"jobSpecification": {"poolInfo": {"poolId": pool_id}, "jobManagerTask": {"id": "jm"}}},
                "jobSpecification.jobManagerTask.commandLine",
            ),
        ]
        for path, body, missing in refused:
            answer = signed_request(service.url, "PATCH", path, body=body)
            assert answer.status_code == 400, (body, answer.status_code, answer.text)
            assert answer.json()["code"] == "MissingRequiredProperty"
            assert {"key": "PropertyName", "value": missing} in answer.json()["values"]
        pool = signed_request(service.url, "GET", f"/pools/{pool_id}").json()
        assert pool["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 22.04"
        assert "upgradePolicy" not in pool or pool["upgradePolicy"].get("mode")
        spec = signed_request(service.url, "GET", f"/jobschedules/{schedule_id}").json()["jobSpecification"]
        assert spec["poolInfo"] == {"poolId": pool_id}
        # a whole object is still accepted
        whole = {"jobSpecification": {"poolInfo": {"poolId": pool_id}, "priority": 3}}
        assert signed_request(service.url, "PATCH", f"/jobschedules/{schedule_id}", body=whole).status_code == 200
        spec = signed_request(service.url, "GET", f"/jobschedules/{schedule_id}").json()["jobSpecification"]
        assert spec["priority"] == 3 and spec["poolInfo"] == {"poolId": pool_id}
    finally:
        signed_request(service.url, "DELETE", f"/jobschedules/{schedule_id}")
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


def test_a_formula_with_a_digit_float_cannot_read_is_a_syntax_error(
    service: Service, unique: Callable[[str], str]
) -> None:
    """'²' passed `str.isdigit` in the formula lexer and then failed `float`: a 500."""
    pool_id = unique("formula-pool")
    assert signed_request(service.url, "POST", "/pools", body=pool_body(pool_id)).status_code == 201
    try:
        for formula in ("$TargetDedicatedNodes = ²;", "$TargetDedicatedNodes = 1²;", "x = .²;"):
            answer = signed_request(
                service.url, "POST", f"/pools/{pool_id}/enableautoscale", body={"autoScaleFormula": formula}
            )
            assert answer.status_code == 400, (formula, answer.status_code, answer.text)
            assert answer.json()["code"] == "AutoScalingFormulaSyntaxError"
        assert signed_request(service.url, "GET", f"/pools/{pool_id}").json()["enableAutoScale"] is False
    finally:
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


def test_a_date_before_year_1_in_utc_is_refused(service: Service, client: Any, unique: Callable[[str], str]) -> None:
    """`0001-01-01T00:00:00+00:06` is valid ISO 8601 but before year 1 in UTC: upload-logs answered 500."""
    pool_id = unique("early-pool")
    early = "0001-01-01T00:00:00+00:06"
    with temp_pool(client, pool_id):
        node = wait_for(lambda: idle_nodes(client, pool_id, 1), what="an idle node")[0]
        path = f"/pools/{pool_id}/nodes/{node.id}/uploadbatchservicelogs"
        for body in (
            {"containerUrl": "https://example.invalid/c", "startTime": early},
            {
                "containerUrl": "https://example.invalid/c",
                "startTime": "2025-01-01T00:00:00Z",
                "endTime": "9999-12-31T23:59:59-00:01",
            },
        ):
            answer = signed_request(service.url, "POST", path, body=body)
            assert answer.status_code == 400, (body, answer.status_code, answer.text)
            assert answer.json()["code"] == "InvalidPropertyValue"
        schedule = {
            "id": unique("early-schedule"),
            "schedule": {"doNotRunUntil": early},
            "jobSpecification": {"poolInfo": {"poolId": pool_id}},
        }
        answer = signed_request(service.url, "POST", "/jobschedules", body=schedule)
        assert answer.status_code == 400 and answer.json()["code"] == "InvalidPropertyValue", answer.text
