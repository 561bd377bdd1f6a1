"""Answers the contract fuzz (test_contract_fuzz.py) found off the contract, each pinned by a plain request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.helpers import (
    add_certificate,
    certificate_path,
    create_job,
    run_task,
    self_signed_pfx,
    signed_request,
    temp_pool,
)
from tests.conftest import Service


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
