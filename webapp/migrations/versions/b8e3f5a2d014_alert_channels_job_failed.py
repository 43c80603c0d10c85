"""alert channels that took every event take the new one too: job_failed (an erasure, replay or catalog
reconcile that ended failed)

Revision ID: b8e3f5a2d014
Revises: a7d2e4f1c013
Create Date: 2026-12-06 13:45:00

A channel created with the default ("all events") stores the list as it was then. A channel whose list held
every earlier event meant "tell me everything", so it gets job_failed; a channel that chose some keeps its
choice. The downgrade takes job_failed out of every list (earlier versions do not know it).
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'b8e3f5a2d014'
down_revision = 'a7d2e4f1c013'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
EARLIER = {"destination_paused", "dead_letters", "sync_failed", "sync_held", "feed_held", "feed_stale",
           "worker_down", "scheduler_down"}
NEW = "job_failed"
channels = sa.table("alert_channels", sa.column("id", sa.Integer), sa.column("events", JSON))


def _rewrite(change) -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(channels.c.id, channels.c.events)).all():
        events = list(row.events or [])
        changed = change(events)
        if changed != events:
            bind.execute(sa.update(channels).where(channels.c.id == row.id).values(events=changed))


def upgrade():
    _rewrite(lambda events: events + [NEW] if EARLIER <= set(events) and NEW not in events else events)


def downgrade():
    _rewrite(lambda events: [event for event in events if event != NEW] or sorted(EARLIER))
