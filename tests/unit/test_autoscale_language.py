"""The autoscale formula language: syntax, limits, the operations table, variables and results."""

from __future__ import annotations

import itertools
import math

import pytest

from batchyard.service.autoscale import FormulaSyntaxError, parse
from batchyard.service.autoscale.errors import EVALUATION_ERROR, SYNTAX_ERROR, TOO_LONG
from batchyard.service.autoscale.values import Interval, Timestamp, Vec, type_name
from tests.unit.autoscale_support import NOW, failure, history, run, value

# --- syntax -------------------------------------------------------------------------------------


def syntax_error(formula: str) -> FormulaSyntaxError:
    with pytest.raises(FormulaSyntaxError) as caught:
        parse(formula)
    return caught.value


def test_statements_comments_and_line_breaks() -> None:
    program = parse(
        "// leading comment\n"
        "$a = 1;  // trailing comment\n"
        "$b =\n   $a + 2;;\n"
        "$c = $b * 2"  # the last statement may omit the ';'
    )
    assert [s.target for s in program.statements] == ["$a", "$b", "$c"]
    assert [s.pos for s in program.statements] == [(2, 1), (3, 1), (5, 1)]
    assert program.statements[1].text == "$b = $a + 2"
    assert run(program.source).results.endswith("$a=1;$b=3;$c=6")


def test_an_empty_formula_is_valid_and_changes_nothing() -> None:
    assert parse("").statements == ()
    assert run("  // nothing\n;;").results == (
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )


@pytest.mark.parametrize(
    ("formula", "line", "col", "words"),
    [
        ("$a = 1 $b = 2;", 1, 8, "Expected ';'"),
        ("$a = (1 + 2;", 1, 12, "Expected ')'"),
        ("$a = 1 +;", 1, 9, "Expected a value"),
        ("$a = 5 % 2;", 1, 8, "Unexpected character '%'"),
        ("$a = 1;\n$b = $a ? 2;", 2, 12, "':' of the ternary"),
        ('$a = "open;', 1, 6, "Unterminated string"),
        ("$a = 12abc;", 1, 6, "Malformed number"),
        ("$a = $ + 1;", 1, 6, "variable name must follow"),
        ("$a = foo(1);", 1, 6, "Unknown function 'foo'"),
        ("$a = $CPUPercent.GetSamples(1);", 1, 18, "Unknown method 'GetSamples'"),
        ("$a = time().hours;", 1, 13, "Unknown member 'hours'"),
        ("$a = $b(1);", 1, 6, "is a variable, not a function"),
        ("$CPUPercent = 1;", 1, 1, "read-only"),
        ("$CurrentDedicated = 1;", 1, 1, "read-only"),
        ("TimeInterval_Minute = 1;", 1, 1, "constant"),
        ("taskcompletion = 1;", 1, 1, "constant"),
        ("max = 1;", 1, 1, "function"),
        ("\n\n   $a = = 1;", 3, 9, "Expected a value"),
        ("$a = 1;\n$b = 2 +\n  * 3;", 3, 3, "Expected a value"),
    ],
)
def test_syntax_errors_name_their_position(formula: str, line: int, col: int, words: str) -> None:
    error = syntax_error(formula)
    assert error.code == SYNTAX_ERROR
    assert (error.line, error.col) == (line, col)
    assert words in error.detail
    assert error.message.startswith(f"Line {line}, Col {col}: ")


def test_formula_length_limit_is_8192_characters() -> None:
    body = "$a = 1;"
    padded = body + " " * (8192 - len(body))
    assert len(parse(padded).statements) == 1
    error = syntax_error(padded + " ")
    assert error.code == TOO_LONG
    assert "8193 characters" in error.message


def test_at_most_100_statements() -> None:
    hundred = "".join(f"$v{i} = {i};" for i in range(100))
    assert len(parse(hundred).statements) == 100
    error = syntax_error(hundred + "$v100 = 100;")
    assert error.code == SYNTAX_ERROR
    assert "more than 100 statements" in error.detail
    assert error.col == len(hundred) + 1


def test_nesting_and_depth_limits_are_syntax_errors_not_crashes() -> None:
    assert value("(" * 30 + "1" + ")" * 30) == 1.0
    assert "nested" in syntax_error("$a = " + "(" * 200 + "1" + ")" * 200 + ";").detail
    assert "nested" in syntax_error("$a = " + "-" * 200 + "1;").detail
    assert "deep" in syntax_error("$a = " + "+".join(["1"] * 500) + ";").detail
    assert value("+".join(["1"] * 150)) == 150.0


def test_numbers_and_strings() -> None:
    assert value("1.5e2") == 150.0
    assert value(".25") == 0.25
    assert value("'single'") == "single"
    assert value('"double \\" quote"') == 'double " quote'


# --- the operations table -----------------------------------------------------------------------

