"""Autoscale through azure-batch 15.x: enable/disable/evaluate rules, runs, metrics, quota, the debugging CLI.

One service runs with development timings (`--autoscale-sample-period 0.5 --autoscale-min-interval 1`),
so formulas run every second or two instead of every five minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tests.api.helpers import create_pool, idle_nodes, vm_config
from tests.conftest import Service, make_client, start_service, wait_for

FAST = ("--autoscale-sample-period", "0.5", "--autoscale-min-interval", "1")


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("autoscale"), *FAST)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def fclient(fast: Service) -> Any:
    return make_client(fast.url)


def autoscale_pool(client: Any, pool_id: str, formula: str, interval: str | None = "PT1S", **kwargs: Any) -> None:
    client.create_pool(
        m.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=vm_config(),
            enable_auto_scale=True,
            auto_scale_formula=formula,
            auto_scale_evaluation_interval=interval,
            **kwargs,
        )
    )


def error_of(call: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        call()
    return caught.value


def values_of(error: HttpResponseError) -> dict[str, str]:
    return {item["key"]: item["value"] for item in (error.response.json().get("values") or [])}


def test_a_pool_created_with_a_formula_sizes_itself_and_reports_its_runs(fclient: Any, unique: Any) -> None:
    pool_id = unique("as")
    autoscale_pool(fclient, pool_id, "$TargetDedicatedNodes = 1; $NodeDeallocationOption = taskcompletion;")
    pool = fclient.get_pool(pool_id)
    assert pool.enable_auto_scale is True
    assert pool.auto_scale_evaluation_interval.total_seconds() == 1
    assert pool.auto_scale_run.results == (
        "$TargetDedicatedNodes=1;$TargetLowPriorityNodes=0;$NodeDeallocationOption=taskcompletion"
    )
    assert pool.auto_scale_run.error is None
    assert pool.target_dedicated_nodes == 1
    wait_for(lambda: idle_nodes(fclient, pool_id, 1), what="the node the formula asked for")
    first = pool.auto_scale_run.timestamp
    wait_for(lambda: fclient.get_pool(pool_id).auto_scale_run.timestamp > first, timeout=10, what="a periodic run")
    fclient.begin_delete_pool(pool_id)


def test_the_seeds_enable_rules(fclient: Any, unique: Any) -> None:
    pool_id = unique("rules")
    create_pool(fclient, pool_id, nodes=0)
    assert fclient.get_pool(pool_id).auto_scale_run is None
    # Turning autoscale on needs a formula.
    error = error_of(lambda: fclient.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions()))
    assert error.status_code == 400 and error.error.code == "MissingRequiredProperty"
    error = error_of(
        lambda: fclient.enable_pool_auto_scale(
            pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_evaluation_interval="PT5M")
        )
    )
    assert error.error.code == "MissingRequiredProperty"
    # A formula with a syntax error is refused with its position.
    error = error_of(
        lambda: fclient.enable_pool_auto_scale(
            pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 1 +;")
        )
    )
    assert error.status_code == 400 and error.error.code == "AutoScalingFormulaSyntaxError"
    assert values_of(error)["Message"] == "Line 1, Col 28: Expected a value but found ';'."
    # Interval bounds: the development floor here is 1 s, the ceiling 168 hours.
    for interval in ("PT0.5S", "P8D"):
        error = error_of(
            lambda i=interval: fclient.enable_pool_auto_scale(
                pool_id,
                m.BatchPoolEnableAutoScaleOptions(
                    auto_scale_formula="$TargetDedicatedNodes=0;", auto_scale_evaluation_interval=i
                ),
            )
        )
        assert error.error.code == "InvalidPropertyValue"
        assert values_of(error)["Reason"] == "The value must be between 1 seconds and 168 hours."
    # On: the default interval is 15 minutes and the formula runs at once.
    fclient.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$x = 2;"))
    pool = fclient.get_pool(pool_id)
    assert pool.enable_auto_scale and pool.auto_scale_formula == "$x = 2;"
    assert pool.auto_scale_evaluation_interval.total_seconds() == 900
    assert pool.auto_scale_run.results.endswith(";$x=2")
    # Already on: either or both may change, not neither.
    time.sleep(0.2)
    error = error_of(lambda: fclient.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions()))
    assert error.error.code == "MissingRequiredProperty"
    fclient.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_evaluation_interval="PT2S"))
    pool = fclient.get_pool(pool_id)
    assert pool.auto_scale_formula == "$x = 2;" and pool.auto_scale_evaluation_interval.total_seconds() == 2
    time.sleep(0.2)
    fclient.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$x = 3;"))
    pool = fclient.get_pool(pool_id)
    assert pool.auto_scale_evaluation_interval.total_seconds() == 2
    assert pool.auto_scale_run.results.endswith(";$x=3")
    # Manual resize is refused while autoscale is on.
    error = error_of(
        lambda: fclient.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=1)).result()
    )
    assert error.status_code == 409 and error.error.code == "AutoScalingEnabled"
    # Off: the formula, interval and run go; resizing works again.
    fclient.disable_pool_auto_scale(pool_id)
    pool = fclient.get_pool(pool_id)
    assert pool.enable_auto_scale is False
    assert pool.auto_scale_formula is None and pool.auto_scale_run is None
    assert pool.auto_scale_evaluation_interval is None
    fclient.begin_resize_pool(pool_id, m.BatchPoolResizeOptions(target_dedicated_nodes=0), polling_interval=0.2).result(
        timeout=30
    )
    fclient.begin_delete_pool(pool_id)


def test_create_refuses_bad_autoscale_settings(fclient: Any, unique: Any) -> None:
    error = error_of(lambda: autoscale_pool(fclient, unique("bad"), "$TargetDedicatedNodes = foo(1);"))
    assert error.status_code == 400 and error.error.code == "AutoScalingFormulaSyntaxError"
    assert values_of(error)["Message"] == "Line 1, Col 25: Unknown function 'foo'."
    error = error_of(lambda: autoscale_pool(fclient, unique("bad"), "$x = 1;", target_dedicated_nodes=2))
    assert error.error.code == "InvalidPropertyValue" and values_of(error)["PropertyName"] == "targetDedicatedNodes"
    error = error_of(lambda: autoscale_pool(fclient, unique("bad"), "$x = 1;" + " " * 8200))
    assert error.error.code == "AutoScaleFormulaTooLong"


def test_evaluate_is_a_dry_run_on_an_autoscale_pool(fclient: Any, unique: Any) -> None:
    pool_id = unique("eval")
    create_pool(fclient, pool_id, nodes=0)
    evaluate = m.BatchPoolEvaluateAutoScaleOptions
    error = error_of(lambda: fclient.evaluate_pool_auto_scale(pool_id, evaluate(auto_scale_formula="$a=1;")))
    assert error.status_code == 409 and error.error.code == "AutoScalingNotEnabled"
    fclient.enable_pool_auto_scale(
        pool_id,
        m.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula="$TargetDedicated = 0;", auto_scale_evaluation_interval="PT1H"
        ),
    )
    run = fclient.evaluate_pool_auto_scale(
        pool_id,
        m.BatchPoolEvaluateAutoScaleOptions(
            auto_scale_formula="$curTime = time(); $TargetDedicated = $curTime.year > 2000 ? 20:10;"
        ),
    )
    assert run.error is None
    assert run.results.startswith("$TargetDedicated=20;$NodeDeallocationOption=requeue;$curTime=")
    assert run.timestamp is not None
    assert fclient.get_pool(pool_id).target_dedicated_nodes == 0  # nothing applied
    failed = fclient.evaluate_pool_auto_scale(
        pool_id,
        m.BatchPoolEvaluateAutoScaleOptions(
            auto_scale_formula="$a = 1;\n$b = $ActiveTasks.GetSample(TimeInterval_Minute * 10, 90);"
        ),
    )
    assert failed.error.code == "InsufficientSampleData"
    assert failed.error.message == "Autoscale evaluation failed due to insufficient sample data"
    details = {pair.name: pair.value for pair in failed.error.error_values}
    assert details["Statement"] == "2"
    assert details["Message"].startswith("Line 2, Col 19: statement 2: Insufficient data from data set: $ActiveTasks")
    error = error_of(lambda: fclient.evaluate_pool_auto_scale(pool_id, evaluate(auto_scale_formula="$a =")))
    assert error.status_code == 400 and error.error.code == "AutoScalingFormulaSyntaxError"
    fclient.begin_delete_pool(pool_id)


def test_nodes_report_resource_metrics_and_the_cli_prints_every_variable(
    fast: Service, fclient: Any, unique: Any
) -> None:
    pool_id = unique("metrics")
    autoscale_pool(fclient, pool_id, "$TargetDedicatedNodes = 1;", interval="PT1H")
    wait_for(lambda: idle_nodes(fclient, pool_id, 1), what="an idle node")
    formula = (
        "$cpu = avg($CPUPercent.GetSample(1));\n"
        "$nodes = $SampleNodeCount.GetSample(1);\n"
        "$mem = max($MemoryBytes.GetSample(1));\n"
        "$usable = $UsableNodeCount;\n"
        "$TargetDedicatedNodes = $CurrentDedicatedNodes;"
    )
    args = [sys.executable, "-m", "batchyard.cli.main", "autoscale", "evaluate", "--url", fast.url, "--pool", pool_id]

    def evaluate() -> dict[str, Any] | None:
        done = subprocess.run([*args, "--formula", formula, "--json"], capture_output=True, text=True, timeout=30)
        data = json.loads(done.stdout)
        return data if done.returncode == 0 else None

    data = wait_for(evaluate, timeout=20, interval=0.3, what="metric samples from the node")
    variables = {v["name"]: (v["type"], v["value"]) for v in data["variables"]}
    assert variables["$nodes"] == ("doubleVec", "[1]")
    assert 0 <= float(variables["$cpu"][1]) <= 100
    assert float(variables["$mem"][1]) > 1  # megabytes
    assert variables["$usable"] == ("double", "1")
    assert data["targets"]["targetDedicatedNodes"] == 1
    assert {s["name"] for s in data["samples"]} >= {"$CPUPercent", "$ActiveTasks", "$NetworkInBytes"}
    assert [s["value"] for s in data["statements"]][3:] == ["1", "1"]
    # The plain text form, and a failing formula (exit status 1, the error named).
    text = subprocess.run([*args, "--formula", formula], capture_output=True, text=True, timeout=30)
    assert text.returncode == 0
    assert "$nodes = [1]  (doubleVec)" in text.stdout
    assert "line 5: $TargetDedicatedNodes = $CurrentDedicatedNodes\n       = 1" in text.stdout
    bad = subprocess.run([*args, "--formula", '$x = 1;\n$y = $x + "a";'], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "error AutoScalingFormulaEvaluationError" in bad.stdout
    assert "Line 2, Col 9: statement 2: The operator '+' is not defined for double + string." in bad.stdout
    fclient.begin_delete_pool(pool_id)


def test_a_target_past_the_core_quota_reports_the_quota(tmp_path: Path) -> None:
    svc = start_service(tmp_path / "quota", *FAST, "--core-quota", "4")
    try:
        client = make_client(svc.url)
        autoscale_pool(client, "q", "$TargetDedicatedNodes = 3;", interval="PT1H")  # 2-core nodes: 2 fit
        pool = client.get_pool("q")
        assert pool.target_dedicated_nodes == 3
        assert [e.code for e in pool.resize_errors] == ["AccountCoreQuotaReached"]
        wait_for(lambda: idle_nodes(client, "q", 2), what="the nodes within the quota")
        assert len(list(client.list_nodes("q"))) == 2
    finally:
        svc.stop()


def test_enable_requests_are_rate_limited_at_azures_timings(client: Any, unique: Any) -> None:
    pool_id = unique("limit")
    create_pool(client, pool_id, nodes=0)
    client.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$a = 1;"))
    error = error_of(
        lambda: client.enable_pool_auto_scale(pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$a=2;"))
    )
    assert error.status_code == 409 and error.error.code == "TooManyEnableAutoScaleRequests"
    error = error_of(
        lambda: client.enable_pool_auto_scale(
            pool_id, m.BatchPoolEnableAutoScaleOptions(auto_scale_evaluation_interval="PT4M")
        )
    )
    assert error.error.code == "InvalidPropertyValue"  # the contract's 5-minute minimum without the flag
    client.begin_delete_pool(pool_id)
