"""replays: window replays and their progress, in the database (they lived in Redis before, which a flush
lost; those records are not carried over)

Revision ID: e7c5a9d3b011
Revises: d9b4e2a6c010
Create Date: 2026-12-06 08:00:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'e7c5a9d3b011'
down_revision = 'd9b4e2a6c010'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'replays',
        sa.Column('id', sa.String(length=16), primary_key=True),
        sa.Column('destination_id', sa.Integer(), sa.ForeignKey('destinations.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('events', JSON, nullable=True),
        sa.Column('states', JSON, nullable=False),
        sa.Column('new_ids', sa.Boolean(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('chunks', sa.Integer(), nullable=False),
        sa.Column('not_replayable', sa.Integer(), nullable=False),
        sa.Column('breakdown', JSON, nullable=False),
        sa.Column('slowest_chunk_ms', sa.Integer(), nullable=False),
        sa.Column('cursor', sa.BigInteger(), nullable=False),
        sa.Column('last_id', sa.BigInteger(), nullable=False),
        sa.Column('job_id', sa.String(length=64), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('progressed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_replays_dest_created', 'replays', ['destination_id', 'created_at'])


def downgrade():
    op.drop_index('ix_replays_dest_created', table_name='replays')
    op.drop_table('replays')