SAMPLES = {
    "double": "2",
    "doubleVec": "vec(1, 2)",
    "string": '"b"',
    "timestamp": 'time("2016-10-13T00:00:00Z")',
    "timeinterval": "TimeInterval_Minute",
}
VALID: dict[tuple[str, str, str], str] = {}
for _op in "+-*/":
    VALID[("double", _op, "double")] = "double"
    VALID[("doubleVec", _op, "double")] = "doubleVec"
    VALID[("doubleVec", _op, "doubleVec")] = "doubleVec"
VALID[("double", "*", "timeinterval")] = "timeinterval"
VALID[("timeinterval", "*", "double")] = "timeinterval"
VALID[("timeinterval", "/", "double")] = "timeinterval"
VALID[("timeinterval", "+", "timeinterval")] = "timeinterval"
VALID[("timeinterval", "-", "timeinterval")] = "timeinterval"
VALID[("timeinterval", "+", "timestamp")] = "timestamp"
VALID[("timestamp", "+", "timeinterval")] = "timestamp"
VALID[("timestamp", "-", "timestamp")] = "timeinterval"
for _op in ("<", "<=", "==", ">=", ">", "!="):
    for _type in ("double", "string", "timestamp", "timeinterval"):
        VALID[(_type, _op, _type)] = "double"
VALID[("double", "&&", "double")] = "double"
VALID[("double", "||", "double")] = "double"

OPERATORS = ("+", "-", "*", "/", "<", "<=", "==", ">=", ">", "!=", "&&", "||")
ALL_PAIRS = list(itertools.product(SAMPLES, OPERATORS, SAMPLES))


@pytest.mark.parametrize(("left", "op", "right"), ALL_PAIRS, ids=["{} {} {}".format(*p) for p in ALL_PAIRS])
def test_every_operator_and_type_pair(left: str, op: str, right: str) -> None:
    left_text = "0" if (op, left) == ("||", "double") else SAMPLES[left]  # so `||` looks at its right side
    formula = f"$a = 1;\n$x = {left_text} {op} {SAMPLES[right]};"
    result = run(formula)
    expected = VALID.get((left, op, right))
    if expected is None:
        assert result.error is not None, f"{left} {op} {right} should not be defined"
        assert result.error.code == EVALUATION_ERROR
        assert result.error.statement == 2
        assert f"statement 2: The operator '{op}' is not defined for {left} {op} {right}" in result.error.message
        assert result.error.line == 2
    else:
        assert result.error is None, result.error
        assert type_name(result.values["$x"]) == expected


def test_the_table_lists_no_timestamp_minus_interval() -> None:
    error = failure("$x = time() - TimeInterval_Day;")
    assert "timestamp - timeinterval" in error.message


def test_arithmetic_values() -> None:
    assert value("7 / 2") == 3.5
    assert value("2 + 3 * 4 - 1") == 13.0
    assert value("-2 * -3") == 6.0
    assert value("1 / 0") == math.inf
    assert value("-1 / 0") == -math.inf
    assert math.isnan(value("0 / 0"))  # type: ignore[arg-type]
    assert value("vec(1, 2, 3) * 2") == Vec((2.0, 4.0, 6.0))
    assert value("vec(6, 8) / vec(2, 4)") == Vec((3.0, 2.0))
    assert value("vec(1, 2) - 1") == Vec((0.0, 1.0))
    assert value("3 * TimeInterval_Minute") == Interval(180.0)
    assert value("TimeInterval_Hour / 4") == Interval(900.0)
    assert value("TimeInterval_Hour - TimeInterval_Minute") == Interval(3540.0)
    assert value("time() + TimeInterval_Day") == Timestamp(NOW.replace(day=14))
    assert value("TimeInterval_Day + time()") == Timestamp(NOW.replace(day=14))
    assert value('time() - time("2016-10-13T00:00:00Z")') == Interval(19 * 3600 + 18 * 60 + 47.805)


def test_vectors_of_different_lengths_are_an_error() -> None:
    assert "different lengths (2 and 3)" in failure("$x = vec(1, 2) + vec(1, 2, 3);").message


def test_timestamp_overflow_is_an_evaluation_error() -> None:
    assert "out of range" in failure("$x = time() + TimeInterval_Year * 10000;").message
    assert "out of range" in failure("$x = time() + TimeInterval_Year * (1/0);").message


def test_comparisons_and_logic() -> None:
    assert value("2 < 3") == 1.0
    assert value("2 >= 3") == 0.0
    assert value('"abc" < "abd"') == 1.0
    assert value('"B" < "a"') == 1.0  # ordinal
    assert value('"x" == "x"') == 1.0
    assert value("TimeInterval_Minute < TimeInterval_Hour") == 1.0
    assert value('time("2016-01-01") != time("2016-01-01T00:00:00Z")') == 0.0
    assert value("2 && 3") == 1.0
    assert value("2 && 0") == 0.0
    assert value("0 || 0") == 0.0
    assert value("0 || -1") == 1.0
    assert value("1 < 2 && 2 < 3 || 0") == 1.0


