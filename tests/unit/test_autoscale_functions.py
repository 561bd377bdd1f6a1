"""Every predefined function of the autoscale language, with its edge cases."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from batchyard.service.autoscale.values import Timestamp, Vec
from tests.unit.autoscale_support import NOW, failure, run, value

V = "vec(1, 2, 3)"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("avg(1, 2, 3, 4)", 2.5),
        (f"avg({V})", 2.0),
        (f"avg({V}, 7)", 3.25),  # the seed: avg(v, 7) is avg(1, 2, 3, 7)
        ("avg(5)", 5.0),
        (f"len({V}, 4, vec(5, 6))", 6.0),
        ("len(vec())", 0.0),
        ("len()", 0.0),
        (f"max({V}, 0)", 3.0),
        (f"min({V}, 0)", 0.0),
        ("max(-1, vec(-5, -2))", -1.0),
        ("norm(3, 4)", 5.0),
        ("norm(vec(1, 2), 2)", 3.0),
        ("norm()", 0.0),
        (f"range({V}, 10)", 9.0),
        ("range(4)", 0.0),
        (f"sum({V}, 4)", 10.0),
        ("sum()", 0.0),
        ("sum(vec())", 0.0),
        ("std(2, 4, 4, 4, 5, 5, 7, 9)", math.sqrt(32 / 7)),  # sample (n - 1) standard deviation
        ("std(1, 3)", math.sqrt(2)),
        ("std(42)", 0.0),  # one value has no spread
        ("lg(8)", 3.0),
        ("ln(1)", 0.0),
        ("log(1000)", 3.0),
        ("lg(0)", -math.inf),
        ("ceil(1.2)", 2.0),
        ("floor(-1.2)", -2.0),
        ("round(2.5)", 2.0),  # to even, as .NET Math.Round
        ("round(3.5)", 4.0),
        (f"percentile({V}, 50)", 2.0),
        ("percentile(vec(15, 20, 35, 40, 50), 0)", 15.0),
        ("percentile(vec(15, 20, 35, 40, 50), 30)", 20.0),  # nearest rank: ceil(0.3 * 5) = 2nd
        ("percentile(vec(15, 20, 35, 40, 50), 40)", 20.0),
        ("percentile(vec(50, 15, 40, 20, 35), 100)", 50.0),
        ("percentile(7, 90)", 7.0),
        (f"val({V}, 0)", 1.0),
        (f"val({V}, 2)", 3.0),
        ("val(9, 0)", 9.0),
    ],
)
def test_function_values(expr: str, expected: float) -> None:
    assert value(expr) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("lg(vec(1, 2, 4))", (0.0, 1.0, 2.0)),
        ("lg(1, 8)", (0.0, 3.0)),  # several arguments make a doubleVecList
        ("lg(vec(4))", (2.0,)),  # the seed's explicit vec(double) form
        ("ln(vec(1))", (0.0,)),
        ("log(vec(10, 100))", (1.0, 2.0)),
        ("ceil(vec(1.5, -1.5))", (2.0, -1.0)),
        ("floor(vec(1.5), 2)", (1.0, 2.0)),
        ("round(vec(0.4, 0.6))", (0.0, 1.0)),
        ("vec(1, vec(2, 3), 4)", (1.0, 2.0, 3.0, 4.0)),
        ("vec()", ()),
    ],
)
def test_componentwise_functions_give_vectors(expr: str, expected: tuple[float, ...]) -> None:
    result = value(expr)
    assert isinstance(result, Vec)
    assert result.items == pytest.approx(expected)


def test_logarithms_follow_dotnet_doubles() -> None:
    assert math.isnan(value("ln(-1)"))  # type: ignore[arg-type]
    assert value("log(vec(0))") == Vec((-math.inf,))
    assert value("ceil(1/0)") == math.inf


@pytest.mark.parametrize("name", ["avg", "max", "min", "range", "std"])
def test_list_functions_of_nothing_are_errors(name: str) -> None:
    for args in ("", "vec()"):
        error = failure(f"$x = {name}({args});")
        assert f"{name} of an empty list is undefined" in error.message
        assert error.col == 6


@pytest.mark.parametrize("name", ["avg", "len", "max", "min", "norm", "range", "std", "sum", "lg", "vec"])
def test_list_functions_take_only_doubles_and_vectors(name: str) -> None:
    assert f"{name} takes doubles and doubleVecs, not string" in failure(f'$x = {name}(1, "a");').message
    assert "not timestamp" in failure(f"$x = {name}(time(), 2);").message


def test_componentwise_functions_need_an_argument() -> None:
    assert "lg takes a double or a doubleVecList" in failure("$x = lg();").message


def test_percentile_bounds_and_arguments() -> None:
    assert "between 0 and 100, not 101" in failure(f"$x = percentile({V}, 101);").message
    assert "between 0 and 100, not -1" in failure(f"$x = percentile({V}, -1);").message
    assert "empty vector" in failure("$x = percentile(vec(), 50);").message
    assert "takes 2 arguments, not 1" in failure(f"$x = percentile({V});").message
    assert "a doubleVec as its first argument, not string" in failure('$x = percentile("a", 5);').message
    assert "a double as its second argument, not doubleVec" in failure(f"$x = percentile({V}, {V});").message


def test_val_bounds() -> None:
    for index in ("3", "-1", "0.5", "1/0"):
        assert "is not a whole number from 0 to 2" in failure(f"$x = val({V}, {index});").message
    assert "is not a whole number" in failure("$x = val(vec(), 0);").message


def test_rand_is_between_zero_and_one_and_takes_nothing() -> None:
    draws = [run("$x = rand();").values["$x"] for _ in range(3)]
    assert all(isinstance(d, float) and 0 <= d < 1 for d in draws)
    result = run("$a = rand(); $b = rand();")
    assert result.values["$a"] != result.values["$b"]
    assert "rand takes 0 arguments, not 1" in failure("$x = rand(1);").message


def test_stop_ends_the_evaluation_keeping_what_was_assigned() -> None:
    result = run("$TargetDedicatedNodes = 2; $a = 1; stop(); $TargetDedicatedNodes = 9; $b = 2;")
    assert result.error is None and result.stopped
    assert result.target_dedicated == 2
    assert result.results.endswith("$NodeDeallocationOption=requeue;$a=1")
    assert run("$x = 0 ? stop() : 3; $y = 4;").values["$y"] == 4.0
    assert run("$x = 1 ? stop() : 3; $y = 4;").results.endswith("requeue")
    assert "stop takes 0 arguments" in failure("$x = stop(1);").message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-10-14T18:36:43Z", datetime(2016, 10, 14, 18, 36, 43, tzinfo=UTC)),
        ("2016-10-14T18:36:43.2820000Z", datetime(2016, 10, 14, 18, 36, 43, 282000, tzinfo=UTC)),
        ("2016-10-14T20:36:43+02:00", datetime(2016, 10, 14, 18, 36, 43, tzinfo=UTC)),
        ("2016-10-14T18:36Z", datetime(2016, 10, 14, 18, 36, tzinfo=UTC)),
        ("2016-10-14", datetime(2016, 10, 14, tzinfo=UTC)),
        ("2016-10", datetime(2016, 10, 1, tzinfo=UTC)),
        ("2016", datetime(2016, 1, 1, tzinfo=UTC)),
        ("Fri, 14 Oct 2016 18:36:43 GMT", datetime(2016, 10, 14, 18, 36, 43, tzinfo=UTC)),  # RFC 1123 (.NET "r")
    ],
)
def test_time_parses_w3c_dtf_and_rfc_1123(text: str, expected: datetime) -> None:
    assert value(f'time("{text}")') == Timestamp(expected)


def test_time_without_a_string_is_now() -> None:
    assert value("time()") == Timestamp(NOW)
    assert value('time("")') == Timestamp(NOW)


@pytest.mark.parametrize("text", ["yesterday", "2016-13-01", "2016-10-14T18:36:43", "14/10/2016", "2016-10-14 x"])
def test_time_rejects_other_strings(text: str) -> None:
    assert "neither a W3C-DTF nor an RFC 1123" in failure(f'$x = time("{text}");').message


def test_time_takes_a_string() -> None:
    assert "time takes a string, not double" in failure("$x = time(5);").message
    assert "time takes 1 argument, not 2" in failure('$x = time("a", "b");').message
