"""Property tests: whatever the input, the language answers with a result or a FormulaError, never a crash."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchyard.service.autoscale import Context, FormulaError, MetricHistory, evaluate, parse
from batchyard.service.autoscale.values import format_value

TOKENS = [
    "$a",
    "$b",
    "x",
    "$TargetDedicated",
    "$TargetDedicatedNodes",
    "$TargetLowPriorityNodes",
    "$NodeDeallocationOption",
    "$CPUPercent",
    "$ActiveTasks",
    "$CurrentDedicated",
    "$TaskSlotsPerNode",
    "TimeInterval_Minute",
    "TimeInterval_100ns",
    "TimeInterval_Year",
    "taskcompletion",
    "0",
    "1",
    "2.5",
    "1e308",
    "-",
    "+",
    "*",
    "/",
    "<",
    "<=",
    "==",
    "!=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "?",
    ":",
    "(",
    ")",
    ",",
    ";",
    "=",
    ".",
    '"s"',
    '"2016-10-13T00:00:00Z"',
    "'Fri, 14 Oct 2016 18:36:43 GMT'",
    "avg(",
    "len(",
    "lg(",
    "ln(",
    "log(",
    "max(",
    "min(",
    "norm(",
    "percentile(",
    "rand(",
    "range(",
    "std(",
    "stop(",
    "sum(",
    "time(",
    "val(",
    "vec(",
    "ceil(",
    "floor(",
    "round(",
    ".GetSample(",
    ".GetSamplePercent(",
    ".GetSamplePeriod(",
    ".Count(",
    ".HistoryBeginTime(",
    ".year",
    ".weekday",
    "\n",
    "// c\n",
    " ",
]

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def _context(values: list[float]) -> Context:
    history = MetricHistory()
    for i, v in enumerate(values):
        history.record(NOW.timestamp() - 30 * (len(values) - i), v)
    return Context(
        now=NOW,
        target_dedicated=2,
        histories={"$CPUPercent": history, "$ActiveTasks": history},
        current={"$CurrentDedicatedNodes": 2.0, "$TaskSlotsPerNode": 4.0},
        delay=30.0,
        rng=random.Random(1),
    )


def _check(formula: str, samples: list[float]) -> None:
    try:
        program = parse(formula)
    except FormulaError as exc:
        assert exc.message  # errors always say something
        return
    result = evaluate(program, _context(samples))
    assert isinstance(result.results, str)
    if result.error is None:
        assert result.target_dedicated >= 0 and result.target_low_priority >= 0
        assert result.dealloc in ("requeue", "terminate", "taskcompletion", "retaineddata")
        for step in result.trace:
            assert step.value is not None or result.stopped
    else:
        assert result.error.line >= 0 and result.error.message
    for name, kind, text in result.variables:
        assert name and kind and isinstance(text, str)
    for v in result.values.values():
        format_value(v)


floats = st.floats(allow_nan=True, allow_infinity=True)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    st.text(alphabet=st.sampled_from(list("$abxTD01.5e+-*/<>=!&|?:(),;\"' \n/_")), max_size=80),
    st.lists(floats, max_size=5),
)
def test_random_characters_never_crash(formula: str, samples: list[float]) -> None:
    _check(formula, samples)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.lists(floats, max_size=40))
def test_random_token_soups_never_crash(tokens: list[str], samples: list[float]) -> None:
    _check(" ".join(tokens), samples)


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(
            [
                "$a",
                "$TargetDedicated",
                "$CurrentDedicated",
                "TimeInterval_Minute",
                "time()",
                '"s"',
                "$CPUPercent.GetSample(3)",
                "$ActiveTasks.GetSample(TimeInterval_Minute * 2, 50)",
                "$CPUPercent.GetSamplePercent(TimeInterval_Hour)",
                "vec()",
                "rand()",
                "stop()",
                "$CPUPercent.HistoryBeginTime()",
                "$ActiveTasks.GetSamplePeriod()",
            ]
        ),
        floats.map(lambda f: repr(f) if f == f and abs(f) != float("inf") else "(0/0)"),
    )

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "<", "==", "&&", "||", ">="]), inner)
        funcs = st.sampled_from(
            [
                "avg",
                "len",
                "lg",
                "max",
                "min",
                "norm",
                "range",
                "std",
                "sum",
                "vec",
                "round",
                "percentile",
                "val",
                "time",
                "ceil",
            ]
        )
        return st.one_of(
            binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["-", "!"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
            st.tuples(funcs, st.lists(inner, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
            inner.map(lambda e: f"({e}).weekday"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["$a", "$TargetDedicatedNodes", "$NodeDeallocationOption", "b"]), _expressions()),
        min_size=1,
        max_size=6,
    ),
    st.lists(floats, max_size=20),
)
def test_random_well_formed_formulas_never_crash(statements: list[tuple[str, str]], samples: list[float]) -> None:
    formula = "$a = 1; b = 2;\n" + "\n".join(f"{target} = {expr};" for target, expr in statements)
    _check(formula, samples)
