"""Cron expressions in a source's own time zone (a nightly 02:00 is 02:00 where the store is)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter


def validate_schedule(expression: str, timezone: str) -> list[str]:
    """Problems with a schedule, as (field-naming) messages; empty when it is usable."""
    problems = []
    if not croniter.is_valid(expression):
        problems.append("schedule: not a valid cron expression (e.g. '0 2 * * *' for 02:00 every night)")
    elif not _ever_fires(expression):
        problems.append("schedule: this cron expression never fires (a day the month never has, "
                        "e.g. February 30th)")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown time zone {timezone!r} (e.g. 'UTC', 'Europe/Berlin')")
    return problems


def _ever_fires(expression: str) -> bool:
    """Valid cron can still name no real day ("0 0 31 2 *"); croniter then gives up at once."""
    try:
        croniter(expression, datetime(2026, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, OverflowError):
        return False
    return True


def next_run_after(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The next time the schedule fires after `after`, in UTC (None when the schedule is unusable).

    The expression is walked on the local wall clock (naive times), so each wall-clock time fires once per
    day whatever the clock changes do: a time the fall-back hour repeats (01:30) fires at its first
    occurrence only, and a time the spring-forward gap skips (02:00, 02:30) fires once, at the first valid
    moment after the gap (03:00 local).
    """
    if validate_schedule(expression, timezone):
        return None
    zone = ZoneInfo(timezone)
    after = after.astimezone(UTC)
    walk = croniter(expression, after.astimezone(zone).replace(tzinfo=None, fold=0))
    for _ in range(MAX_SKIPPED):
        candidate = _instant(walk.get_next(datetime), zone)
        if candidate > after:  # a first occurrence already behind us (we are in the repeated hour): skip
            return candidate
    return None


MAX_SKIPPED = 1000


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time: its first occurrence, or the end of the gap it falls in."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=1 reads the wall time with the offset after the change (an earlier instant), fold=0
    # with the offset before (a later one); the clock jumps past `wall` somewhere in between.
    low, high = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    if low > high:
        low, high = high, low
    while (high - low).total_seconds() > 1:
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high
