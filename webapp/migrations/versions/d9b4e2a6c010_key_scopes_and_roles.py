"""accounts: api_keys.scope (ingest | read | admin; keys made before scopes stay admin) and users.role
(admin | member | viewer, replacing users.is_admin: admins stay admins, everyone else becomes a member)

Revision ID: d9b4e2a6c010
Revises: c3e8a1f7b008
Create Date: 2026-12-06 07:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'd9b4e2a6c010'
down_revision = 'c3e8a1f7b008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sa.String(length=10), server_default='admin', nullable=False))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=10), server_default='member', nullable=False))
    op.execute("UPDATE users SET role = 'admin' WHERE is_admin")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('is_admin')


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_admin', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE users SET is_admin = (role = 'admin')")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('role')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('scope')
