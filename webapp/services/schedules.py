"""Cron expressions in a source's own time zone (a nightly 02:00 is 02:00 where the store is)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


def validate_schedule(expression: str, timezone: str) -> list[str]:
    """Problems with a schedule, as (field-naming) messages; empty when it is usable."""
    problems = []
    if not croniter.is_valid(expression):
        problems.append("schedule: not a valid cron expression (e.g. '0 2 * * *' for 02:00 every night)")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown time zone {timezone!r} (e.g. 'UTC', 'Europe/Berlin')")
    return problems


def next_run_after(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The next time the schedule fires after `after`, in UTC (None when the schedule is unusable)."""
    if validate_schedule(expression, timezone):
        return None
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone)
    nxt = croniter(expression, local).get_next(datetime)
    if nxt.tzinfo is None:
        nxt = nxt.replace(tzinfo=zone)
    return nxt.astimezone(UTC)
