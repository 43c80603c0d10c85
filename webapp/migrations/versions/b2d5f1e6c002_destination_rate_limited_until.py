"""destinations.rate_limited_until: the platform's "wait" outlives a flushed Redis

When a platform answers 429 (or 503 with Retry-After) the whole destination waits
until the time it gave. The pause lives in Redis for every worker; this column is
its copy in the database, written when the pause starts, so a flushed Redis cannot
shorten it.

Revision ID: b2d5f1e6c002
Revises: a1c4e0d5b001
Create Date: 2026-12-03 08:30:00

"""
from alembic import op
import sqlalchemy as sa

revision = 'b2d5f1e6c002'
down_revision = 'a1c4e0d5b001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('destinations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limited_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('destinations', schema=None) as batch_op:
        batch_op.drop_column('rate_limited_until')
