"""events: index (destination_id, state, id) in place of (destination_id, state, next_attempt_at)

The destination page lists the newest events that did not get through, per state, newest first. Dead
letters stay until someone resolves them, so reading them all to sort by id grew with the history (43 ms
at 10 million events on SQLite). Ordered by id within (destination, state), each state's newest rows are
an index range read backwards with a LIMIT. Everything the old index served (live counts per destination
and state, expired leases of in-flight rows) uses the same (destination_id, state) prefix; the due claim
has its own partial index.

Revision ID: e5a9c3f1d006
Revises: d4f7a3b8e004
Create Date: 2026-12-03 15:30:00

"""
from alembic import op

revision = 'e5a9c3f1d006'
down_revision = 'd4f7a3b8e004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_events_dest_state', 'events', ['destination_id', 'state', 'id'], unique=False)
    op.drop_index('ix_events_due', table_name='events')


def downgrade():
    op.create_index('ix_events_due', 'events', ['destination_id', 'state', 'next_attempt_at'], unique=False)
    op.drop_index('ix_events_dest_state', table_name='events')
