"""A destination's health during a delivery run: what each answer does to it (success, setup error,
circuit breaker), when the run must stop, and which changes to write with the next recorded group.

Health is kept apart from the ORM row and written by Core with the answers, so the run's own session never
dirties (and then locks) the destinations row; a new last_success_at alone is written at most once a
HEALTH_SECONDS, or two workers would keep queueing on that row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Destination
from workers.delivery.policy import RetryPolicy
from workers.destinations.base import Classification, Outcome

HEALTH_SECONDS = 1.0
HEALTH_FIELDS = ("paused_at", "pause_reason", "failing_since", "last_success_at")


@dataclass(slots=True)
class Health:
    """The destination's health fields as a run sees them."""

    paused_at: datetime | None = None
    pause_reason: str | None = None
    failing_since: datetime | None = None
    last_success_at: datetime | None = None

    @classmethod
    def of(cls, destination: Destination) -> Health:
        return cls(*(getattr(destination, name) for name in HEALTH_FIELDS))

    def changes(self, written: Health) -> dict[str, Any]:
        """The fields that differ from what was last written."""
        return {name: getattr(self, name) for name in HEALTH_FIELDS if getattr(self, name) != getattr(written, name)}


def write_health(destination_id: int, changes: dict[str, Any]) -> None:
    """Store health changes; a pause keeps an earlier pause time (set by a person or another worker)."""
    table = Destination.__table__
    values = dict(changes)
    if values.get("paused_at") is not None:
        values["paused_at"] = sa.func.coalesce(table.c.paused_at, values["paused_at"])
    db.session.execute(sa.update(table).where(table.c.id == destination_id).values(values))


def update_health(destination: Any, classification: Classification, now: datetime,
                  policy: RetryPolicy) -> None:
    """Success clears the failure streak; setup errors pause at once; long failure streaks trip the breaker.

    Applied in memory (to a Health) right after each answer, so the engine stops at once; written with the group.
    """
    outcome = classification.outcome
    if outcome in (Outcome.DELIVERED, Outcome.REJECTED):
        destination.last_success_at = now if outcome is Outcome.DELIVERED else destination.last_success_at
        destination.failing_since = None
        return
    if outcome is Outcome.SETUP_ERROR:
        pause(destination, f"the platform refused the credentials: {classification.message[:300]}", now)
        return
    destination.failing_since = destination.failing_since or now
    if now - destination.failing_since >= policy.breaker:
        minutes = int((now - destination.failing_since).total_seconds() // 60)
        pause(destination, f"failing continuously for {minutes} min; last answer: "
                           f"{classification.message[:300]}", now)


def pause(destination: Any, reason: str, now: datetime) -> None:
    if destination.paused_at is None:
        destination.paused_at = now
    destination.pause_reason = reason


@dataclass
class HealthLog:
    """The run's view of the destination's health (`current`, updated after every answer) and what was last
    handed to the recorder (`written`, at monotonic time `written_at`)."""

    current: Health
    written: Health = field(default_factory=Health)
    written_at: float = float("-inf")

    @classmethod
    def of(cls, destination: Destination) -> HealthLog:
        health = Health.of(destination)
        return cls(health, replace(health))

    def due(self, *, final: bool) -> dict[str, Any]:
        """Fields to write now: any change at once, except a new last_success_at alone at most once a
        HEALTH_SECONDS (and at the end of the run)."""
        changes = self.current.changes(self.written)
        if not changes:
            return {}
        if set(changes) == {"last_success_at"} and not final and time.monotonic() - self.written_at < HEALTH_SECONDS:
            return {}
        self.written, self.written_at = replace(self.current), time.monotonic()
        return changes


def stop_reason(health: Health, classification: Classification,
                status: int | None) -> tuple[str, datetime | None] | None:
    """(why, not_before) when the run must stop after this answer because the destination is now paused
    (the platform's "wait" is the engine's: pause.py)."""
    if health.paused_at is not None:
        return "destination paused: " + (health.pause_reason or ""), None
    return None
