"""API key scopes: every /api/v1 route × method × scope, taken from the app's URL map, so a route added later
is covered without anyone remembering to add it here (writes are admin-only and reads need read or admin until
the policy in webapp.security says otherwise).

The expectations are written out here, apart from the policy table, as DESIGN.md states them: `ingest` may only
write orders, checkouts, products and back-in-stock and read orders; `read` reads everything and writes nothing;
`admin` does everything.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from webapp.models import ApiKey
from webapp.security import create_api_key

PUBLIC = {"/api/v1/openapi.json"}  # the document describes the API to anyone (no data in it)
INGEST = {
    ("POST", "/api/v1/orders"), ("POST", "/api/v1/checkouts"), ("POST", "/api/v1/products"),
    ("POST", "/api/v1/back-in-stock"), ("GET", "/api/v1/orders/<order_id:order_id>"),
    ("GET", "/api/v1/ping"),  # a store checks its key
}
SAMPLE_ARGS = {"int": "999999", "path": "nobody@example.com", "default": "no-such-id"}


def _routes(app) -> list[tuple[str, str, str]]:  # noqa: ANN001
    """(method, rule, a URL for it) for every /api/v1 route the app serves."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.rule in PUBLIC:
            continue
        url = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
                     lambda m: SAMPLE_ARGS.get(m.group(1) or "default", SAMPLE_ARGS["default"]), rule.rule)
        found += [(method, rule.rule, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def _expected(scope: str, method: str, rule: str) -> bool:
    if scope == "admin":
        return True
    if scope == "read":
        return method == "GET"
    return (method, rule) in INGEST


@pytest.fixture()
def keys(app) -> dict[str, str]:  # noqa: ANN001
    return {scope: create_api_key(f"{scope} key", scope)[1] for scope in ("ingest", "read", "admin")}


def test_the_url_map_has_the_routes_this_test_relies_on(app) -> None:  # noqa: ANN001
    routes = {(method, rule) for method, rule, _ in _routes(app)}
    assert routes >= INGEST, INGEST - routes  # a renamed ingest route would silently fall to admin-only
    assert len(routes) > 40


def test_every_api_route_needs_a_key(app, client) -> None:  # noqa: ANN001
    for method, rule, url in _routes(app):
        response = client.open(url, method=method, json={})
        assert response.status_code == 401, (method, rule, response.status_code)
    assert client.get("/api/v1/openapi.json").status_code == 200


@pytest.mark.parametrize("scope", ["ingest", "read", "admin"])
def test_every_route_and_method_answers_by_the_scope(app, client, keys, scope: str) -> None:  # noqa: ANN001
    headers = {"Authorization": f"Bearer {keys[scope]}"}
    wrong = []
    for method, rule, url in _routes(app):
        response = client.open(url, method=method, json={}, headers=headers)
        allowed = _expected(scope, method, rule)
        if response.status_code == 401 or (response.status_code == 403) == allowed:
            wrong.append((method, rule, response.status_code))
            continue
        if not allowed:
            (error,) = response.get_json()["errors"]
            assert error["path"] == ""
            assert f"scope is {scope}" in error["message"]
            needed = ("ingest or admin" if (method, rule) in INGEST else "admin") if method != "GET" \
                else "read or admin"
            assert f"needs a key with the {needed} scope" in error["message"], error
    assert wrong == [], f"{scope}: {wrong}"


def test_an_ingest_key_sends_orders_and_reads_them_back_but_nothing_else(client, keys) -> None:  # noqa: ANN001
    from tests.factories import make_order

    headers = {"Authorization": f"Bearer {keys['ingest']}"}
    assert client.post("/api/v1/orders", json=make_order(), headers=headers).status_code == 202
    assert client.get("/api/v1/orders/1234", headers=headers).status_code == 200
    assert client.head("/api/v1/orders/1234", headers=headers).status_code == 200
    contact = client.get("/api/v1/contacts/john.smith@example.com", headers=headers)
    assert contact.status_code == 403
    assert "needs a key with the read or admin scope" in contact.get_json()["errors"][0]["message"]
    assert client.post("/api/v1/sources", json={"name": "x", "kind": "push"}, headers=headers).status_code == 403
    read = {"Authorization": f"Bearer {keys['read']}"}
    assert client.get("/api/v1/contacts/john.smith@example.com", headers=read).status_code == 200
    assert client.post("/api/v1/orders", json=make_order(), headers=read).status_code == 403


def test_last_use_is_recorded_at_most_once_a_minute(app, db, client, keys) -> None:  # noqa: ANN001
    headers = {"Authorization": f"Bearer {keys['read']}"}
    key = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == "read key"))
    assert key.last_used_at is None
    assert client.get("/api/v1/ping", headers=headers).status_code == 200
    db.session.refresh(key)
    first = key.last_used_at
    assert first is not None
    writes: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if statement.startswith("UPDATE api_keys"):
            writes.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        for _ in range(5):
            client.get("/api/v1/ping", headers=headers)
        assert writes == []  # busy keys write nothing more
        key.last_used_at = first - timedelta(minutes=2)
        db.session.commit()
        writes.clear()
        client.get("/api/v1/ping", headers=headers)
        assert len(writes) == 1
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    db.session.refresh(key)
    assert key.last_used_at > first - timedelta(minutes=1)


