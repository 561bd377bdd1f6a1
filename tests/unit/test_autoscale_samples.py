"""Sample methods, sample percent and delay, and every formula the seed prints against scripted histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batchyard.service.autoscale import MetricHistory
from batchyard.service.autoscale.errors import INSUFFICIENT_SAMPLES
from batchyard.service.autoscale.values import Interval, Timestamp, Vec
from tests.unit.autoscale_support import NOW, PERIOD, failure, history, run, value

TEN_MINUTES = [float(i) for i in range(1, 21)]  # 20 samples, oldest first


def cpu(values: list[float | None], delay: float = 0.0, **kwargs: object) -> dict[str, object]:
    return {"histories": {"CPUPercent": history(values)}, "delay": delay, **kwargs}


# --- GetSample ----------------------------------------------------------------------------------


def test_get_sample_count_returns_the_most_recent_samples_oldest_first() -> None:
    assert value("$CPUPercent.GetSample(3)", **cpu(TEN_MINUTES)) == Vec((18.0, 19.0, 20.0))
    assert value("$CPUPercent.GetSample(1)", **cpu(TEN_MINUTES)) == Vec((20.0,))
    assert value("$CPUPercent.GetSample(0)", **cpu(TEN_MINUTES)) == Vec(())
    assert value("$CPUPercent.GetSample(50)", **cpu(TEN_MINUTES)) == Vec(tuple(TEN_MINUTES))
    assert value("$CPUPercent.GetSample(1)") == Vec(())  # no history: nothing, not an error
    assert "a count of 0 or more, not -1" in failure("$x = $CPUPercent.GetSample(-1);").message


def test_get_sample_count_skips_samples_not_yet_readable() -> None:
    # Samples take `delay` to become readable: with 60 s the two newest are not there yet.
    assert value("$CPUPercent.GetSample(2)", **cpu(TEN_MINUTES, delay=60)) == Vec((17.0, 18.0))


def test_the_seeds_ten_minute_example() -> None:
    """20 samples if all are present; 18 when the last minute is not available yet (90 percent)."""
    assert len(value("$CPUPercent.GetSample(TimeInterval_Minute * 10)", **cpu(TEN_MINUTES)).items) == 20  # type: ignore[union-attr]
    late = cpu(TEN_MINUTES, delay=60)
    assert len(value("$CPUPercent.GetSample(TimeInterval_Minute * 10)", **late).items) == 18  # type: ignore[union-attr]
    error = failure("$x = $CPUPercent.GetSample(TimeInterval_Minute * 10, 95);", **late)
    assert error.code == INSUFFICIENT_SAMPLES
    assert error.headline == "Autoscale evaluation failed due to insufficient sample data"
    assert error.message == (
        "Line 1, Col 18: statement 1: Insufficient data from data set: $CPUPercent wanted 95%, received 90%"
    )
    assert len(value("$CPUPercent.GetSample(TimeInterval_Minute * 10, 80)", **late).items) == 18  # type: ignore[union-attr]
    assert value("$CPUPercent.GetSamplePercent(TimeInterval_Minute * 10)", **late) == 90.0


def test_a_range_between_two_look_backs() -> None:
    ones = cpu([1.0] * 20)
    expected = Vec((1.0,) * 10)
    assert value("$CPUPercent.GetSample(1 * TimeInterval_Minute, 6 * TimeInterval_Minute)", **ones) == expected
    assert value("$CPUPercent.GetSample(6 * TimeInterval_Minute, 1 * TimeInterval_Minute)", **ones) == expected
    window = value("$CPUPercent.GetSample(TimeInterval_Minute * 2, TimeInterval_Minute * 3)", **cpu(TEN_MINUTES))
    assert window == Vec((15.0, 16.0))


def test_a_range_with_a_sample_percent() -> None:
    gappy = cpu([1.0, None, 1.0, None] * 5)  # half of the samples are missing
    assert value("$CPUPercent.GetSample(60 * TimeInterval_Second, 120 * TimeInterval_Second, 50)", **gappy) == Vec(
        (1.0,)
    )
    error = failure("$x = $CPUPercent.GetSample(60 * TimeInterval_Second, 120 * TimeInterval_Second, 75);", **gappy)
    assert "wanted 75%, received 50%" in error.message


def test_a_range_between_timestamps() -> None:
    start = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = value(f'$CPUPercent.GetSample(time("{start}"))', **cpu(TEN_MINUTES))
    assert result == Vec((11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0))
    mixed = value(f'$CPUPercent.GetSample(time("{start}"), TimeInterval_Minute * 4, 100)', **cpu(TEN_MINUTES))
    assert mixed == Vec((11.0, 12.0))
    shifted = value("$CPUPercent.GetSample(time() + -TimeInterval_Minute, TimeInterval_Zero)", **cpu(TEN_MINUTES))
    assert shifted == Vec((19.0, 20.0))


def test_get_sample_argument_errors() -> None:
    assert "takes 1 to 3 arguments, not 0" in failure("$x = $CPUPercent.GetSample();").message
    assert (
        "timestamps or timeintervals as its time range, not string"
        in failure('$x = $CPUPercent.GetSample("a", 1);').message
    )
    assert "timestamps or timeintervals" in failure("$x = $CPUPercent.GetSample(5, 10);").message
    assert "between 0 and 100, not 150" in failure("$x = $CPUPercent.GetSample(TimeInterval_Minute, 150);").message
    assert (
        "sample percent must be a double, not string"
        in failure('$x = $CPUPercent.GetSample(TimeInterval_Minute, TimeInterval_Second, "x");').message
    )
    assert "not finite" in failure("$x = $CPUPercent.GetSample(TimeInterval_Minute * (1/0));").message


def test_sample_percent_and_the_other_methods() -> None:
    gappy = cpu([5.0, None, None, 6.0, 7.0, None, 8.0, 9.0, None, 10.0])  # 6 of the last 10 periods
    assert value("$CPUPercent.GetSamplePercent(TimeInterval_Minute * 5)", **gappy) == 60.0
    assert value("$CPUPercent.GetSamplePercent(TimeInterval_Minute * 5, TimeInterval_Minute * 10)", **gappy) == 0.0
    assert value("$CPUPercent.GetSamplePercent(TimeInterval_Minute * 100)", **gappy) == 3.0
    assert value("$CPUPercent.GetSamplePeriod()", **gappy) == Interval(PERIOD)
    assert value("$CPUPercent.Count()", **gappy) == 6.0
    start = datetime.fromtimestamp((NOW.timestamp() // PERIOD) * PERIOD - 9 * PERIOD, UTC)
    assert value("$CPUPercent.HistoryBeginTime()", **gappy) == Timestamp(start)
    assert value("$CPUPercent.Count()") == 0.0
    error = failure("$x = $CPUPercent.HistoryBeginTime();")
    assert error.code == INSUFFICIENT_SAMPLES and "$CPUPercent has no samples yet" in error.message
    assert "Count takes 0 arguments, not 1" in failure("$x = $CPUPercent.Count(1);").message
    assert "takes 1 to 2 arguments" in failure("$x = $CPUPercent.GetSamplePercent();").message


def test_a_history_is_bounded_and_ordered() -> None:
    bounded = MetricHistory(3)
    for second in range(5):
        bounded.record(float(second), float(second))
    bounded.record(2.0, 99.0)  # out of order: ignored
    assert list(bounded.samples) == [(2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]


# --- the seed's formulas --------------------------------------------------------------------------


TWO_LINE = """$averageActiveTaskCount = avg($ActiveTasks.GetSample(TimeInterval_Minute * 15));
$TargetDedicated = min(10, $averageActiveTaskCount);"""


@pytest.mark.parametrize(("active", "target"), [([4.0] * 30, 4), ([2.0, 4.0] * 15, 3), ([25.0] * 30, 10)])
def test_the_two_line_example(active: list[float], target: int) -> None:
    result = run(TWO_LINE, histories={"ActiveTasks": history(active)})
    assert result.error is None
    assert result.target_dedicated == target


CPU_FORMULA = """$totalNodes =
    (min($CPUPercent.GetSample(TimeInterval_Minute * 10)) > 0.7) ?
    ($CurrentDedicated * 1.1) : $CurrentDedicated;
