"""NUL characters (U+0000) in string properties are refused with InvalidPropertyValue, through the SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.api.helpers import create_job, error_code, error_values, signed_request, vm_config
from tests.conftest import Service

Unique = Callable[[str], str]
REASON = "The value must not contain the NUL character (U+0000)."


def _refused(call: Callable[[], Any], prop: str) -> None:
    with pytest.raises(HttpResponseError) as info:
        call()
    assert info.value.status_code == 400
    assert error_code(info.value) == "InvalidPropertyValue"
    values = error_values(info.value)
    assert (values["PropertyName"], values["Reason"]) == (prop, REASON)
    assert "\x00" not in values["PropertyValue"] and "\\u0000" in values["PropertyValue"]


def test_nul_in_job_and_task_strings_is_refused(client: Any, unique: Unique) -> None:
    job_id = unique("nul")
    _refused(lambda: create_job(client, job_id + "\x00x", "p"), "id")
    _refused(lambda: create_job(client, job_id, "p", display_name="a\x00b"), "displayName")
    _refused(
        lambda: create_job(client, job_id, "p", metadata=[m.BatchMetadataItem(name="k", value="v\x00")]),
        "metadata[0].value",
    )
    with pytest.raises(ResourceNotFoundError):
        client.get_job(job_id)  # nothing was made

    create_job(client, job_id, "p")
    try:
        _refused(
            lambda: client.create_task(job_id, m.BatchTaskCreateOptions(id="t", command_line="/bin/echo a\x00b")),
            "commandLine",
        )
        _refused(
            lambda: client.create_task(
                job_id,
                m.BatchTaskCreateOptions(
                    id="t",
                    command_line="/bin/true",
                    environment_settings=[m.EnvironmentSetting(name="X", value="1\x002")],
                ),
            ),
            "environmentSettings[0].value",
        )
        _refused(
            lambda: client.update_job(
                job_id, m.BatchJobUpdateOptions(metadata=[m.BatchMetadataItem(name="\x00", value="")])
            ),
            "metadata[0].name",
        )
        assert not list(client.list_tasks(job_id))
    finally:
        client.begin_delete_job(job_id, polling_interval=0.2).result(timeout=30)


def test_nul_in_a_pool_start_task_and_in_a_raw_body_is_refused(service: Service, client: Any, unique: Unique) -> None:
    pool_id = unique("nulpool")
    _refused(
        lambda: client.create_pool(
            m.BatchPoolCreateOptions(
                id=pool_id,
                vm_size="standard_d2s_v3",
                virtual_machine_configuration=vm_config(),
                target_dedicated_nodes=0,
                start_task=m.BatchStartTask(command_line="/bin/true\x00"),
            )
        ),
        "startTask.commandLine",
    )
    # A client that writes the escape itself gets the same answer.
    answer = signed_request(
        service.url, "POST", "/jobs", body={"id": unique("raw"), "poolInfo": {"poolId": "p"}, "displayName": "\u0000"}
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "InvalidPropertyValue"
    assert {v["key"]: v["value"] for v in answer.json()["values"]}["PropertyName"] == "displayName"


def test_nul_in_a_path_or_a_filter_gets_the_usual_errors(service: Service) -> None:
    missing = signed_request(service.url, "GET", "/jobs/a%00b")
    assert missing.status_code == 404, missing.text
    filtered = signed_request(service.url, "GET", "/jobs", params={"$filter": "id eq 'a\x00b'"})
    assert missing.json()["code"] == "JobNotFound"
    assert (filtered.status_code, filtered.json()["code"]) == (400, "InvalidQueryParameterValue")
