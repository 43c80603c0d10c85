"""delivery counters and roll-ups of pruned events

/metrics reads counters the delivery recorder increments in the transaction that
records an answer (no scan of events or attempts; pruning never lowers them), and
retention folds the events it deletes into per-day and per-contact roll-ups so
the dashboard's totals stay as they were. The counters start from the rows that
exist today (one pass over them here).

Revision ID: d4f7a3b8e004
Revises: b2d5f1e6c002
Create Date: 2026-12-03 08:40:00

"""
from alembic import op
import sqlalchemy as sa

revision = 'd4f7a3b8e004'
down_revision = 'b2d5f1e6c002'
branch_labels = None
depends_on = None

LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)


def upgrade():
    op.create_table(
        'delivery_counters',
        sa.Column('destination_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('slot', sa.SmallInteger(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['destination_id'], ['destinations.id'],
                                name=op.f('fk_delivery_counters_destination_id_destinations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('destination_id', 'name', 'slot', name=op.f('pk_delivery_counters')))
    op.create_table(
        'event_rollups',
        sa.Column('destination_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['destination_id'], ['destinations.id'],
                                name=op.f('fk_event_rollups_destination_id_destinations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('destination_id', 'day', 'state', name=op.f('pk_event_rollups')))
    op.create_table(
        'contact_event_rollups',
        sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('destination_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
                                name=op.f('fk_contact_event_rollups_contact_id_contacts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['destination_id'], ['destinations.id'],
                                name=op.f('fk_contact_event_rollups_destination_id_destinations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('contact_id', 'destination_id', 'state', name=op.f('pk_contact_event_rollups')))
    op.create_table(
        'retention_marks',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_retention_marks')))
    _backfill()


def _backfill():
    """Counters as if they had always been kept: one grouped pass over attempts and settled events."""
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        seconds = "date_part('epoch', delivered_at - created_at)"
    else:
        seconds = "(julianday(delivered_at) - julianday(created_at)) * 86400.0"
    bucket = "CASE " + " ".join(f"WHEN {seconds} <= {bound} THEN 'latency:{i}'"
                                for i, bound in enumerate(LATENCY_BUCKETS))
    bucket += f" ELSE 'latency:{len(LATENCY_BUCKETS)}' END"
    op.execute(f"""INSERT INTO delivery_counters (destination_id, name, slot, count, seconds)
        SELECT destination_id, 'attempts:' || outcome, 0, count(*), 0 FROM delivery_attempts
        GROUP BY destination_id, outcome""")
    op.execute(f"""INSERT INTO delivery_counters (destination_id, name, slot, count, seconds)
        SELECT destination_id, 'events:' || state, 0, count(*),
               coalesce(sum(CASE WHEN state = 'delivered' THEN {seconds} END), 0)
        FROM events WHERE state IN ('delivered', 'skipped') GROUP BY destination_id, state""")
    op.execute(f"""INSERT INTO delivery_counters (destination_id, name, slot, count, seconds)
        SELECT destination_id, b, 0, count(*), 0 FROM (
            SELECT destination_id, {bucket} AS b FROM events WHERE state = 'delivered') AS d
        GROUP BY destination_id, b""")


def downgrade():
    op.drop_table('retention_marks')
    op.drop_table('contact_event_rollups')
    op.drop_table('event_rollups')
    op.drop_table('delivery_counters')
