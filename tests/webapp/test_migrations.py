"""Migrations build the whole schema from nothing and match the models exactly."""

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from tests.conftest import POSTGRES_URL, empty_postgres_database
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
    with empty_postgres_database("shoprelay_mig") as url:
        diff, tables = _upgrade_and_diff(tmp_path, url)
    assert diff == []
    assert {"orders", "events", "products"} <= tables


def test_delivery_counters_start_from_the_rows_already_stored(tmp_path):
    """Upgrading an instance with delivery history: /metrics counters begin where the rows are."""
    from flask_migrate import upgrade as upgrade_to

    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
                      "SECRET_KEY": "x"})
    with app.app_context():
        from webapp.extensions import db

        upgrade_to(directory=MIGRATIONS, revision="5c1f0a7d2b93")
        with db.engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO destinations (id, name, kind, credentials_encrypted, mode, batch_interval_minutes, "
                "events, enabled, settings, rate_limits, created_at, updated_at) VALUES "
                "(1, 'd', 'webhook', 'x', 'realtime', 30, '[]', 1, '{}', '{}', '2026-01-01', '2026-01-01')"))
            for n, (state, seconds) in enumerate([("delivered", 0.2), ("delivered", 3), ("skipped", 0),
                                                  ("dead", 0)]):
                delivered = f"'2026-01-01 00:00:{seconds:06.3f}'" if state in ("delivered", "skipped") else "NULL"
                connection.execute(sa.text(
                    "INSERT INTO events (id, destination_id, name, unique_id, payload, state, sequence, historical, "
                    "attempts, occurred_at, created_at, next_attempt_at, delivered_at) VALUES "
                    f"({n + 1}, 1, 'placed_order', '{n}', '{{}}', '{state}', 0, 0, 1, '2026-01-01 00:00:00', "
                    f"'2026-01-01 00:00:00', '2026-01-01 00:00:00', {delivered})"))
                connection.execute(sa.text(
                    "INSERT INTO delivery_attempts (event_id, destination_id, attempted_at, outcome, duration_ms) "
                    f"VALUES ({n + 1}, 1, '2026-01-01', '{'delivered' if state == 'delivered' else 'retry'}', 5)"))
        upgrade_to(directory=MIGRATIONS)
        from webapp.services.delivery.counters import totals

        counters = totals()[1]
        db.engine.dispose()
    assert counters["attempts:delivered"][0] == 2 and counters["attempts:retry"][0] == 2
    assert counters["events:delivered"][0] == 2 and abs(counters["events:delivered"][1] - 3.2) < 0.01
    assert counters["events:skipped"][0] == 1
    assert counters["latency:0"][0] == 1 and counters["latency:4"][0] == 1  # 0.2 s <= 0.25; 3 s <= 5


def test_channels_that_took_every_event_take_job_failed_too(tmp_path):
    """A channel saved with every event of its day meant "everything": the upgrade adds job_failed; a channel
    that chose some keeps its choice; the downgrade takes it out again."""
    import json

    from flask_migrate import downgrade as downgrade_to
    from flask_migrate import upgrade as upgrade_to

    earlier = ["destination_paused", "dead_letters", "sync_failed", "sync_held", "feed_held", "feed_stale",
               "worker_down", "scheduler_down"]
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
                      "SECRET_KEY": "x"})
    with app.app_context():
        from webapp.extensions import db

        upgrade_to(directory=MIGRATIONS, revision="a7d2e4f1c013")
        with db.engine.begin() as connection:
            for channel_id, events in ((1, earlier), (2, ["sync_failed", "worker_down"])):
                connection.execute(sa.text(
                    "INSERT INTO alert_channels (id, name, url_encrypted, url_hint, service, events, enabled, "
                    "created_at, updated_at) VALUES (:id, 'c', 'x', 'json://h', 'json', :events, 1, "
                    "'2026-01-01', '2026-01-01')"), {"id": channel_id, "events": json.dumps(events)})

        def stored() -> dict[int, list[str]]:
            with db.engine.connect() as connection:
                return {row.id: json.loads(row.events) for row in connection.execute(
                    sa.text("SELECT id, events FROM alert_channels ORDER BY id"))}

        upgrade_to(directory=MIGRATIONS)
        assert stored() == {1: [*earlier, "job_failed"], 2: ["sync_failed", "worker_down"]}
        downgrade_to(directory=MIGRATIONS, revision="a7d2e4f1c013")
        assert stored() == {1: earlier, 2: ["sync_failed", "worker_down"]}
        db.engine.dispose()
