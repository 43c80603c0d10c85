from webapp import create_app


def test_factory_builds_independent_apps(tmp_path):
    one = create_app({"INSTANCE_PATH": str(tmp_path / "a"), "SECRET_KEY": "x"})
    two = create_app({"INSTANCE_PATH": str(tmp_path / "b"), "SECRET_KEY": "y"})
    assert one is not two
    assert one.config["DATABASE_URL"] != two.config["DATABASE_URL"]
    assert {"api", "feed_serving", "ops", "overview", "sources", "feeds", "orders", "contacts",
            "destinations", "jobs", "settings", "auth"} <= set(one.blueprints)


def test_every_model_entity_exists(app):
    from webapp.extensions import db

    assert {"users", "api_keys", "sources", "products", "sync_runs", "feeds", "feed_fetches", "feed_builds",
            "destinations", "contacts", "orders", "order_lines", "events", "delivery_attempts",
            "delivery_requests"} <= set(db.metadata.tables)
