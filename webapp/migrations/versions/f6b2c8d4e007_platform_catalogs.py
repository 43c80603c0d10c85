"""platform catalogs: destinations.catalog, catalog_entries (what each platform confirmed), catalog_reconciles,
back_in_stock_subscriptions

Destinations that received product events before (Sendlane by default, any destination whose event list
named product_upsert / product_delete) keep receiving them: their `catalog` becomes "api".

Revision ID: f6b2c8d4e007
Revises: e5a9c3f1d006
Create Date: 2026-12-04 19:40:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'f6b2c8d4e007'
down_revision = 'e5a9c3f1d006'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('destinations') as batch:
        batch.add_column(sa.Column('catalog', sa.String(length=8), server_default='off', nullable=False))
    destinations = sa.table('destinations', sa.column('id', sa.Integer), sa.column('kind', sa.String),
                            sa.column('events', sa.JSON), sa.column('catalog', sa.String))
    connection = op.get_bind()
    for row in connection.execute(sa.select(destinations.c.id, destinations.c.kind, destinations.c.events)):
        events = row.events or []
        if (row.kind == 'sendlane' and not events) or {'product_upsert', 'product_delete'} & set(events):
            connection.execute(sa.update(destinations).where(destinations.c.id == row.id).values(catalog='api'))
    op.create_table(
        'catalog_entries',
        sa.Column('id', BIG_ID, primary_key=True),
        sa.Column('destination_id', sa.Integer(), sa.ForeignKey('destinations.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('external_id', sa.String(length=300), nullable=False),
        sa.Column('product_key', sa.String(length=300), nullable=True),
        sa.Column('confirmed_digest', sa.String(length=40), nullable=True),
        sa.Column('sent_digest', sa.String(length=40), nullable=True),
        sa.Column('action', sa.String(length=8), nullable=True),
        sa.Column('job_path', sa.String(length=300), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('destination_id', 'kind', 'external_id'),
    )
    op.create_index('ix_catalog_entries_job', 'catalog_entries', ['destination_id', 'job_path'])
    op.create_table(
        'catalog_reconciles',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('destination_id', sa.Integer(), sa.ForeignKey('destinations.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('trigger', sa.String(length=12), nullable=False),
        sa.Column('full', sa.Boolean(), nullable=False),
        sa.Column('job_id', sa.String(length=64), nullable=True),
        sa.Column('phase', sa.String(length=40), nullable=True),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=True),
        sa.Column('counts', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_catalog_reconciles_dest', 'catalog_reconciles', ['destination_id', 'id'])
    op.create_table(
        'back_in_stock_subscriptions',
        sa.Column('id', BIG_ID, primary_key=True),
        sa.Column('source_id', sa.Integer(), sa.ForeignKey('sources.id', ondelete='CASCADE'), nullable=False),
        sa.Column('product_external_id', sa.String(length=255), nullable=False),
        sa.Column('sku', sa.String(length=255), nullable=True),
        sa.Column('email', sa.String(length=320), nullable=True),
        sa.Column('phone', sa.String(length=32), nullable=True),
        sa.Column('channels', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.Column('origin', sa.String(length=10), nullable=False),
        sa.Column('last_quantity', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('restocked_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_bis_product', 'back_in_stock_subscriptions', ['source_id', 'product_external_id'])
    op.create_index('ix_bis_waiting', 'back_in_stock_subscriptions', ['restocked_at', 'id'])


def downgrade():
    op.drop_index('ix_bis_waiting', table_name='back_in_stock_subscriptions')
    op.drop_index('ix_bis_product', table_name='back_in_stock_subscriptions')
    op.drop_table('back_in_stock_subscriptions')
    op.drop_index('ix_catalog_reconciles_dest', table_name='catalog_reconciles')
    op.drop_table('catalog_reconciles')
    op.drop_index('ix_catalog_entries_job', table_name='catalog_entries')
    op.drop_table('catalog_entries')
    with op.batch_alter_table('destinations') as batch:
        batch.drop_column('catalog')
