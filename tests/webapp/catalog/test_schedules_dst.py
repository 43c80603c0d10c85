"""A nightly schedule in a zone with daylight saving runs once per local day across both clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.services.catalog.schedules import next_run_after

# (zone, a day with the spring-forward gap, a day with the fall-back repeat) in 2026; Havana changes at
# midnight, Lord Howe by half an hour, Sydney in the other half of the year.
ZONES = {
    "America/New_York": (date(2026, 3, 8), date(2026, 11, 1)),
    "Europe/Berlin": (date(2026, 3, 29), date(2026, 10, 25)),
    "Australia/Sydney": (date(2026, 10, 4), date(2026, 4, 5)),
    "America/Havana": (date(2026, 3, 8), date(2026, 11, 1)),
    "Australia/Lord_Howe": (date(2026, 10, 4), date(2026, 4, 5)),
}


def _runs(expression: str, zone: str, start: datetime, end: datetime, durations: list[timedelta]) -> list[datetime]:
    """What the dispatcher does: run when next_run_at comes due, compute the next one when the run ends."""
    runs, now, i = [], start, 0
    while True:
        due = next_run_after(expression, zone, now)
        assert due is not None and due > now
        if due > end:
            return runs
        runs.append(due)
        now = due + durations[i % len(durations)]
        i += 1
        assert i < 100


def _check_once_per_day(zone_name: str, hour: int, minute: int, around: date, durations: list[timedelta]):
    zone = ZoneInfo(zone_name)
    first_day, last_day = around - timedelta(days=3), around + timedelta(days=3)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=zone).astimezone(UTC) - timedelta(hours=1)
    end = datetime(last_day.year, last_day.month, last_day.day, 23, 59, tzinfo=zone).astimezone(UTC)
    runs = _runs(f"{minute} {hour} * * *", zone_name, start, end, durations)
    local = [run.astimezone(zone) for run in runs]
    days = [run.date() for run in local]
    assert days == [first_day + timedelta(days=n) for n in range(7)], local
    for run in local:
        wall = datetime(run.year, run.month, run.day, hour, minute)
        if wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
            assert (run.hour, run.minute) == (hour, minute), run  # the time exists: at it (first occurrence)
            assert run.fold == 0 or run.replace(fold=0).astimezone(UTC) == run.astimezone(UTC)
        else:  # skipped by the spring-forward gap: at the first valid moment after it
            assert run.replace(tzinfo=None) > wall, run
            assert (run.astimezone(UTC) - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None) < wall, run


@pytest.mark.parametrize("zone_name", sorted(ZONES))
@pytest.mark.parametrize("change", ["spring", "fall"])
@pytest.mark.parametrize(("hour", "minute"), [(2, 0), (1, 30), (2, 30), (0, 0), (0, 30), (3, 0)])
def test_nightly_schedule_runs_once_per_local_day(zone_name, change, hour, minute):
    around = ZONES[zone_name][0 if change == "spring" else 1]
    _check_once_per_day(zone_name, hour, minute, around, [timedelta(seconds=40)])


@settings(max_examples=150, deadline=None)
@given(zone_name=st.sampled_from(sorted(ZONES)), change=st.sampled_from([0, 1]),
       hour=st.integers(0, 4), minute=st.sampled_from([0, 1, 15, 29, 30, 45, 59]),
       durations=st.lists(st.integers(1, 100 * 60).map(lambda s: timedelta(seconds=s)), min_size=1, max_size=7))
def test_once_per_local_day_whatever_the_runs_take(zone_name, change, hour, minute, durations):
    """Runs lasting up to 100 minutes end inside the repeated hour, after the gap, anywhere: still once a day."""
    _check_once_per_day(zone_name, hour, minute, ZONES[zone_name][change], durations)


def test_fall_back_0130_runs_once_new_york():
    runs = _runs("30 1 * * *", "America/New_York", datetime(2026, 10, 31, 12, tzinfo=UTC),
                 datetime(2026, 11, 2, 12, tzinfo=UTC), [timedelta(minutes=5)])
    assert runs == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 2, 6, 30, tzinfo=UTC)]


def test_spring_forward_0200_runs_at_0300_new_york():
    runs = _runs("0 2 * * *", "America/New_York", datetime(2026, 3, 7, 12, tzinfo=UTC),
                 datetime(2026, 3, 9, 12, tzinfo=UTC), [timedelta(minutes=5)])
    assert runs == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 3, 9, 6, 0, tzinfo=UTC)]


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30 2 *", "0 3 31 4,6,9,11 *"])
def test_a_schedule_that_names_no_real_day_is_refused(api, expression):
    """Valid cron that never fires would leave the source without a next run (and made the API answer 500)."""
    from webapp.services.catalog.schedules import validate_schedule

    assert validate_schedule(expression, "UTC") == [
        "schedule: this cron expression never fires (a day the month never has, e.g. February 30th)"]
    response = api.post("/api/v1/sources", json={"name": "Nightly", "kind": "csv", "schedule": expression,
                                                 "location": "https://shop.example/products.csv"})
    assert response.status_code == 422, response.get_json()
    assert [e["path"] for e in response.get_json()["errors"]] == ["schedule"]
    assert validate_schedule("0 0 29 2 *", "UTC") == []  # leap days do come
