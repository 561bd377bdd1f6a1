"""The one clock of the service: everything that reads time goes through it, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class AdjustableClock(Clock):
    """Real time plus an offset that tests move forward (`batchyard serve --adjustable-clock`).

    Lets schedules, autoscale intervals, job limits and retention be tested in seconds, not hours.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        self.offset += timedelta(seconds=seconds)
        return self.now()


_EPOCH_TICKS = 621355968000000000  # .NET ticks (100 ns since 0001-01-01) at the Unix epoch


def ticks(dt: datetime) -> int:
    """A moment in .NET ticks, what Batch's ETags (`0x8D...`) are made of."""
    return _EPOCH_TICKS + int(dt.timestamp() * 10_000_000)


_last_iso: tuple[datetime | None, str] = (None, "")


def iso(dt: datetime) -> str:
    """Wire form of a timestamp: ISO 8601 UTC with a Z, as the Batch service writes it."""
    global _last_iso
    if _last_iso[0] is dt:  # one operation stamps many fields with the same `now`
        return _last_iso[1]
    utc = dt if dt.tzinfo is UTC else dt.astimezone(UTC)
    # Formatted by hand: strftime is several times slower, and this runs for every task change.
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
        f".{utc.microsecond:06d}Z"
    )
    _last_iso = (dt, text)
    return text


def parse_iso(value: str) -> datetime:
    if len(value) == 27 and value[26] == "Z" and value[19] == ".":
        # the service's own form (`iso`), most of what it parses: Python reads it as it is
        return datetime.fromisoformat(value)
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # Python accepts at most 6 fractional digits; .NET writes 7.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def rfc1123(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
