from webapp import create_app


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"db": "ok", "redis": "ok"}


def test_healthz_names_redis_when_it_is_unreachable(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x",
                      "REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        from webapp.extensions import db
        from webapp.models import Base

        Base.metadata.create_all(db.engine)
        response = app.test_client().get("/healthz")
        db.engine.dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["db"] == "ok"
    assert body["redis"].startswith("down")


def test_metrics_are_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE shoprelay_events gauge" in text
    assert 'shoprelay_queue_depth{queue="delivery"} 0' in text