$totalNodes =
    (avg($CPUPercent.GetSample(TimeInterval_Minute * 60)) < 0.2) ?
    ($CurrentDedicated * 0.9) : $totalNodes;
$TargetDedicated = min(400, $totalNodes)"""


@pytest.mark.parametrize(
    ("cpu_values", "current", "target"),
    [
        ([80.0] * 120, 10, 11),  # busy: 110 percent of the current nodes
        ([80.0] * 120, 400, 400),  # never above 400
        ([0.1] * 120, 10, 9),  # idle: 90 percent (the seed compares $CPUPercent with 0.7 and 0.2 as written)
        ([0.5] * 100 + [0.1] * 20, 10, 10),  # neither: unchanged
    ],
)
def test_the_cpu_formula(cpu_values: list[float], current: int, target: int) -> None:
    result = run(
        CPU_FORMULA,
        histories={"CPUPercent": history(cpu_values)},
        current={"CurrentDedicatedNodes": current},
        target_dedicated=current,
    )
    assert result.error is None, result.error
    assert result.target_dedicated == target
    assert result.results.startswith(f"$TargetDedicated={target}") or target == 11


def test_the_weekday_formula_of_the_pool_snippet() -> None:
    formula = "$TargetDedicated = (time().weekday == 1 ? 5:1);"
    assert run(formula, now=datetime(2016, 10, 17, 9, tzinfo=UTC)).target_dedicated == 5  # Monday
    assert run(formula, now=NOW).target_dedicated == 1


EXAMPLE_1 = """
$curTime = time();
$workHours = $curTime.hour >= 8 && $curTime.hour < 18;
$isWeekday = $curTime.weekday >= 1 && $curTime.weekday <= 5;
$isWorkingWeekdayHour = $workHours && $isWeekday;
$TargetDedicated = $isWorkingWeekdayHour ? 20:10;
"""


def test_example_1_reproduces_the_seeds_results_output() -> None:
    result = run(EXAMPLE_1)
    assert result.results == (
        "$TargetDedicated=10;$NodeDeallocationOption=requeue;$curTime=2016-10-13T19:18:47.805Z;"
        "$isWeekday=1;$isWorkingWeekdayHour=0;$workHours=0"
    )
    # The seed prints it with Results.Replace("$", "\n    $").
    assert result.results.replace("$", "\n    $").split("\n")[1:] == [
        "    $TargetDedicated=10;",
        "    $NodeDeallocationOption=requeue;",
        "    $curTime=2016-10-13T19:18:47.805Z;",
        "    $isWeekday=1;",
        "    $isWorkingWeekdayHour=0;",
        "    $workHours=0",
    ]


@pytest.mark.parametrize(
    ("now", "target"),
    [
        (datetime(2016, 10, 13, 10, tzinfo=UTC), 20),  # Thursday, working hours
        (datetime(2016, 10, 13, 18, tzinfo=UTC), 10),  # 6 PM is after hours
        (datetime(2016, 10, 15, 10, tzinfo=UTC), 10),  # Saturday
        (datetime(2016, 10, 17, 8, tzinfo=UTC), 20),  # Monday 8 AM
    ],
)
def test_example_1_time_based(now: datetime, target: int) -> None:
    assert run(EXAMPLE_1, now=now).target_dedicated == target


EXAMPLE_2 = """
// Get pending tasks for the past 15 minutes.
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
// If we have fewer than 70 percent data points, we use the last sample point,
// otherwise we use the maximum of last sample point and the history average.
$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : max( $ActiveTasks.GetSample(1),
avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// If number of pending tasks is not 0, set targetVM to pending tasks, otherwise
// half of current dedicated.
$targetVMs = $tasks > 0? $tasks:max(0, $TargetDedicated/2);
// The pool size is capped at 20, if target VM value is more than that, set it
// to 20. This value should be adjusted according to your use case.
$TargetDedicated = max(0, min($targetVMs, 20));
// Set node deallocation mode - keep nodes active only until tasks finish
$NodeDeallocationOption = taskcompletion;
"""


@pytest.mark.parametrize(
    ("active", "current_target", "target"),
    [
        ([], 0, 0),  # a new pool: no samples at all
        ([3.0] * 5, 0, 3),  # under 70 percent of the samples: the last one
        ([2.0] * 25 + [6.0] * 5, 2, 6),  # enough samples: max(last, average) = max(6, 2.67)
        ([9.0] * 26 + [1.0] * 4, 4, 8),  # average 8.43 of the readable samples beats the last; 0.43 node dropped
        ([0.0] * 30, 8, 4),  # nothing queued: half of the current target
        ([50.0] * 30, 8, 20),  # capped at 20
    ],
)
def test_example_2_task_based(active: list[float], current_target: int, target: int) -> None:
    result = run(EXAMPLE_2, histories={"ActiveTasks": history(active)}, target_dedicated=current_target, delay=60)
    assert result.error is None, result.error
    assert result.target_dedicated == target
    assert result.dealloc == "taskcompletion"
    assert "$NodeDeallocationOption=taskcompletion" in result.results


EXAMPLE_3 = """
// Determine whether 70 percent of the samples have been recorded in the past
// 15 minutes; if not, use last sample
$samples = $ActiveTasks.GetSamplePercent(TimeInterval_Minute * 15);
$tasks = $samples < 70 ? max(0,$ActiveTasks.GetSample(1)) : max(
$ActiveTasks.GetSample(1),avg($ActiveTasks.GetSample(TimeInterval_Minute * 15)));
// Set the number of nodes to add to one-fourth the number of active tasks (the
// MaxTasksPerComputeNode property on this pool is set to 4, adjust this number
// for your use case)
$cores = $TargetDedicated * 4;
$extraVMs = (($tasks - $cores) + 3) / 4;
$targetVMs = ($TargetDedicated + $extraVMs);
// Attempt to grow the number of compute nodes to match the number of active
// tasks, with a maximum of 3
$TargetDedicated = max(0,min($targetVMs,3));
// Keep the nodes active until the tasks finish
$NodeDeallocationOption = taskcompletion;
"""


@pytest.mark.parametrize(
    ("active", "current_target", "target"),
    [
        ([5.0] * 30, 1, 2),  # one node's 4 slots plus one more for the fifth task: (5 - 4 + 3) / 4 = 1
        ([10.0] * 30, 1, 3),  # 1 + 2.25 nodes wanted, capped at 3
        ([4.0] * 30, 1, 1),  # four tasks fit the one node
        ([0.0] * 30, 2, 0),  # (0 - 8 + 3) / 4 = -1.25: 0.75 nodes wanted, which is none
        ([0.0] * 30, 0, 0),
    ],
)
def test_example_3_parallel_tasks(active: list[float], current_target: int, target: int) -> None:
    result = run(EXAMPLE_3, histories={"ActiveTasks": history(active)}, target_dedicated=current_target, delay=60)
    assert result.error is None, result.error
    assert result.target_dedicated == target
    assert result.dealloc == "taskcompletion"


def example_4(created: datetime, size: int = 4) -> str:
    """The seed's C# string.Format with DateTime.UtcNow.ToString("r") and 4."""
    now = created.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return f"""
    $TargetDedicated = {size};
    lifespan          = time() - time("{now}");
    span              = TimeInterval_Minute * 60;
    startup            = TimeInterval_Minute * 10;
    ratio              = 50;

    $TargetDedicated = (lifespan > startup ? (max($RunningTasks.GetSample(span, ratio),
$ActiveTasks.GetSample(span, ratio)) == 0 ? 0 : $TargetDedicated) : {size});
    """


def test_example_4_keeps_the_initial_size_for_ten_minutes() -> None:
    result = run(example_4(NOW - timedelta(minutes=9)))
    assert result.error is None, result.error
    assert result.target_dedicated == 4
    assert "lifespan=00:09:00.8050000" in result.results
    assert result.results.endswith(";ratio=50;span=01:00:00;startup=00:10:00")


def test_example_4_drops_to_zero_after_an_idle_hour() -> None:
    idle = {"RunningTasks": history([0.0] * 120), "ActiveTasks": history([0.0] * 120)}
    assert run(example_4(NOW - timedelta(hours=2)), histories=idle).target_dedicated == 0


def test_example_4_keeps_its_size_while_tasks_run() -> None:
    busy = {"RunningTasks": history([0.0] * 100 + [2.0] * 20), "ActiveTasks": history([0.0] * 120)}
    assert run(example_4(NOW - timedelta(hours=2)), histories=busy).target_dedicated == 4


def test_example_4_needs_half_of_the_hours_samples() -> None:
    young = {"RunningTasks": history([0.0] * 40), "ActiveTasks": history([0.0] * 40)}  # a 20-minute history
    result = run(example_4(NOW - timedelta(minutes=20)), histories=young)
    assert result.error is not None and result.error.code == INSUFFICIENT_SAMPLES
    assert result.error.statement == 6
    assert "Insufficient data from data set: $RunningTasks wanted 50%, received 33%" in result.error.message
    assert result.target_dedicated == 4  # what statement 1 set before the failure; a run applies nothing
