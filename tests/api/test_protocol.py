"""The wire protocol through raw signed HTTP: headers, api-version, Shared Key, bodies, conditions, ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from batchyard.service.auth import format_ocp_date, sign_request, string_to_sign
from batchyard.service.config import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, DEV_ACCOUNT_SECONDARY_KEY
from tests.api.helpers import pool_body, signed_request
from tests.conftest import Service

Unique = Callable[[str], str]


def _code(response: httpx.Response) -> str:
    return str(response.json()["code"])


def _values(response: httpx.Response) -> dict[str, str]:
    return {item["key"]: item["value"] for item in response.json().get("values", [])}


def _job_body(job_id: str, pool_id: str = "nowhere") -> dict[str, Any]:
    return {"id": job_id, "poolInfo": {"poolId": pool_id}}


# --- standard headers -----------------------------------------------------------------------------------


def test_request_id_always_and_client_request_id_only_when_asked(service: Service) -> None:
    client_id = "9C4D50EE-2D56-4CD3-8152-34347DC9F2B0"
    plain = signed_request(service.url, "GET", "/pools", headers={"client-request-id": client_id})
    assert plain.status_code == 200
    assert plain.headers.get("request-id")
    assert "client-request-id" not in plain.headers

    echoed = signed_request(
        service.url,
        "GET",
        "/pools",
        headers={"client-request-id": client_id, "return-client-request-id": "true"},
    )
    assert echoed.headers["client-request-id"] == client_id
    assert echoed.headers["request-id"] != plain.headers["request-id"]

    refused = signed_request(
        service.url,
        "GET",
        "/pools",
        headers={"client-request-id": client_id, "return-client-request-id": "false"},
    )
    assert "client-request-id" not in refused.headers

    # Errors carry the headers too.
    error = signed_request(
        service.url,
        "GET",
        "/pools/no-such-pool-here",
        headers={"client-request-id": client_id, "return-client-request-id": "true"},
    )
    assert error.status_code == 404
    assert error.headers["client-request-id"] == client_id
    assert error.headers.get("request-id")


# --- api-version -------------------------------------------------------------------------------------


def test_unknown_api_version_is_invalid_query_parameter(service: Service) -> None:
    response = signed_request(service.url, "GET", "/pools", api_version="2099-01-01.99.0")
    assert response.status_code == 400
    assert _code(response) == "InvalidQueryParameterValue"
    assert _values(response)["QueryParameterName"] == "api-version"
    assert _values(response)["QueryParameterValue"] == "2099-01-01.99.0"

    garbage = signed_request(service.url, "GET", "/pools", api_version="latest")
    assert garbage.status_code == 400
    assert _code(garbage) == "InvalidQueryParameterValue"


def test_missing_api_version_is_missing_query_parameter(service: Service) -> None:
    response = signed_request(service.url, "GET", "/pools", api_version=None)
    assert response.status_code == 400
    assert _code(response) == "MissingRequiredQueryParameter"
    assert _values(response)["QueryParameterName"] == "api-version"


@pytest.mark.parametrize("version", ["2022-01-01.15.0", "2023-05-01.17.0", "2024-02-01.19.0", "2025-06-01"])
def test_older_api_versions_work(service: Service, unique: Unique, version: str) -> None:
    job_id = unique("oldver")
    created = signed_request(service.url, "POST", "/jobs", body=_job_body(job_id), api_version=version)
    assert created.status_code == 201, created.text
    got = signed_request(service.url, "GET", f"/jobs/{job_id}", api_version=version)
    assert got.status_code == 200
    assert got.json()["id"] == job_id
    assert got.json()["state"] == "active"
    listed = signed_request(service.url, "GET", "/jobs", api_version=version)
    assert job_id in {job["id"] for job in listed.json()["value"]}
    assert signed_request(service.url, "DELETE", f"/jobs/{job_id}", api_version=version).status_code == 202


# --- Shared Key --------------------------------------------------------------------------------------


def _expected_signature(method: str, url: str, headers: dict[str, str], key: str) -> str:
    text = string_to_sign(method, DEV_ACCOUNT_NAME, url, headers)
    digest = hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _assert_auth_failed(response: httpx.Response, *secrets: str) -> None:
    assert response.status_code == 403, response.text
    assert _code(response) == "AuthenticationFailed"
    for secret in secrets:
        assert secret not in response.text


def test_missing_authorization_is_rejected(service: Service) -> None:
    response = signed_request(service.url, "GET", "/pools", sign=False)
    _assert_auth_failed(response)


def test_bad_signature_is_rejected_without_leaking_the_expected_one(service: Service) -> None:
    url = f"{service.url}/pools?api-version=2025-06-01.21.0"
    headers = {"ocp-date": format_ocp_date()}
    expected = _expected_signature("GET", url, headers, DEV_ACCOUNT_KEY)
    forged = base64.b64encode(b"x" * 32).decode()
    response = httpx.get(url, headers={**headers, "Authorization": f"SharedKey {DEV_ACCOUNT_NAME}:{forged}"})
    _assert_auth_failed(response, expected, DEV_ACCOUNT_KEY)

    # Signed for another path: a valid MAC of the wrong request.
    other = sign_request(
        DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, "GET", f"{service.url}/jobs?api-version=2025-06-01.21.0", headers
    )
    response = httpx.get(url, headers={**headers, "Authorization": other})
    _assert_auth_failed(response, expected)

    # Not a SharedKey header at all.
    response = httpx.get(url, headers={**headers, "Authorization": "Bearer abc"})
    _assert_auth_failed(response)
    response = httpx.get(url, headers={**headers, "Authorization": "SharedKey nonsense"})
    _assert_auth_failed(response)


def test_wrong_key_is_rejected(service: Service) -> None:
    wrong = base64.b64encode(b"not the key of this account at all!!").decode()
    response = signed_request(service.url, "GET", "/pools", key=wrong)
    _assert_auth_failed(response, DEV_ACCOUNT_KEY)


def test_wrong_account_name_is_rejected(service: Service) -> None:
    url = f"{service.url}/pools?api-version=2025-06-01.21.0"
    headers = {"ocp-date": format_ocp_date()}
    auth = sign_request("someoneelse", DEV_ACCOUNT_KEY, "GET", url, headers)
    _assert_auth_failed(httpx.get(url, headers={**headers, "Authorization": auth}))


@pytest.mark.parametrize("skew", [timedelta(minutes=-30), timedelta(minutes=30)])
def test_stale_or_future_date_is_rejected(service: Service, skew: timedelta) -> None:
    stale = format_ocp_date(datetime.now(UTC) + skew)
    response = signed_request(service.url, "GET", "/pools", headers={"ocp-date": stale})
    _assert_auth_failed(response)


def test_missing_date_is_rejected(service: Service) -> None:
    url = f"{service.url}/pools?api-version=2025-06-01.21.0"
    auth = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, "GET", url, {})
    _assert_auth_failed(httpx.get(url, headers={"Authorization": auth}))


def test_secondary_key_works(service: Service, unique: Unique) -> None:
    job_id = unique("seckey")
    created = signed_request(service.url, "POST", "/jobs", body=_job_body(job_id), key=DEV_ACCOUNT_SECONDARY_KEY)
    assert created.status_code == 201, created.text
    got = signed_request(service.url, "GET", f"/jobs/{job_id}", key=DEV_ACCOUNT_SECONDARY_KEY)
    assert got.status_code == 200
    assert got.json()["id"] == job_id


def test_tampered_body_is_rejected(service: Service, unique: Unique) -> None:
    """content-length is signed: a body swapped for a longer one after signing does not authenticate."""
    job_id = unique("tamper")
    import orjson

    original = orjson.dumps(_job_body(job_id))
    url = f"{service.url}/jobs?api-version=2025-06-01.21.0"
    headers = {
        "ocp-date": format_ocp_date(),
        "content-type": "application/json; odata=minimalmetadata",
        "content-length": str(len(original)),
    }
    auth = sign_request(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY, "POST", url, headers)
    longer = orjson.dumps(_job_body(job_id + "-x"))
    sent = {k: v for k, v in headers.items() if k != "content-length"} | {"Authorization": auth}
    _assert_auth_failed(httpx.post(url, content=longer, headers=sent))
    missing = signed_request(service.url, "GET", f"/jobs/{job_id}-x")
    assert missing.status_code == 404


# --- bodies ------------------------------------------------------------------------------------------


def test_malformed_json_is_invalid_request_body(service: Service) -> None:
    for content in (b"{not json", b"[1, 2", b'{"id": "x",}'):
        response = signed_request(service.url, "POST", "/pools", content=content)
        assert response.status_code == 400, content
        assert _code(response) == "InvalidRequestBody"
    for content in (b"[]", b'"pool"', b"42", b"null"):
        response = signed_request(service.url, "POST", "/jobs", content=content)
        assert response.status_code == 400, content
        assert _code(response) == "InvalidRequestBody"


def test_missing_required_property_is_named(service: Service, unique: Unique) -> None:
    body = pool_body(unique("pool"))
    del body["vmSize"]
    response = signed_request(service.url, "POST", "/pools", body=body)
    assert response.status_code == 400
    assert _code(response) == "MissingRequiredProperty"
    assert _values(response)["PropertyName"] == "vmSize"

    response = signed_request(service.url, "POST", "/jobs", body={"id": unique("job")})
    assert response.status_code == 400
    assert _code(response) == "MissingRequiredProperty"
    assert _values(response)["PropertyName"] == "poolInfo"

    job_id = unique("job")
    assert signed_request(service.url, "POST", "/jobs", body=_job_body(job_id)).status_code == 201
    response = signed_request(service.url, "POST", f"/jobs/{job_id}/tasks", body={"id": "t1"})
    assert response.status_code == 400
    assert _code(response) == "MissingRequiredProperty"
    assert _values(response)["PropertyName"] == "commandLine"

    body = pool_body(unique("pool"), startTask={"waitForSuccess": True})
    response = signed_request(service.url, "POST", "/pools", body=body)
    assert response.status_code == 400
    assert _values(response)["PropertyName"] == "startTask.commandLine"


def test_wrong_property_type_is_invalid_property_value(service: Service, unique: Unique) -> None:
    body = pool_body(unique("pool"), targetDedicatedNodes="two")
    response = signed_request(service.url, "POST", "/pools", body=body)
    assert response.status_code == 400
    assert _code(response) == "InvalidPropertyValue"
    assert _values(response)["PropertyName"] == "targetDedicatedNodes"


# --- conditional requests ----------------------------------------------------------------------------


def _new_pool(service: Service, pool_id: str) -> httpx.Response:
    response = signed_request(service.url, "POST", "/pools", body=pool_body(pool_id, targetDedicatedNodes=0))
    assert response.status_code == 201, response.text
    return response


def test_if_match_with_stale_etag_is_412(service: Service, unique: Unique) -> None:
    pool_id = unique("etag")
    created = _new_pool(service, pool_id)
    old_etag = created.headers["ETag"]
    try:
        first = signed_request(
            service.url,
            "PATCH",
            f"/pools/{pool_id}",
            body={"metadata": [{"name": "a", "value": "1"}]},
            headers={"If-Match": old_etag},
        )
        assert first.status_code == 200, first.text
        new_etag = first.headers["ETag"]
        assert new_etag != old_etag

        stale = signed_request(
            service.url,
            "PATCH",
            f"/pools/{pool_id}",
            body={"metadata": [{"name": "a", "value": "2"}]},
            headers={"If-Match": old_etag},
        )
        assert stale.status_code == 412
        assert _code(stale) == "ConditionNotMet"
        got = signed_request(service.url, "GET", f"/pools/{pool_id}").json()
        assert got["metadata"] == [{"name": "a", "value": "1"}]
        assert got["eTag"] == new_etag

        # The same through the job routes.
        job_id = unique("etagjob")
        job = signed_request(service.url, "POST", "/jobs", body=_job_body(job_id))
        bumped = signed_request(service.url, "PATCH", f"/jobs/{job_id}", body={"priority": 5})
        assert bumped.status_code == 200
        refused = signed_request(
            service.url, "PATCH", f"/jobs/{job_id}", body={"priority": 7}, headers={"If-Match": job.headers["ETag"]}
        )
        assert refused.status_code == 412
        assert signed_request(service.url, "GET", f"/jobs/{job_id}").json()["priority"] == 5
    finally:
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


def test_if_none_match_with_current_etag_is_304(service: Service, unique: Unique) -> None:
    pool_id = unique("inm")
    _new_pool(service, pool_id)
    try:
        current = signed_request(service.url, "GET", f"/pools/{pool_id}")
        etag = current.headers["ETag"]
        assert current.json()["eTag"] == etag
        not_modified = signed_request(service.url, "GET", f"/pools/{pool_id}", headers={"If-None-Match": etag})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        other = signed_request(service.url, "GET", f"/pools/{pool_id}", headers={"If-None-Match": "0x8D000000000"})
        assert other.status_code == 200
        assert other.json()["id"] == pool_id
    finally:
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


def test_if_modified_since(service: Service, unique: Unique) -> None:
    pool_id = unique("ims")
    created = _new_pool(service, pool_id)
    try:
        last_modified = created.headers["Last-Modified"]
        unchanged = signed_request(
            service.url, "GET", f"/pools/{pool_id}", headers={"If-Modified-Since": last_modified}
        )
        assert unchanged.status_code == 304
        earlier = format_ocp_date(datetime.now(UTC) - timedelta(hours=1))
        changed = signed_request(service.url, "GET", f"/pools/{pool_id}", headers={"If-Modified-Since": earlier})
        assert changed.status_code == 200
        # If-Unmodified-Since in the past on a write: 412, nothing changed.
        refused = signed_request(
            service.url,
            "PATCH",
            f"/pools/{pool_id}",
            body={"metadata": [{"name": "x", "value": "y"}]},
            headers={"If-Unmodified-Since": earlier},
        )
        assert refused.status_code == 412
        assert signed_request(service.url, "GET", f"/pools/{pool_id}").json().get("metadata") in (None, [])
        bad = signed_request(service.url, "GET", f"/pools/{pool_id}", headers={"If-Modified-Since": "yesterday"})
        assert bad.status_code == 400
        assert _code(bad) == "InvalidHeaderValue"
    finally:
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


def test_an_etag_condition_decides_alone(service: Service, unique: Unique) -> None:
    """With If-None-Match, If-Modified-Since is not looked at; with If-Match, If-Unmodified-Since is not
    (a date to the second cannot tell two changes within one second apart: the ETag can)."""
    pool_id = unique("etagfirst")
    created = _new_pool(service, pool_id)
    try:
        etag = created.headers["ETag"]
        later = format_ocp_date(datetime.now(UTC) + timedelta(hours=1))
        earlier = format_ocp_date(datetime.now(UTC) - timedelta(hours=1))
        read = signed_request(
            service.url,
            "GET",
            f"/pools/{pool_id}",
            headers={"If-None-Match": "0x8D000000000", "If-Modified-Since": later},
        )
        assert read.status_code == 200
        assert read.json()["id"] == pool_id
        still_304 = signed_request(
            service.url, "GET", f"/pools/{pool_id}", headers={"If-None-Match": etag, "If-Modified-Since": earlier}
        )
        assert still_304.status_code == 304
        written = signed_request(
            service.url,
            "PATCH",
            f"/pools/{pool_id}",
            body={"metadata": [{"name": "x", "value": "y"}]},
            headers={"If-Match": etag, "If-Unmodified-Since": earlier},
        )
        assert written.status_code == 200
        assert signed_request(service.url, "GET", f"/pools/{pool_id}").json()["metadata"] == [
            {"name": "x", "value": "y"}
        ]
    finally:
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


# --- ids ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["x" * 65, "has space", "dot.ted", "slash/y", "ümlaut", ""])
def test_bad_ids_are_invalid_property_value(service: Service, bad_id: str) -> None:
    for path, body in (
        ("/pools", pool_body(bad_id)),
        ("/jobs", _job_body(bad_id)),
    ):
        response = signed_request(service.url, "POST", path, body=body)
        assert response.status_code == 400, (path, response.text)
        assert _code(response) == "InvalidPropertyValue"
        assert _values(response)["PropertyName"] == "id"


def test_bad_task_id_is_invalid_property_value(service: Service, unique: Unique) -> None:
    job_id = unique("taskids")
    assert signed_request(service.url, "POST", "/jobs", body=_job_body(job_id)).status_code == 201
    for bad_id in ("t" * 65, "a b", "a.b"):
        response = signed_request(
            service.url, "POST", f"/jobs/{job_id}/tasks", body={"id": bad_id, "commandLine": "/bin/true"}
        )
        assert response.status_code == 400
        assert _code(response) == "InvalidPropertyValue"
        assert _values(response)["PropertyName"] == "id"
    ok = signed_request(service.url, "POST", f"/jobs/{job_id}/tasks", body={"id": "t" * 64, "commandLine": "/bin/true"})
    assert ok.status_code == 201


def test_ids_are_case_insensitively_unique_and_case_preserving(service: Service, unique: Unique) -> None:
    pool_id = unique("AbC")
    _new_pool(service, pool_id)
    try:
        clash = signed_request(service.url, "POST", "/pools", body=pool_body(pool_id.lower(), targetDedicatedNodes=0))
        assert clash.status_code == 409
        assert _code(clash) == "PoolExists"
        got = signed_request(service.url, "GET", f"/pools/{pool_id.lower()}")
        assert got.status_code == 200
        assert got.json()["id"] == pool_id

        job_id = unique("JoB")
        assert signed_request(service.url, "POST", "/jobs", body=_job_body(job_id)).status_code == 201
        clash = signed_request(service.url, "POST", "/jobs", body=_job_body(job_id.upper()))
        assert clash.status_code == 409
        assert _code(clash) == "JobExists"
        assert signed_request(service.url, "GET", f"/jobs/{job_id.lower()}").json()["id"] == job_id

        task = signed_request(service.url, "POST", f"/jobs/{job_id}/tasks", body={"id": "TaSk", "commandLine": "x"})
        assert task.status_code == 201
        clash = signed_request(service.url, "POST", f"/jobs/{job_id}/tasks", body={"id": "task", "commandLine": "x"})
        assert clash.status_code == 409
        assert _code(clash) == "TaskExists"
        assert signed_request(service.url, "GET", f"/jobs/{job_id}/tasks/TASK").json()["id"] == "TaSk"
    finally:
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")


# --- no client input makes a 500 -----------------------------------------------------------------------

_GARBAGE_BODIES: list[bytes] = [
    b"",
    b"\x00\xff\xfe",
    b"{}",
    b'{"id": null}',
    b'{"id": 5}',
    b'{"id": ["a"]}',
    b'{"id": {"x": 1}}',
    b'{"id": "ok", "vmSize": 3, "virtualMachineConfiguration": "no"}',
    b'{"id": "ok", "poolInfo": 1}',
    b'{"id": "ok", "poolInfo": {"poolId": 7}}',
    b'{"id": "ok", "poolInfo": {"autoPoolSpecification": {"poolLifetimeOption": "never"}}}',
    b'{"id": "ok", "commandLine": ["a"]}',
    b'{"id": "ok", "commandLine": "x", "constraints": {"maxWallClockTime": "forever"}}',
    b'{"id": "ok", "commandLine": "x", "resourceFiles": [{}]}',
    b'{"id": "ok", "commandLine": "x", "requiredSlots": 1e400}',
    b'{"id": "ok", "commandLine": "x", "requiredSlots": -3}',
    b'{"id": "ok", "commandLine": "x", "environmentSettings": [{"name": ""}]}',
    b'{"value": "not a list"}',
    b'{"value": [1, 2, 3]}',
    b'{"value": [null]}',
    b'{"targetDedicatedNodes": -1}',
    b'{"nodeList": "abc"}',
    b'{"nodeList": []}',
    b'{"disableTasks": "sometimes"}',
    b'{"priority": 100000}',
    b'{"priority": "high"}',
    b'{"id": "' + b"a" * 100_000 + b'"}',
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a": ' * 2_000 + b"1" + b"}" * 2_000,
]


def test_no_client_input_produces_a_500(service: Service, unique: Unique) -> None:
    job_id = unique("garbage")
    pool_id = unique("garbage")
    assert signed_request(service.url, "POST", "/jobs", body=_job_body(job_id)).status_code == 201
    task = signed_request(service.url, "POST", f"/jobs/{job_id}/tasks", body={"id": "t", "commandLine": "/bin/true"})
    assert task.status_code == 201
    _new_pool(service, pool_id)
    targets = [
        ("PUT", f"/jobs/{job_id}/tasks/t"),
        ("POST", f"/jobs/{job_id}/tasks/t/terminate"),
        ("POST", "/pools"),
        ("POST", "/jobs"),
        ("POST", f"/jobs/{job_id}/tasks"),
        ("POST", f"/jobs/{job_id}/addtaskcollection"),
        ("PATCH", f"/pools/{pool_id}"),
        ("POST", f"/pools/{pool_id}/updateproperties"),
        ("POST", f"/pools/{pool_id}/resize"),
        ("POST", f"/pools/{pool_id}/removenodes"),
        ("PATCH", f"/jobs/{job_id}"),
        ("PUT", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/disable"),
        ("POST", f"/jobs/{job_id}/terminate"),
    ]
    try:
        failures = []
        for method, path in targets:
            for content in _GARBAGE_BODIES:
                response = signed_request(service.url, method, path, content=content)
                if response.status_code >= 500:
                    failures.append((method, path, content[:60], response.status_code, response.text[:200]))
        assert not failures, failures
        assert "unexpected error" not in service.log()

        params_failures = []
        for params in (
            {"maxresults": "0"},
            {"maxresults": "-5"},
            {"maxresults": "abc"},
            {"maxresults": "99999999999999999999"},
            {"$skiptoken": "zzz"},
            {"$skiptoken": "-1e9"},
            {"$select": ","},
            {"timeout": "abc"},
        ):
            for path in ("/pools", "/jobs", f"/jobs/{job_id}/tasks", f"/pools/{pool_id}/nodes", "/supportedimages"):
                response = signed_request(service.url, "GET", path, params=params)
                if response.status_code >= 500:
                    params_failures.append((path, params, response.status_code))
        assert not params_failures, params_failures
    finally:
        signed_request(service.url, "DELETE", f"/pools/{pool_id}")
        signed_request(service.url, "DELETE", f"/jobs/{job_id}")


def test_unknown_routes_and_verbs_are_batch_errors(service: Service) -> None:
    missing = signed_request(service.url, "GET", "/nothing/here")
    assert missing.status_code == 404
    assert _code(missing) == "InvalidUri"
    verb = signed_request(service.url, "PUT", "/pools")
    assert verb.status_code == 405
    assert _code(verb) == "UnsupportedHttpVerb"
