"""Incidents, not noise: one incident per problem (kind, subject) from when a condition starts until it ends.

An evaluation compares the conditions that hold now with the incidents that are not closed:
- a new problem opens an incident and queues one "opened" notice per channel that takes its kind (several
  opened in one evaluation make one digest per channel);
- a problem still there changes nothing but the incident's latest words (repeats are suppressed);
- a problem gone moves its incident to `resolving`; after SHOPRELAY_ALERT_QUIET_MINUTES without it coming back
  the incident closes and the channels told of its start get one "resolved" notice. One that comes back
  within that window is the same incident again, silently (a flapping destination sends two notices, not
  twenty).

Every change of state is a guarded UPDATE (and opening relies on a unique index over incidents not closed), so
two evaluations at once (the cron job and a watchdog) never open or resolve an incident twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import AlertChannel, AlertNotice, Incident, utcnow
from webapp.services.alerts import conditions as conditions_module
from webapp.services.alerts.conditions import KIND_LABELS, KINDS, Condition
from webapp.services.alerts.notify import link
from webapp.services.overview.runtime_status import RuntimeStatus
from webapp.services.platform.jsonutil import iso

_TABLE = Incident.__table__


@dataclass
class Evaluation:
    """What one evaluation changed (the cron job logs it; tests read it)."""

    opened: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    resolving: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    notices: int = 0
    channels: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"opened": self.opened, "reopened": self.reopened, "resolving": self.resolving,
                "resolved": self.resolved, "notices": self.notices}


def evaluate(now: datetime | None = None, kinds: Iterable[str] = KINDS, runtime: RuntimeStatus | None = None,
             *, signal: bool = True) -> Evaluation:
    """Open, keep, resolve and close incidents of `kinds` from what holds now; queue the notices.

    Args:
        kinds: the kinds this caller can judge (the scheduler's watchdog judges only worker_down).
        runtime: workers and scheduler as already read by the caller.
        signal: signal the sending jobs (False when the caller sends inline: no worker is alive).
    """
    now = now or utcnow()
    kinds = tuple(kinds)
    quiet = timedelta(minutes=current_app.config["ALERT_QUIET_MINUTES"])
    found = conditions_module.current(now, kinds, runtime)
    live = {(i.kind, i.subject): i for i in db.session.scalars(
        sa.select(Incident).where(Incident.state != "closed", Incident.kind.in_(kinds)))}
    result = Evaluation()
    new, closed = [], []
    for condition in found:
        incident = live.pop(condition.key, None)
        if incident is None:
            new.append(condition)
            continue
        _refresh(incident.id, condition, now)
        if incident.state == "resolving" and _move(incident.id, "resolving", "open", closed_at=None,
                                                   flaps=_TABLE.c.flaps + 1):
            result.reopened.append(incident.id)
    for incident in live.values():  # not seen any more
        if incident.state == "open" and _move(incident.id, "open", "resolving", closed_at=now):
            result.resolving.append(incident.id)
            incident_closed_at = now
        else:
            incident_closed_at = incident.closed_at
        if (incident_closed_at is not None and now - incident_closed_at >= quiet
                and _move(incident.id, "resolving", "closed")):
            closed.append(incident.id)
    db.session.commit()
    result.opened = [incident_id for condition in new if (incident_id := _open(condition, now)) is not None]
    result.resolved = closed
    result.notices, result.channels = queue_notices(result.opened, closed, now)
    if signal:
        signal_channels(result.channels)
    return result


def _open(condition: Condition, now: datetime) -> int | None:
    """Insert the incident (its own short transaction); None when another evaluation opened it a moment ago
    (the unique index over incidents not closed said so)."""
    incident = Incident(kind=condition.kind, subject=condition.subject, severity=condition.severity,
                        title=condition.title[:300], detail=condition.detail, impact=condition.impact,
                        path=condition.path[:300], action=condition.action[:100], state="open",
                        since=condition.since or now, opened_at=now, last_seen_at=now)
    db.session.add(incident)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        return None
    return incident.id


def _refresh(incident_id: int, condition: Condition, now: datetime) -> None:
    """The latest words (a new pause reason, more dead letters) for the page; no notice."""
    db.session.execute(sa.update(_TABLE).where(_TABLE.c.id == incident_id).values(
        title=condition.title[:300], detail=condition.detail, impact=condition.impact,
        path=condition.path[:300], action=condition.action[:100], severity=condition.severity, last_seen_at=now))


def _move(incident_id: int, before: str, after: str, **values: Any) -> bool:
    """Change the state only if it still is `before` (an evaluation running at the same time loses)."""
    return db.session.execute(sa.update(_TABLE).where(_TABLE.c.id == incident_id, _TABLE.c.state == before)
                              .values(state=after, **values)).rowcount == 1


def queue_notices(opened: list[int], resolved: list[int], now: datetime) -> tuple[int, list[int]]:
    """One notice row per (channel, incident, event), all sharing this evaluation's batch: the sender makes one
    message per channel and batch, a digest when it holds several incidents. "Resolved" goes to the channels
    that were told of the start. Returns (notices queued, channels to signal)."""
    if not opened and not resolved:
        return 0, []
    batch = uuid.uuid4().hex
    channels = db.session.scalars(sa.select(AlertChannel).where(AlertChannel.enabled.is_(True))
                                  .order_by(AlertChannel.id)).all()
    rows: list[AlertNotice] = []
    if opened:
        incidents = db.session.scalars(sa.select(Incident).where(Incident.id.in_(opened))
                                       .order_by(Incident.id)).all()
        for channel in channels:
            rows += [AlertNotice(channel_id=channel.id, incident_id=incident.id, event="opened", batch=batch,
                                 next_attempt_at=now, created_at=now)
                     for incident in incidents if incident.kind in (channel.events or ())]
    if resolved:
        told = {(channel_id, incident_id) for channel_id, incident_id in db.session.execute(
            sa.select(AlertNotice.channel_id, AlertNotice.incident_id).where(
                AlertNotice.incident_id.in_(resolved), AlertNotice.event == "opened"))}
        enabled = {channel.id for channel in channels}
        rows += [AlertNotice(channel_id=channel_id, incident_id=incident_id, event="resolved", batch=batch,
                             next_attempt_at=now, created_at=now)
                 for channel_id, incident_id in sorted(told) if channel_id in enabled]
    db.session.add_all(rows)
    notified_open = {row.incident_id for row in rows if row.event == "opened"}
    notified_resolved = {row.incident_id for row in rows if row.event == "resolved"}
    if notified_open:
        db.session.execute(sa.update(_TABLE).where(_TABLE.c.id.in_(notified_open)).values(notified_open=True))
    if notified_resolved:
        db.session.execute(sa.update(_TABLE).where(_TABLE.c.id.in_(notified_resolved))
                           .values(notified_resolved=True))
    db.session.commit()
    return len(rows), sorted({row.channel_id for row in rows})


def signal_channels(channel_ids: Iterable[int]) -> list[str]:
    """Best effort: with Redis down the notices wait in the database for the next evaluation's sweep."""
    from workers.queue import JOB_SEND_ALERTS, alerts_signal_key, safe_signal_many

    return safe_signal_many(current_app.config.get("REDIS_URL"), "alerts", JOB_SEND_ALERTS,
                            [(alerts_signal_key(channel_id), (channel_id,)) for channel_id in channel_ids])


# -- reading ------------------------------------------------------------------------------------------------


def list_incidents(state: str | None = None, limit: int = 100) -> list[Incident]:
    """`open` includes incidents resolving (waiting out the quiet window); newest first."""
    query = sa.select(Incident)
    if state == "open":
        query = query.where(Incident.state != "closed")
    elif state == "closed":
        query = query.where(Incident.state == "closed")
    return list(db.session.scalars(query.order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(limit)))


def notices_of(incident_ids: list[int]) -> dict[int, list[AlertNotice]]:
    by_incident: dict[int, list[AlertNotice]] = {incident_id: [] for incident_id in incident_ids}
    if incident_ids:
        for notice in db.session.scalars(sa.select(AlertNotice).where(AlertNotice.incident_id.in_(incident_ids))
                                         .order_by(AlertNotice.id)):
            by_incident[notice.incident_id].append(notice)
    return by_incident


def incident_json(incident: Incident, notices: list[AlertNotice]) -> dict[str, Any]:
    return {
        "id": incident.id, "kind": incident.kind, "kind_label": KIND_LABELS.get(incident.kind, incident.kind),
        "subject": incident.subject, "severity": incident.severity, "title": incident.title,
        "detail": incident.detail, "impact": incident.impact, "action": incident.action,
        "url": link(incident.path), "state": incident.state, "since": iso(incident.since),
        "opened_at": iso(incident.opened_at), "last_seen_at": iso(incident.last_seen_at),
        "closed_at": iso(incident.closed_at), "flaps": incident.flaps,
        "notices": [notice_json(notice) for notice in notices],
    }


def notice_json(notice: AlertNotice) -> dict[str, Any]:
    return {"id": notice.id, "channel_id": notice.channel_id, "channel": notice.channel.name,
            "event": notice.event, "state": notice.state, "attempts": notice.attempts,
            "last_error": notice.last_error, "sent_at": iso(notice.sent_at),
            "next_attempt_at": iso(notice.next_attempt_at) if notice.state == "pending" else None}
