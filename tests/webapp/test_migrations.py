"""Migrations build the whole schema from nothing and match the models exactly."""

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from tests.conftest import POSTGRES_URL, _pg
from webapp import create_app

MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "..", "webapp", "migrations")


def _upgrade_and_diff(tmp_path, database_url):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": database_url,
                      "SECRET_KEY": "x"})
    with app.app_context():
        from webapp.extensions import db

        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
        tables = set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()
    return diff, tables


def test_sqlite_upgrade_from_empty_leaves_no_diff(tmp_path):
    diff, tables = _upgrade_and_diff(tmp_path, f"sqlite:///{tmp_path / 'm.db'}")
    assert diff == []
    assert {"orders", "events", "products", "alembic_version"} <= tables


@pytest.mark.postgres
def test_postgres_upgrade_from_empty_leaves_no_diff(tmp_path):
    if not POSTGRES_URL:
        pytest.skip("SHOPRELAY_TEST_POSTGRES_URL is not set")
    import uuid

    admin = sa.create_engine(_pg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"shoprelay_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = _pg(POSTGRES_URL).rsplit("/", 1)[0] + f"/{name}"
        diff, tables = _upgrade_and_diff(tmp_path, url)
        assert diff == []
        assert {"orders", "events", "products"} <= tables
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
