"""A database that cannot take the request now answers 503 with Retry-After in the API's error shape: SQLite's
write lock held by other work past the request's deadline, or a PostgreSQL server that is not there."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.factories import make_order
from tests.processes import free_port


def test_ingest_answers_503_when_the_sqlite_write_lock_is_held_past_the_deadline(app, api) -> None:  # noqa: ANN001
    app.config["DB_WAIT_SECONDS"] = 1.0
    assert api.post("/api/v1/orders", json=make_order(id="warm-up")).status_code == 202
    holder = sqlite3.connect(Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")),
                             isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    try:
        started = time.monotonic()
        response = api.post("/api/v1/orders", json=make_order(id="while-locked"))
        waited = time.monotonic() - started
        batch = api.post("/api/v1/orders", json={"orders": [make_order(id=f"b{i}") for i in range(3)]})
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"].isdigit()
    body = response.get_json()
    assert body["errors"][0]["path"] == "" and "retry" in body["errors"][0]["message"]
    assert 0.9 <= waited < 3.0, "waits out its deadline, not SQLite's 30 s"
    assert batch.status_code == 503 and "Retry-After" in batch.headers
    again = api.post("/api/v1/orders", json=make_order(id="while-locked"))
    assert again.status_code == 202, "the lock gone, the store's retry succeeds"


def test_a_postgresql_server_that_is_not_there_answers_503(tmp_path) -> None:  # noqa: ANN001
    from webapp import create_app

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "x",
                      "LOG_LEVEL": "WARNING", "REDIS_URL": None, "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"})
    client = app.test_client()
    started = time.monotonic()
    response = client.post("/api/v1/orders", json=make_order(), headers={"Authorization": "Bearer sr_x"})
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"].isdigit()
    assert response.get_json()["errors"][0]["message"].startswith("the database is busy or unavailable")
    page = client.post("/login", data={"email": "a@example.com", "password": "correct horse battery"})
    assert page.status_code == 503 and "Retry-After" in page.headers
    assert "Service Unavailable" in page.get_data(as_text=True)
    assert time.monotonic() - started < 10
    with app.app_context():
        from webapp.extensions import db

        db.engine.dispose()


def test_the_openapi_document_lists_the_503_of_writes(client) -> None:  # noqa: ANN001
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    unavailable = paths["/api/v1/orders"]["post"]["responses"]["503"]
    assert "Retry-After" in unavailable["headers"]
    assert all("503" in operation["responses"] for methods in paths.values()
               for method, operation in methods.items() if method != "get")
