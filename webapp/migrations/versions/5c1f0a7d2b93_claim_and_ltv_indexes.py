"""indexes for the delivery claim and the best-customers page

The claim scans due events in (next_attempt_at, id) order and stops after one
batch: a partial index over pending/retrying rows keeps that scan short however
many delivered events the table holds. The contacts list pages through
(ltv_primary, id), so the single-column LTV index becomes a two-column one.

Revision ID: 5c1f0a7d2b93
Revises: ae3da29819f6
Create Date: 2026-11-23 09:40:00

"""
from alembic import op
import sqlalchemy as sa

revision = '5c1f0a7d2b93'
down_revision = 'ae3da29819f6'
branch_labels = None
depends_on = None

DUE = "state IN ('pending', 'retrying')"


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_claim', ['destination_id', 'next_attempt_at', 'id'], unique=False,
                              postgresql_where=sa.text(DUE), sqlite_where=sa.text(DUE))
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_ltv_primary')
        batch_op.create_index('ix_contacts_ltv_primary_id', ['ltv_primary', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index('ix_contacts_ltv_primary_id')
        batch_op.create_index('ix_contacts_ltv_primary', ['ltv_primary'], unique=False)
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_claim')
