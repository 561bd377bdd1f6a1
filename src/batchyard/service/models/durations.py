"""ISO-8601 durations the way Azure Batch reads and writes them.

The real service is .NET: durations are `TimeSpan`s (100 ns ticks) serialized with `XmlConvert`, so the
canonical wire form is e.g. "PT15M", "P7D", "PT1H30M", "PT5.5S", "PT0S", and the "unlimited" value
(`TimeSpan.MaxValue`) is "P10675199DT2H48M5.4775807S". We compute on integer ticks so that value
round-trips exactly (a `timedelta` only has microseconds).

Anything at or above `TimeSpan.MaxValue` means "unlimited": old Python SDKs (msrest) send
`timedelta.max` as "P999999999DT23H59M59.999999S", which must read as unlimited too.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Final

TICKS_PER_SECOND: Final = 10_000_000
TICKS_PER_MINUTE: Final = 60 * TICKS_PER_SECOND
TICKS_PER_HOUR: Final = 60 * TICKS_PER_MINUTE
TICKS_PER_DAY: Final = 24 * TICKS_PER_HOUR
MAX_TICKS: Final = 2**63 - 1  # TimeSpan.MaxValue.Ticks

#: The wire form of "no limit" (TimeSpan.MaxValue), as the real service returns it.
UNLIMITED: Final = "P10675199DT2H48M5.4775807S"

# XmlConvert grammar: years count 365 days and months 30 days; only seconds may have a fraction.
_DURATION = re.compile(
    r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d+))?S)?)?",
    re.IGNORECASE,
)


def parse_ticks(text: str) -> int:
    """Parse an ISO-8601 duration into signed 100 ns ticks (may exceed `MAX_TICKS`). Raises ValueError."""
    m = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    sign, years, months, weeks, days, t_part, hours, minutes, seconds, fraction = m.groups()
    if all(g is None for g in (years, months, weeks, days, hours, minutes, seconds)):
        raise ValueError(f"{text!r} has no duration components")
    if t_part is not None and hours is None and minutes is None and seconds is None:
        raise ValueError(f"{text!r} has a 'T' with no time components")
    total_days = int(years or 0) * 365 + int(months or 0) * 30 + int(weeks or 0) * 7 + int(days or 0)
    ticks = (
        total_days * TICKS_PER_DAY
        + int(hours or 0) * TICKS_PER_HOUR
        + int(minutes or 0) * TICKS_PER_MINUTE
        + int(seconds or 0) * TICKS_PER_SECOND
    )
    if fraction:
        ticks += int(fraction[:7].ljust(7, "0"))  # ticks are 1e-7 s; extra digits are truncated like .NET
    return -ticks if sign else ticks


def format_ticks(ticks: int) -> str:
    """Format ticks the way XmlConvert.ToString(TimeSpan) does; anything >= MaxValue is `UNLIMITED`."""
    if ticks >= MAX_TICKS:
        return UNLIMITED
    sign = "-" if ticks < 0 else ""
    days, rest = divmod(abs(ticks), TICKS_PER_DAY)
    hours, rest = divmod(rest, TICKS_PER_HOUR)
    minutes, rest = divmod(rest, TICKS_PER_MINUTE)
    seconds, fraction = divmod(rest, TICKS_PER_SECOND)
    out = [sign, "P"]
    if days:
        out.append(f"{days}D")
    if hours or minutes or seconds or fraction:
        out.append("T")
        if hours:
            out.append(f"{hours}H")
        if minutes:
            out.append(f"{minutes}M")
        if seconds or fraction:
            out.append(str(seconds))
            if fraction:
                out.append("." + f"{fraction:07d}".rstrip("0"))
            out.append("S")
    elif not days:
        out.append("T0S")
    return "".join(out)


def canonical_duration(text: str) -> str:
    """Re-serialize a duration in the service's canonical form ("PT900S" -> "PT15M"). Raises ValueError."""
    return format_ticks(parse_ticks(text))


def is_unlimited(text: str) -> bool:
    return parse_ticks(text) >= MAX_TICKS


def parse_duration(text: str) -> timedelta | None:
    """Parse to a `timedelta`; `None` means unlimited (TimeSpan.MaxValue or more). Raises ValueError."""
    ticks = parse_ticks(text)
    if ticks >= MAX_TICKS:
        return None
    return timedelta(microseconds=ticks // 10)


def format_duration(value: timedelta | None) -> str:
    """Format a `timedelta` (or `None` = unlimited) as the service does."""
    if value is None:
        return UNLIMITED
    ticks = ((value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds) * 10
    return format_ticks(ticks)


@functools.lru_cache(maxsize=1024)
def duration_seconds(text: str) -> float | None:
    """Seconds as a float for timers; `None` means unlimited."""
    ticks = parse_ticks(text)
    if ticks >= MAX_TICKS:
        return None
    return ticks / TICKS_PER_SECOND
