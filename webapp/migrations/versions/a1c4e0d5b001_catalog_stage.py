"""catalog sync staging: changes are staged in short transactions, then applied in short transactions

A sync used to apply the whole read in one write transaction (SQLite's only write lock held for about a
minute per million rows). Now the read stages its changes in catalog_stage, the run's phase column marks
the commit point, and the apply moves staged chunks into products, rolled forward if its worker dies.

Revision ID: a1c4e0d5b001
Revises: 5c1f0a7d2b93
Create Date: 2026-12-03 08:20:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'a1c4e0d5b001'
down_revision = '5c1f0a7d2b93'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phase', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('apply_started_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('catalog_stage',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=1), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=True),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('item_group_id', sa.String(length=255), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('link', sa.Text(), nullable=True),
    sa.Column('image_link', sa.Text(), nullable=True),
    sa.Column('price', sa.Numeric(precision=16, scale=4), nullable=True),
    sa.Column('compare_at_price', sa.Numeric(precision=16, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('brand', sa.String(length=255), nullable=True),
    sa.Column('categories', JSON, nullable=True),
    sa.Column('inventory_quantity', sa.Integer(), nullable=True),
    sa.Column('inventory_policy', sa.Integer(), nullable=True),
    sa.Column('sku', sa.String(length=255), nullable=True),
    sa.Column('gtin', sa.String(length=64), nullable=True),
    sa.Column('mpn', sa.String(length=128), nullable=True),
    sa.Column('condition', sa.String(length=20), nullable=True),
    sa.Column('extras', JSON, nullable=True),
    sa.Column('content_hash', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['sync_runs.id'], name=op.f('fk_catalog_stage_run_id_sync_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_stage'))
    )
    with op.batch_alter_table('catalog_stage', schema=None) as batch_op:
        batch_op.create_index('ix_catalog_stage_run_id_id', ['run_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('catalog_stage', schema=None) as batch_op:
        batch_op.drop_index('ix_catalog_stage_run_id_id')
    op.drop_table('catalog_stage')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_column('apply_started_at')
        batch_op.drop_column('phase')
