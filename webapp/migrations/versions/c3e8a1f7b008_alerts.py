"""alerts: alert_channels (Apprise URLs, encrypted), alert_incidents (one per problem while it lasts),
alert_notices (each channel told of each incident's start and end)

Revision ID: c3e8a1f7b008
Revises: f6b2c8d4e007
Create Date: 2026-12-06 06:00:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'c3e8a1f7b008'
down_revision = 'f6b2c8d4e007'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'alert_channels',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('url_encrypted', sa.Text(), nullable=False),
        sa.Column('url_hint', sa.String(length=300), nullable=False),
        sa.Column('service', sa.String(length=80), nullable=False),
        sa.Column('events', JSON, nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('last_sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'alert_incidents',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('subject', sa.String(length=100), nullable=False),
        sa.Column('severity', sa.String(length=10), nullable=False),
        sa.Column('title', sa.String(length=300), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('impact', sa.Text(), nullable=False),
        sa.Column('path', sa.String(length=300), nullable=False),
        sa.Column('action', sa.String(length=100), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('flaps', sa.Integer(), nullable=False),
        sa.Column('notified_open', sa.Boolean(), nullable=False),
        sa.Column('notified_resolved', sa.Boolean(), nullable=False),
    )
    op.create_index('uq_alert_incidents_live', 'alert_incidents', ['kind', 'subject'], unique=True,
                    postgresql_where=sa.text("state <> 'closed'"), sqlite_where=sa.text("state <> 'closed'"))
    op.create_index('ix_alert_incidents_state_opened', 'alert_incidents', ['state', 'opened_at'])
    op.create_table(
        'alert_notices',
        sa.Column('id', BIG_ID, primary_key=True),
        sa.Column('channel_id', sa.Integer(), sa.ForeignKey('alert_channels.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('incident_id', sa.Integer(), sa.ForeignKey('alert_incidents.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('event', sa.String(length=10), nullable=False),
        sa.Column('batch', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_alert_notices_due', 'alert_notices', ['state', 'next_attempt_at'])
    op.create_index('ix_alert_notices_channel', 'alert_notices', ['channel_id', 'id'])
    op.create_index('ix_alert_notices_incident_id', 'alert_notices', ['incident_id'])


def downgrade():
    op.drop_table('alert_notices')
    op.drop_index('ix_alert_incidents_state_opened', table_name='alert_incidents')
    op.drop_index('uq_alert_incidents_live', table_name='alert_incidents')
    op.drop_table('alert_incidents')
    op.drop_table('alert_channels')
