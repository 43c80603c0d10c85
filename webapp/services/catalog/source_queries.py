"""Read-side of the sources pages: the list with each source's last run, run history, schedules in words.

The last run of every source comes from one query (max id per source), so the list costs the same with
two sources or fifty; run history pages by keyset on the run id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Source, SyncRun
from webapp.services.catalog.sync import ACTIVE, ESTIMATED_NOTE
from webapp.services.platform.keyset import Page, SortKey, paginate
from webapp.services.platform.progress import get_progress

RUNS_PER_PAGE = 20
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class SourceRow:
    source: Source
    last_run: SyncRun | None


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: the live figures from Redis while it runs, else the ones stored on the row."""

    run: SyncRun
    rows_read: int
    rows_total: int | None
    note: str

    @property
    def active(self) -> bool:
        return self.run.status in ACTIVE

    @property
    def estimated(self) -> bool:
        """Whether rows_total is the reader's estimate (the file is still being read)."""
        return self.note == ESTIMATED_NOTE

    @property
    def percent(self) -> float | None:
        if not self.rows_total:
            return None
        return min(100.0, round(100 * self.rows_read / self.rows_total, 1))


def source_rows() -> list[SourceRow]:
    sources = list(db.session.scalars(sa.select(Source).order_by(Source.name, Source.id)))
    latest = sa.select(sa.func.max(SyncRun.id)).group_by(SyncRun.source_id)
    runs = {run.source_id: run for run in db.session.scalars(sa.select(SyncRun).where(SyncRun.id.in_(latest)))}
    return [SourceRow(source, runs.get(source.id)) for source in sources]


def run_history(source_id: int, *, after: int | None = None, before: int | None = None) -> Page:
    query = sa.select(SyncRun).where(SyncRun.source_id == source_id)
    return paginate(query, SortKey(SyncRun.id, descending=True), SyncRun.id, after=after, before=before,
                    limit=RUNS_PER_PAGE)


def source_run(source_id: int, run_id: int) -> SyncRun | None:
    run = db.session.get(SyncRun, run_id)
    return run if run is not None and run.source_id == source_id else None


def run_progress(run: SyncRun) -> RunProgress:
    live = get_progress("sync", run.id) if run.status in ACTIVE else None
    if live is not None:
        return RunProgress(run, live[0], live[1], live[2])
    return RunProgress(run, run.rows_read, run.rows_total, "")


def last_good_run(source_id: int) -> SyncRun | None:
    """The most recent succeeded run: the catalog the source still serves after a failure."""
    return db.session.scalar(sa.select(SyncRun).where(SyncRun.source_id == source_id,
                                                      SyncRun.status == "succeeded")
                             .order_by(SyncRun.id.desc()).limit(1))


def duration(run: SyncRun) -> timedelta | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return run.finished_at - run.started_at


def duration_text(run: SyncRun) -> str:
    elapsed = duration(run)
    if elapsed is None:
        return "—"
    seconds = elapsed.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def schedule_text(expression: str, timezone: str) -> str:
    """A cron expression in words for the common shapes ("daily at 02:00 UTC"); others as they are."""
    fields = expression.split()
    if len(fields) != 5:
        return f"cron {expression} ({timezone})"
    minute, hour, day, month, weekday = fields
    at = f"{int(hour):02d}:{int(minute):02d}" if minute.isdigit() and hour.isdigit() else None
    if at and (day, month) == ("*", "*"):
        if weekday == "*":
            return f"daily at {at} {timezone}"
        if weekday.isdigit() and int(weekday) <= 7:
            return f"every {_DAYS[int(weekday)]} at {at} {timezone}"
        if weekday in ("1-5", "MON-FRI", "mon-fri"):
            return f"weekdays at {at} {timezone}"
    if at and day.isdigit() and (month, weekday) == ("*", "*"):
        return f"monthly on day {day} at {at} {timezone}"
    if (day, month, weekday) == ("*", "*", "*"):
        if minute.isdigit() and hour == "*":
            return f"hourly at :{int(minute):02d}"
        if minute.isdigit() and hour.startswith("*/") and hour[2:].isdigit():
            return f"every {hour[2:]} hours at :{int(minute):02d} {timezone}"
        if minute.startswith("*/") and minute[2:].isdigit() and hour == "*":
            return f"every {minute[2:]} minutes"
    return f"cron {expression} ({timezone})"