def test_cli_creates_keys_with_a_scope_and_lists_it(runner, client, db) -> None:  # noqa: ANN001
    default = runner.invoke(args=["apikeys", "create", "ops"])
    assert default.exit_code == 0, default.output
    ingest = runner.invoke(args=["apikeys", "create", "store backend", "--scope", "ingest"])
    assert ingest.exit_code == 0, ingest.output
    plain = ingest.stdout.strip().splitlines()[0]
    assert "scope ingest" in ingest.stderr
    scopes = dict(db.session.execute(sa.select(ApiKey.name, ApiKey.scope)).all())
    assert scopes == {"ops": "admin", "store backend": "ingest"}
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/sources", headers=headers).status_code == 403
    bad = runner.invoke(args=["apikeys", "create", "x", "--scope", "root"])
    assert bad.exit_code != 0 and "root" in bad.output
    listing = runner.invoke(args=["apikeys", "list"]).output
    assert "\tingest\tactive\t" in listing and "\tadmin\tactive\t" in listing


def test_the_settings_form_offers_the_scope_and_suggests_ingest(logged_in, db) -> None:  # noqa: ANN001
    from tests.conftest import csrf_token

    html = logged_in.get("/settings/api-keys", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.search(r'<option value="ingest" selected>ingest \(store backend\)</option>', html)
    token = csrf_token(logged_in, "/settings/")
    created = logged_in.post("/settings/api-keys", data={"name": "Reports", "scope": "read", "csrf_token": token},
                             headers={"HX-Request": "true"})
    assert created.status_code == 200 and "New read key" in created.get_data(as_text=True)
    assert db.session.scalar(sa.select(ApiKey.scope).where(ApiKey.name == "Reports")) == "read"
    refused = logged_in.post("/settings/api-keys", data={"name": "X", "scope": "root", "csrf_token": token})
    assert refused.status_code == 422 and "one of ingest, read, admin" in refused.get_data(as_text=True)
    page = logged_in.get("/settings/").get_data(as_text=True)
    assert '<span class="badge" title="reporting: read everything, change nothing">read</span>' in page


def test_keys_made_before_scopes_become_admin(tmp_path) -> None:
    import os

    from flask_migrate import upgrade

    from webapp import create_app

    migrations = os.path.join(os.path.dirname(__file__), "..", "..", "webapp", "migrations")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
                      "SECRET_KEY": "x"})
    with app.app_context():
        from webapp.extensions import db

        upgrade(directory=migrations, revision="c3e8a1f7b008")
        with db.engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO api_keys (name, prefix, key_hash, created_at, updated_at) "
                "VALUES ('old', 'sr_abc', 'h', '2026-01-01', '2026-01-01')"))
        upgrade(directory=migrations)
        with db.engine.connect() as connection:
            scope = connection.execute(sa.text("SELECT scope FROM api_keys")).scalar_one()
        db.engine.dispose()
    assert scope == "admin"
