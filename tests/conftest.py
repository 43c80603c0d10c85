"""Shared fixtures: app, client, runner, db, redis, worker, logged-in dashboard, API key.

Databases: every test gets a fresh SQLite file by default. Tests marked with `both_databases`
(or asking for the `postgres_app`) also run on PostgreSQL when SHOPRELAY_TEST_POSTGRES_URL is set
(`.ci/run` sets it); each PostgreSQL test session uses its own throwaway database.
Redis: a real server (SHOPRELAY_TEST_REDIS_URL, default redis://127.0.0.1:6379/15), flushed per test.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from tests import fixtures
from tests.local_http import http_server  # noqa: F401 - a fixture for every test folder
from tests.processes import LOCAL_FAKES

REDIS_URL = os.environ.get("SHOPRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("SHOPRELAY_TEST_POSTGRES_URL")
# The fake platforms, sources and receivers of the suite listen on loopback, which the outbound URL guard refuses
# by default: every app the tests build, and every shoprelay process they start (they inherit this environment),
# allows it. Tests of the guard itself set their own policy.
os.environ["SHOPRELAY_ALLOW_PRIVATE_URLS"] = LOCAL_FAKES

both_databases = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for this test session, dropped at the end."""
    if not POSTGRES_URL:
        yield None
        return
    admin = sa.create_engine(_pg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"shoprelay_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = _pg(re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", POSTGRES_URL, count=1))
    engine = sa.create_engine(url)
    from webapp.models import Base

    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _pg(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@pytest.fixture()
def redis() -> Iterator[Redis]:
    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture()
def app(request: pytest.FixtureRequest, tmp_path: Path, redis: Redis,
        postgres_database_url: str | None) -> Iterator[Flask]:
    from webapp import create_app
    from webapp.extensions import db as _db
    from webapp.models import Base

    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        if not postgres_database_url:
            pytest.skip("SHOPRELAY_TEST_POSTGRES_URL is not set")
        database_url = postgres_database_url
    else:
        database_url = f"sqlite:///{tmp_path / 'test.db'}"
    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret",
        "LOG_LEVEL": "WARNING",
        "ALLOW_PRIVATE_URLS": LOCAL_FAKES,
    })
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    with app.app_context():
        if backend == "sqlite":
            Base.metadata.create_all(_db.engine)
        else:
            _truncate_all(_db.engine)
        yield app
        _db.session.remove()
        if backend == "postgresql":
            _truncate_all(_db.engine)
        _db.engine.dispose()


def _truncate_all(engine: sa.Engine) -> None:
    from webapp.models import Base

    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture()
def db(app: Flask):  # noqa: ANN201
    from webapp.extensions import db as _db

    return _db


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def runner(app: Flask):  # noqa: ANN201
    return app.test_cli_runner()


@pytest.fixture()
def user(app: Flask):  # noqa: ANN201
    from webapp.security import create_user

    created, _ = create_user("marketer@example.com", "correct horse battery", is_admin=True)
    return created


@pytest.fixture()
def logged_in(client: FlaskClient, user) -> FlaskClient:  # noqa: ANN001
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": user.email, "password": "correct horse battery",
                                           "csrf_token": token})
    assert response.status_code == 302, response.data
    return client


@pytest.fixture()
def api_key(app: Flask) -> str:
    from webapp.security import create_api_key

    _, plain = create_api_key("tests")
    return plain


@pytest.fixture()
def api(client: FlaskClient, api_key: str) -> FlaskClient:
    """A client that sends the API key on every request."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    return client


@pytest.fixture()
def worker(app: Flask):  # noqa: ANN201
    """Run queued jobs in-process: `worker()` drains every queue once (burst). Without RQ's pubsub listener:
    a burst run takes no remote commands, and that listener's teardown can stall for its 60 s poll when the
    unsubscribe answer is read before the stop flag is set (redis-py's PubSubWorkerThread)."""
    from workers.runner import make_worker

    def run(queues: list[str] | None = None) -> None:
        worker = make_worker(app, queues)
        worker.subscribe = lambda: None  # type: ignore[method-assign]
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")

    return run


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token a page carries (what a browser would post back)."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def source_samples() -> dict[str, tuple[bytes, dict[str, object]]]:
    """kind -> (file content, reader options) of a small valid source."""
    return fixtures.source_samples()
