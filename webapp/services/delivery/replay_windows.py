"""A replay's window: what to send again (the request's model) and how many events that is (the dry run).

Counted apart from running (webapp/services/delivery/replays.py) because the count is what a person reads
before deciding: one grouped query, nothing changes.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pydantic
import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from webapp.extensions import db
from webapp.models import Event
from webapp.models.delivery import EVENT_STATES
from webapp.schemas.destinations import EVENT_NAMES
from webapp.schemas.errors import ApiError, error_list, problem
from webapp.services.platform.jsonutil import iso

REPLAYABLE_STATES = ("delivered", "rejected", "dead", "skipped")
DEFAULT_STATES = ("delivered", "rejected", "dead")  # sent, or failed to get; skipped ones only when asked
STATE_ALIASES = {"failed": ("rejected", "dead")}
EVENTS = Event.__table__


class ReplayWindow(BaseModel):
    """`POST /api/v1/destinations/<id>/replay`: which events to send again, and how."""

    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime = Field(description="Start of the window (ISO 8601 with a UTC offset), inclusive; "
                                             "compared with when shoprelay queued each event.")
    until: AwareDatetime = Field(description="End of the window (ISO 8601 with a UTC offset), exclusive.")
    events: list[str] | None = Field(default=None, description="Event names (null: every event).")
    states: list[str] | None = Field(
        default=None, description="Event states: delivered, rejected, dead, skipped, or failed (rejected and "
                                  "dead). Null: delivered, rejected and dead.")
    new_ids: bool = Field(default=False, description="Send with new unique ids, so the platform counts them "
                                                     "again (only after it lost them). Default: the same ids, "
                                                     "which the platform de-duplicates.")
    dry_run: bool = Field(default=False, description="Only count (nothing is queued).")

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one event name, or null for every event")
        unknown = [name for name in value if name not in EVENT_NAMES]
        if unknown:
            raise ValueError(f"unknown event(s): {', '.join(unknown)}; known: {', '.join(EVENT_NAMES)}")
        return list(dict.fromkeys(value))

    @field_validator("states")
    @classmethod
    def _states(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one state, or null for delivered, rejected and dead")
        known = (*REPLAYABLE_STATES, *STATE_ALIASES)
        unknown = [state for state in value if state not in EVENT_STATES and state not in STATE_ALIASES]
        if unknown:
            raise ValueError(f"unknown state(s): {', '.join(unknown)}; one of {', '.join(known)}")
        waiting = [state for state in value if state in EVENT_STATES and state not in REPLAYABLE_STATES]
        if waiting:
            raise ValueError(f"{', '.join(waiting)} events are still on their way (nothing to replay); "
                             f"one of {', '.join(known)}")
        expanded = [state for name in value for state in STATE_ALIASES.get(name, (name,))]
        return list(dict.fromkeys(expanded))

    @property
    def chosen_states(self) -> list[str]:
        return list(self.states or DEFAULT_STATES)


def parse_window(data: Any) -> ReplayWindow:
    """The request body as a ReplayWindow; 422 naming the field otherwise."""
    try:
        window = ReplayWindow.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ApiError(422, error_list(exc)) from None
    if window.since > window.until:
        raise ApiError(422, [problem(["since"], "must not be after until")])
    return window


# --- counting -------------------------------------------------------------------------------------------

def pruned() -> sa.ColumnElement[bool]:
    """Retention emptied the payload (`{}`): the event cannot be sent again."""
    return sa.cast(EVENTS.c.payload, sa.Text) == "{}"


def in_window(destination_id: int, window: ReplayWindow) -> list[sa.ColumnElement[bool]]:
    conditions = [EVENTS.c.destination_id == destination_id, EVENTS.c.state.in_(window.chosen_states),
                  EVENTS.c.created_at >= window.since, EVENTS.c.created_at < window.until]
    if window.events:
        conditions.append(EVENTS.c.name.in_(window.events))
    return conditions


def count_window(destination_id: int, window: ReplayWindow) -> dict[str, Any]:
    """What a replay of this window would queue: the count, by event name and state, and how many cannot be
    sent again (payload pruned). One grouped query; nothing changes."""
    lost_count = sa.func.sum(sa.case((pruned(), 1), else_=0))
    rows = db.session.execute(
        sa.select(EVENTS.c.name, EVENTS.c.state, sa.func.count(), lost_count)
        .where(*in_window(destination_id, window)).group_by(EVENTS.c.name, EVENTS.c.state)).all()
    db.session.commit()  # end the read (no snapshot or lock held on PostgreSQL)
    order = {name: position for position, name in enumerate(EVENT_NAMES)}
    breakdown, not_replayable = [], 0
    for name, state, count, lost in sorted(rows, key=lambda row: (order.get(row[0], 99), row[1])):
        lost = int(lost or 0)
        not_replayable += lost
        if count - lost:
            breakdown.append({"event": name, "state": state, "count": count - lost})
    by_event: dict[str, int] = {}
    by_state: dict[str, int] = {}
    for entry in breakdown:
        by_event[entry["event"]] = by_event.get(entry["event"], 0) + entry["count"]
        by_state[entry["state"]] = by_state.get(entry["state"], 0) + entry["count"]
    return {"count": sum(by_event.values()), "by_event": by_event, "by_state": by_state, "breakdown": breakdown,
            "not_replayable": not_replayable, **window_json(window)}


def window_json(window: ReplayWindow) -> dict[str, Any]:
    return {"since": iso(window.since.astimezone(UTC)), "until": iso(window.until.astimezone(UTC)),
            "events": window.events, "states": window.chosen_states, "new_ids": window.new_ids}
