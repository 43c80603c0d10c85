"""consent per channel (SMS beside email, with where each came from), erased contacts, and erasure records

Revision ID: f1a7c3e9d012
Revises: e7c5a9d3b011
Create Date: 2026-12-06 09:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'f1a7c3e9d012'
down_revision = 'e7c5a9d3b011'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
CONTACT_COLUMNS = ('email_consent_source', 'accepts_sms_marketing', 'sms_consent_changed_at', 'sms_consent_source',
                   'erased_at')


def upgrade():
    with op.batch_alter_table('contacts') as batch:
        batch.add_column(sa.Column('email_consent_source', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('accepts_sms_marketing', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('sms_consent_changed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('sms_consent_source', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'erasures',
        sa.Column('id', sa.String(length=16), primary_key=True),
        sa.Column('email_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('phase', sa.String(length=16), nullable=False),
        sa.Column('cursor', sa.BigInteger(), nullable=False),
        sa.Column('contact_ids', JSON, nullable=False),
        sa.Column('destinations', JSON, nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('counts', JSON, nullable=False),
        sa.Column('pending_values', sa.Text(), nullable=True),
        sa.Column('requested_by', sa.String(length=16), nullable=False),
        sa.Column('job_id', sa.String(length=64), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('progressed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('local_done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_erasures_email_hash', 'erasures', ['email_hash'])
    op.create_index('ix_erasures_status_created', 'erasures', ['status', 'created_at'])


def downgrade():
    op.drop_index('ix_erasures_status_created', table_name='erasures')
    op.drop_index('ix_erasures_email_hash', table_name='erasures')
    op.drop_table('erasures')
    with op.batch_alter_table('contacts') as batch:
        for name in reversed(CONTACT_COLUMNS):
            batch.drop_column(name)
