"""The data migration a7d2e4f1c013: user:password@ saved inside a source URL by older versions moves into the
encrypted credentials, on SQLite and PostgreSQL, and the source's syncs still authenticate."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from tests.conftest import POSTGRES_URL, _test_app, empty_postgres_database

MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "..", "webapp", "migrations")
BEFORE = "f1a7c3e9d012"
USER, PASSWORD = "feeds", "p@ss:w%rd-never-in-a-url-71"  # '@', ':' and '%' arrive percent-encoded in the URL
QUOTED = "p%40ss%3Aw%25rd-never-in-a-url-71"
CSV = b"id,title,price,currency,link\n1,Lamp,20,EUR,https://shop.example/1\n2,Desk,150,EUR,https://shop.example/2\n"


class _Protected(BaseHTTPRequestHandler):
    """Serves the CSV at any path, only with the right basic auth; 401 otherwise."""

    seen: list[str | None]

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        given = self.headers.get("Authorization")
        self.seen.append(given)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        status, body = (200, CSV) if given == expected else (401, b"who are you?")
        self.send_response(status)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class signature
        pass


@pytest.fixture()
def protected() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Protected,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database of its own (the migrations start from nothing)."""
    if not POSTGRES_URL:
        pytest.skip("SHOPRELAY_TEST_POSTGRES_URL is not set")
    with empty_postgres_database("shoprelay_cred") as url:
        yield url


def _insert_source(connection: sa.Connection, name: str, location: str | None,
                   credentials_encrypted: str | None = None) -> int:
    """A row as an older version wrote it (raw SQL: no service in between to move anything)."""
    sources = sa.Table("sources", sa.MetaData(), autoload_with=connection)
    now = datetime.now(UTC)
    return connection.execute(sa.insert(sources).values(
        name=name, kind="csv", location=location, options={}, schedule="0 2 * * *", timezone="UTC", enabled=True,
        product_count=0, credentials_encrypted=credentials_encrypted, created_at=now, updated_at=now,
    ).returning(sources.c.id)).scalar_one()


def _check_upgrade(tmp_path: Path, database_url: str, host: str, seen: list[str | None], redis) -> None:  # noqa: ANN001
    from webapp.extensions import db
    from webapp.models import Source
    from webapp.services.catalog.sources import lift_stored_url_credentials
    from webapp.services.catalog.sync import request_sync, run_sync
    from webapp.services.platform.crypto import decrypt_json, encrypt_json

    app = _test_app(tmp_path, database_url)
    with app.app_context():
        try:
            upgrade(directory=MIGRATIONS, revision=BEFORE)
            with db.engine.begin() as connection:
                plain = _insert_source(connection, "in the URL", f"http://{USER}:{QUOTED}@{host}/products.csv")
                token = _insert_source(connection, "URL and a header token",
                                       f"https://old:pw@{host}/t.csv?q=1#top",
                                       encrypt_json({"username": "older", "password": "x", "header_name": "X-T",
                                                     "header_value": "tok"}))
                stale = _insert_source(connection, "other key", f"https://u:v@{host}/s.csv",
                                       "gAAAAA-encrypted-under-a-key-this-instance-has-not")
                mailto = _insert_source(connection, "an @ in the query", f"https://{host}/f.csv?owner=a@b.example",
                                        encrypt_json({"header_name": "X-K", "header_value": "k"}))
                upload = _insert_source(connection, "uploaded", None)
            upgrade(directory=MIGRATIONS)

            rows = {source.id: source for source in db.session.scalars(sa.select(Source))}
            assert rows[plain].location == f"http://{host}/products.csv"
            assert decrypt_json(rows[plain].credentials_encrypted) == {"username": USER, "password": PASSWORD}
            assert rows[token].location == f"https://{host}/t.csv?q=1#top"
            assert decrypt_json(rows[token].credentials_encrypted) == {
                "username": "old", "password": "pw", "header_name": "X-T", "header_value": "tok"}
            assert rows[stale].location == f"https://{host}/s.csv"
            assert decrypt_json(rows[stale].credentials_encrypted) == {"username": "u", "password": "v"}
            assert rows[mailto].location == f"https://{host}/f.csv?owner=a@b.example"  # no userinfo: untouched
            assert decrypt_json(rows[mailto].credentials_encrypted) == {"header_name": "X-K", "header_value": "k"}
            assert rows[upload].location is None and rows[upload].credentials_encrypted is None
            with db.engine.begin() as connection:
                assert lift_stored_url_credentials(connection) == 0  # idempotent

            run = run_sync(request_sync(rows[plain], enqueue=False).id)
            assert run.status == "succeeded", run.error
            assert db.session.get(Source, plain).product_count == 2
            assert seen and seen[-1] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        finally:
            db.session.remove()
            db.engine.dispose()


def test_sqlite_upgrade_moves_url_credentials_and_syncs_still_authenticate(tmp_path, protected, redis) -> None:  # noqa: ANN001
    host, seen = protected
    _check_upgrade(tmp_path, f"sqlite:///{tmp_path / 'old.db'}", host, seen, redis)


@pytest.mark.postgres
def test_postgres_upgrade_moves_url_credentials_and_syncs_still_authenticate(tmp_path, protected, redis,  # noqa: ANN001
                                                                              postgres_url) -> None:
    host, seen = protected
    _check_upgrade(tmp_path, postgres_url, host, seen, redis)

