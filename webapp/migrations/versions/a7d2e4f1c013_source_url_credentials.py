"""source URLs saved with user:password@ by older versions: the credentials move into the encrypted credentials

Revision ID: a7d2e4f1c013
Revises: f1a7c3e9d012
Create Date: 2026-12-06 12:30:00

A data migration. Saving a source moves URL credentials out of its location now; rows saved before that still
show the password wherever the location appears. Encrypting needs the instance's key, which the migration has:
migrations run inside the app (env.py takes the engine from `current_app`), so the service's own function does
the work with the app's configuration, exactly as saving the source would.
"""
import logging

from alembic import context, op

revision = 'a7d2e4f1c013'
down_revision = 'f1a7c3e9d012'
branch_labels = None
depends_on = None

log = logging.getLogger('alembic.runtime.migration')


def upgrade():
    if context.is_offline_mode():
        # An SQL script cannot encrypt: the rows keep their URLs (syncs still authenticate with them).
        log.warning('source URL credentials are not moved in offline (--sql) mode; run the upgrade online')
        return
    from webapp.services.catalog.sources import lift_stored_url_credentials

    moved = lift_stored_url_credentials(op.get_bind())
    if moved:
        log.info('moved the user and password out of %s source URLs into their encrypted credentials', moved)


def downgrade():
    # Nothing to undo: every version reads the encrypted credentials, and putting passwords back into the URLs
    # would only show them again.
    pass