def test_logical_operators_short_circuit() -> None:
    assert value("0 && undefinedName") == 0.0
    assert value("1 || undefinedName") == 1.0
    assert "before it is assigned" in failure("$x = 1 && undefinedName;").message


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("-2", -2.0), ("!0", 1.0), ("!5", 0.0), ("!!5", 1.0), ("-TimeInterval_Second", Interval(-1.0)), ("- -2", 2.0)],
)
def test_unary_operators(expr: str, expected: object) -> None:
    assert value(expr) == expected


@pytest.mark.parametrize(
    ("expr", "kind"),
    [
        ("-vec(1)", "doubleVec"),
        ('-"a"', "string"),
        ("-time()", "timestamp"),
        ("!vec(1)", "doubleVec"),
        ('!"a"', "string"),
        ("!time()", "timestamp"),
        ("!TimeInterval_Second", "timeinterval"),
    ],
)
def test_unary_operators_on_other_types_are_errors(expr: str, kind: str) -> None:
    assert f"is not defined for {kind}" in failure(f"$x = {expr};").message


def test_ternary_takes_a_double_and_evaluates_one_branch() -> None:
    assert value("1 ? 2 : 3") == 2.0
    assert value("0 ? 2 : 3") == 3.0
    assert value("-0.5 ? 2 : 3") == 2.0
    assert value("0 ? undefinedName : 3") == 3.0
    assert value("1 ? 1 ? 4 : 5 : 6") == 4.0  # right to left
    assert value("0 ? 1 : 0 ? 2 : 3") == 3.0
    assert value('1 ? "text" : 2') == "text"
    assert "condition of '?:' must be a double, not string" in failure('$x = "a" ? 1 : 2;').message
    assert "must be a double, not doubleVec" in failure("$x = vec(1) ? 1 : 2;").message


# --- types and members --------------------------------------------------------------------------


def test_timestamp_members() -> None:
    stamp = 'time("2016-10-16T13:05:09Z")'  # a Sunday
    assert [value(f"{stamp}.{m}") for m in ("year", "month", "day", "weekday", "hour", "minute", "second")] == [
        2016.0,
        10.0,
        16.0,
        0.0,
        13.0,
        5.0,
        9.0,
    ]
    assert value("time().weekday") == 4.0  # NOW is a Thursday; Monday is 1
    assert "member of a timestamp, not of a double" in failure("$x = (1).year;").message


def test_every_time_interval_constant() -> None:
    expected = {
        "Zero": 0.0,
        "100ns": 1e-7,
        "Microsecond": 1e-6,
        "Millisecond": 1e-3,
        "Second": 1.0,
        "Minute": 60.0,
        "Hour": 3600.0,
        "Day": 86400.0,
        "Week": 604800.0,
        "Year": 365 * 86400.0,
    }
    for suffix, seconds in expected.items():
        assert value(f"TimeInterval_{suffix}") == Interval(seconds)


def test_methods_belong_to_metrics() -> None:
    assert "method of the metric variables, not of a double" in failure("$a = 1; $x = $a.Count();").message


# --- variables ----------------------------------------------------------------------------------


def test_user_variables_with_and_without_dollar() -> None:
    result = run("span = TimeInterval_Minute * 60; $ratio = 50; total = $ratio * 2;")
    assert result.values["span"] == Interval(3600.0)
    assert result.results.endswith(";$ratio=50;span=01:00:00;total=100")


def test_a_variable_used_before_it_is_assigned() -> None:
    error = failure("$a = 1;\n$b = $a + $c;")
    assert error.statement == 2
    assert error.message == "Line 2, Col 11: statement 2: The variable $c is used before it is assigned."


def test_read_write_variables_start_from_the_pool() -> None:
    result = run(
        "$x = $TargetDedicated; $y = $TargetLowPriorityNodes; $z = $NodeDeallocationOption;",
        target_dedicated=4,
        target_low_priority=2,
    )
    assert (result.values["$x"], result.values["$y"], result.values["$z"]) == (4.0, 2.0, "requeue")
    assert result.target_dedicated == 4


def test_seed_and_current_target_names_are_the_same_variable() -> None:
    result = run("$TargetDedicated = 3; $x = $TargetDedicatedNodes;")
    assert result.target_dedicated == 3
    assert result.values["$x"] == 3.0
    assert result.results == "$TargetDedicated=3;$NodeDeallocationOption=requeue;$x=3"
    modern = run("$TargetDedicatedNodes = 3; $TargetLowPriorityNodes = 1;")
    assert modern.results == "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=1;$NodeDeallocationOption=requeue"
    assert modern.target_low_priority == 1


