"""ISO-8601 durations as the Azure Batch service (.NET TimeSpan / XmlConvert) reads and writes them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from batchyard.service.models import durations
from batchyard.service.models.durations import (
    UNLIMITED,
    canonical_duration,
    duration_seconds,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("P7D", timedelta(days=7)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT0S", timedelta(0)),
        ("PT5.5S", timedelta(seconds=5.5)),
        ("PT02H00M00S", timedelta(hours=2)),  # the azure-batch 15.x SDK pads with zeros
        ("P1W", timedelta(days=7)),
        ("PT36H", timedelta(hours=36)),
        ("pt1m", timedelta(minutes=1)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        UNLIMITED,
        "P999999999DT23H59M59.999999S",
        "P20000000D",
    ],  # .NET MaxValue, msrest's timedelta.max, beyond
)
def test_unlimited_parses_to_none(text: str) -> None:
    assert parse_duration(text) is None
    assert durations.is_unlimited(text)
    assert duration_seconds(text) is None
    assert canonical_duration(text) == UNLIMITED


@pytest.mark.parametrize("text", ["", "P", "PT", "15M", "PT15", "P1.5D", "PT1H2X", "1 day", "P-1D"])
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(minutes=15), "PT15M"),
        (timedelta(days=7), "P7D"),
        (timedelta(0), "PT0S"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000), "P1DT2H3M4.5S"),
        (timedelta(seconds=0.25), "PT0.25S"),
        (timedelta(hours=-1), "-PT1H"),
        (None, UNLIMITED),
        (timedelta.max, UNLIMITED),
    ],
)
def test_format(value: timedelta | None, expected: str) -> None:
    assert format_duration(value) == expected


def test_canonical_form_and_tick_precision() -> None:
    assert canonical_duration("PT900S") == "PT15M"
    assert canonical_duration("P0DT24H") == "P1D"
    assert canonical_duration("PT0.1234567S") == "PT0.1234567S"  # 100 ns ticks survive
    assert canonical_duration("PT0.123456789S") == "PT0.1234567S"  # extra digits truncated like .NET
    assert durations.parse_ticks(UNLIMITED) == durations.MAX_TICKS
    assert durations.format_ticks(durations.MAX_TICKS) == UNLIMITED


def test_round_trip() -> None:
    for text in ("PT1M", "PT1H30M", "P2DT3H4M5S", "PT0.5S", "P10675199DT2H48M5.4775806S"):
        assert canonical_duration(text) == text
    assert duration_seconds("PT1M30S") == 90.0
