"""Shared fixtures: app, client, runner, db, redis, worker, logged-in dashboard, API key.

Databases: every test gets a fresh SQLite file by default (a copy of a schema-only file made once per session:
`sqlite_template`). Tests marked with `both_databases` (or asking for the `postgres_app`) also run on PostgreSQL
when SHOPRELAY_TEST_POSTGRES_URL is set (`.ci/run` sets it); each PostgreSQL test session uses its own throwaway
database, emptied (rows deleted, sequences restarted) before and after each test.
Redis: a real server (SHOPRELAY_TEST_REDIS_URL, default redis://127.0.0.1:6379/15), flushed per test.
Child processes: every Popen a test makes is reaped after it, and one its body left running is stopped
(tests/processes.py `reap_leftovers`); helpers still stop their own with `stop_process`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
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
from tests.processes import LOCAL_FAKES, in_phase, reap_leftovers, track_popens

REDIS_URL = os.environ.get("SHOPRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("SHOPRELAY_TEST_POSTGRES_URL")
# The fake platforms, sources and receivers of the suite listen on loopback, which the outbound URL guard refuses
# by default: every app the tests build, and every shoprelay process they start (they inherit this environment),
# allows it. Tests of the guard itself set their own policy.
os.environ["SHOPRELAY_ALLOW_PRIVATE_URLS"] = LOCAL_FAKES

track_popens()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):  # noqa: ANN201
    with in_phase("setup"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):  # noqa: ANN201
    with in_phase("call"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):  # noqa: ANN201
    """After the test's fixtures are torn down: the child-process net (tests/processes.py `reap_leftovers`)."""
    try:
        with in_phase("teardown"):
            return (yield)
    finally:
        reap_leftovers()


both_databases = pytest.mark.parametrize(
    "app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)


@contextlib.contextmanager
def empty_postgres_database(prefix: str) -> Iterator[str]:
    """A throwaway, empty PostgreSQL database on SHOPRELAY_TEST_POSTGRES_URL's server (its URL), dropped after
    (its connections ended first)."""
    admin = sa.create_engine(_pg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg(re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", POSTGRES_URL, count=1))
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for this test session, dropped at the end."""
    if not POSTGRES_URL:
        yield None
        return
    with empty_postgres_database("shoprelay_test") as url:
        engine = sa.create_engine(url)
        from webapp.models import Base

        Base.metadata.create_all(engine)
        engine.dispose()
        yield url


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


def _test_app(tmp_path: Path, database_url: str) -> Flask:
    from webapp import create_app

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
    return app


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database with the schema (`create_all`, through the app's own engine and its pragmas),
    made once: each test's `app` starts from a copy of the file, a millisecond instead of creating every table
    and index again."""
    from webapp.extensions import db as _db
    from webapp.models import Base

    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.db"
    app = _test_app(folder, f"sqlite:///{path}")
    with app.app_context():
        Base.metadata.create_all(_db.engine)
        _db.session.remove()
        _db.engine.dispose()  # the last connection out checkpoints the WAL: the file alone holds it all
    assert not (folder / "template.db-wal").exists() or not (folder / "template.db-wal").stat().st_size
    return path


@pytest.fixture()
def app(request: pytest.FixtureRequest, tmp_path: Path, redis: Redis,
        postgres_database_url: str | None) -> Iterator[Flask]:
    from webapp.extensions import db as _db

    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        if not postgres_database_url:
            pytest.skip("SHOPRELAY_TEST_POSTGRES_URL is not set")
        database_url = postgres_database_url
    else:
        database_url = f"sqlite:///{tmp_path / 'test.db'}"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "test.db")
    app = _test_app(tmp_path, database_url)
    with app.app_context():
        if backend == "postgresql":
            _truncate_all(_db.engine)
        yield app
        _db.session.remove()
        if backend == "postgresql":
            _truncate_all(_db.engine)
        _db.engine.dispose()


def _truncate_all(engine: sa.Engine) -> None:
    """Empty every table and restart every sequence: what `TRUNCATE ... RESTART IDENTITY` gives, without its
    cost. TRUNCATE makes new files for each of the ~30 tables, their indexes and TOAST tables and syncs them at
    commit: 1.3 s on this machine, twice per PostgreSQL test (~9 of the suite's minutes). The few rows a test
    leaves go with one DELETE per table (children first), in milliseconds."""
    from webapp.models import Base

    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    try:
        with engine.begin() as connection:
            for name in tables:
                connection.execute(sa.text(f'DELETE FROM "{name}"'))
            connection.execute(sa.text(
                "SELECT setval(c.oid, s.seqstart, false) FROM pg_class c "
                "JOIN pg_sequence s ON s.seqrelid = c.oid WHERE c.relkind = 'S'"))
    except sa.exc.DBAPIError:  # e.g. a foreign key cycle DELETE cannot untie: the slow, sure way
        names = ", ".join(f'"{name}"' for name in tables)
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


USER_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def _user_password_hash() -> str:
    """The `user` fixture's password hashed once by the product (scrypt, its default cost: ~0.1-0.3 s a hash),
    not once per test; logging in still checks it the full, real way."""
    from webapp.security.users import hash_password

    return hash_password(USER_PASSWORD)


@pytest.fixture()
def user(app: Flask, _user_password_hash: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    from webapp.security import create_user, users

    real = users.hash_password
    with monkeypatch.context() as patch:
        patch.setattr(users, "hash_password",
                      lambda password: _user_password_hash if password == USER_PASSWORD else real(password))
        created, _ = create_user("marketer@example.com", USER_PASSWORD, is_admin=True)
    return created


@pytest.fixture()
def logged_in(client: FlaskClient, user) -> FlaskClient:  # noqa: ANN001
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": user.email, "password": USER_PASSWORD,
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