@pytest.mark.parametrize("option", ["requeue", "terminate", "taskcompletion", "retaineddata"])
def test_node_deallocation_options(option: str) -> None:
    assert run(f"$NodeDeallocationOption = {option};").dealloc == option
    assert run(f'$NodeDeallocationOption = "{option.upper()}";').dealloc == option


def test_invalid_deallocation_option() -> None:
    assert (
        "must be one of requeue, terminate, taskcompletion, retaineddata, not 'later'"
        in failure('$NodeDeallocationOption = "later";').message
    )
    assert "not 'double'" in failure("$NodeDeallocationOption = 1;").message


def test_targets_must_be_doubles_of_zero_or_more() -> None:
    assert "must be assigned a double, not string" in failure('$TargetDedicatedNodes = "5";').message
    assert "finite number of 0 or more, not -1" in failure("$TargetDedicatedNodes = -1;").message
    assert "not NaN" in failure("$TargetDedicated = 0/0;").message
    assert "$TargetDedicated must be" in failure("$TargetDedicated = 1/0;").message
    assert "too large" in failure("$TargetLowPriorityNodes = 1e12;").message
    assert run("$TargetDedicatedNodes = 2.9;").target_dedicated == 2  # whole nodes: the fraction is dropped


def test_metrics_need_sampling_but_node_counts_read_as_doubles() -> None:
    current = {
        "CurrentDedicatedNodes": 3,
        "TaskSlotsPerNode": 4,
        "UsableNodeCount": 2,
        "PreemptedNodeCount": 0,
        "CurrentLowPriorityNodes": 1,
    }
    assert value("$CurrentDedicated * 1.1", current=current) == pytest.approx(3.3)
    assert value("$CurrentDedicatedNodes + $CurrentLowPriorityNodes", current=current) == 4.0
    assert value("$TaskSlotsPerNode * $UsableNodeCount + $PreemptedNodeCount", current=current) == 8.0
    error = failure("$x = $ActiveTasks + 1;", histories={"ActiveTasks": history([1])})
    assert "$ActiveTasks is a metric: read its samples with $ActiveTasks.GetSample(...)" in error.message
    assert "is a metric" in failure("$x = $CPUPercent;").message
    assert "is a metric" in failure("$x = max($SampleNodeCount);").message


def test_every_service_variable_is_known() -> None:
    names = [
        "CPUPercent",
        "WallClockSeconds",
        "MemoryBytes",
        "DiskBytes",
        "DiskReadBytes",
        "DiskWriteBytes",
        "DiskReadOps",
        "DiskWriteOps",
        "NetworkInBytes",
        "NetworkOutBytes",
        "SampleNodeCount",
        "ActiveTasks",
        "RunningTasks",
        "PendingTasks",
        "SucceededTasks",
        "FailedTasks",
        "CurrentDedicated",
        "CurrentDedicatedNodes",
        "CurrentLowPriorityNodes",
        "TaskSlotsPerNode",
        "UsableNodeCount",
        "PreemptedNodeCount",
    ]
    histories = {name: history([float(i)]) for i, name in enumerate(names)}
    histories["CurrentDedicatedNodes"] = history([16.0])
    formula = "".join(f"$v{i} = ${name}.GetSample(1);" for i, name in enumerate(names))
    result = run(formula, histories=histories)
    assert result.error is None
    assert result.values["$v3"] == Vec((3.0,))
    assert result.values["$v16"] == Vec((16.0,))  # $CurrentDedicated is $CurrentDedicatedNodes


# --- results ------------------------------------------------------------------------------------


def test_results_format_every_type() -> None:
    result = run(
        '$d = 2.5; $v = vec(1, 2.5); $s = "hi"; $t = time(); $i = TimeInterval_Day + TimeInterval_Second * 1.5;'
        "$n = -TimeInterval_Minute;"
    )
    assert result.results == (
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "$d=2.5;$i=1.00:00:01.5000000;$n=-00:01:00;$s=hi;$t=2016-10-13T19:18:47.805Z;$v=[1,2.5]"
    )
    assert [(name, kind) for name, kind, _ in result.variables][3:] == [
        ("$d", "double"),
        ("$i", "timeinterval"),
        ("$n", "timeinterval"),
        ("$s", "string"),
        ("$t", "timestamp"),
        ("$v", "doubleVec"),
    ]


def test_an_error_keeps_the_values_reached_and_names_the_statement() -> None:
    result = run("$a = 1;\n$TargetDedicatedNodes = 2;\n$b = $a + vec(1);\n$c = 3;")
    assert result.error is not None and result.error.statement == 3
    assert result.results == "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;$a=1"
    assert [step.value for step in result.trace] == ["1", "2", None, None]
