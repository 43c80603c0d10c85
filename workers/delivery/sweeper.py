"""Find destinations with due work (including leases that ran out) and signal a delivery job for each."""

from __future__ import annotations

import sqlalchemy as sa
from redis import Redis

from webapp.extensions import db
from webapp.models import Destination, Event
from workers.delivery.claim import due_condition
from workers.delivery.engine import is_batch_due, now_utc
from workers.queue import JOB_DELIVER, deliver_signal_key, signal


def sweep(redis: Redis) -> dict:
    now = now_utc()
    # One indexed probe per destination (ix_events_claim, ix_events_dest_state), not a scan of every event.
    due = sa.select(Event.id).where(Event.destination_id == Destination.id, due_condition(now)).exists()
    signalled = []
    for destination in db.session.scalars(sa.select(Destination).where(due)).all():
        if not destination.enabled or destination.paused_at is not None or not is_batch_due(destination, now):
            continue
        if destination.rate_limited_until is not None and destination.rate_limited_until > now:
            continue  # the platform said wait: its first round after the pause signals it
        # A signal already waiting (its key is set) is enough; the key expires if its job was lost.
        if signal(redis, "delivery", JOB_DELIVER, deliver_signal_key(destination.id), destination.id):
            signalled.append(destination.id)
    return {"signalled": signalled}
