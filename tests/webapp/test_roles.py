"""Dashboard roles on every route, walked from the app's URL map (a route added later is covered at once):
`viewer` reads every page and changes nothing; `member` also works with sources, feeds, imports and retries;
`admin` also manages destinations, alerts, replays, API keys and users.

The expectations are written here from the issue's words, apart from the table in webapp.security.roles.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from webapp.models import User
from webapp.security import create_user

NOT_DASHBOARD = {"api", "feed_serving", "ops", "auth", "static", "onsite", "demo_sink"}
MEMBER_AREAS = {"sources", "feeds", "imports"}  # everything a member may change there
MEMBER_RETRIES = {"orders.retry", "destinations.retry_event", "destinations.retry_failed", "destinations.test",
                  "jobs.requeue", "contacts.refresh"}
PASSWORD = "role-test-password"


def _expected(role: str, endpoint: str, method: str) -> bool:
    if role == "admin" or method == "GET":
        return True
    if role == "viewer":
        return False
    return endpoint.split(".")[0] in MEMBER_AREAS or endpoint in MEMBER_RETRIES


def _dashboard_calls(app) -> list[tuple[str, str, str]]:  # noqa: ANN001
    calls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in NOT_DASHBOARD:
            continue
        url = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
                     lambda m: "999999" if m.group(1) == "int" else "no-such-thing", rule.rule)
        calls += [(method, rule.endpoint, url) for method in ("GET", "POST") if method in rule.methods]
    return calls


def _client_for(app, role: str):  # noqa: ANN001, ANN202
    create_user(f"{role}@example.com", PASSWORD, role=role)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    return client, token


def test_the_walk_sees_the_dashboard(app) -> None:  # noqa: ANN001
    calls = _dashboard_calls(app)
    endpoints = {endpoint for _, endpoint, _ in calls}
    assert {"settings.create_user_view", "destinations.create", "sources.sync", "feeds.build",
            "alerts.create", "orders.retry"} <= endpoints
    assert len(calls) > 60


@pytest.mark.parametrize("role", ["viewer", "member", "admin"])
def test_every_dashboard_route_answers_by_the_role(app, role: str) -> None:  # noqa: ANN001
    app.config["PROPAGATE_EXCEPTIONS"] = False  # junk input may fail a view; only the guard's answer counts
    client, token = _client_for(app, role)
    wrong = []
    for method, endpoint, url in _dashboard_calls(app):
        response = client.open(url, method=method, headers={"X-CSRFToken": token, "Referer": "http://localhost/"})
        allowed = _expected(role, endpoint, method)
        forbidden = response.status_code == 403 and b"Your role" in response.data
        if forbidden == allowed or response.status_code in (302, 401) and "/login" in response.headers.get(
                "Location", "/login"):
            wrong.append((method, endpoint, response.status_code))
        response.close()
    assert wrong == [], f"{role}: {wrong}"


def test_a_viewer_reads_but_cannot_sync_and_is_told_why(app, db) -> None:  # noqa: ANN001
    client, token = _client_for(app, "viewer")
    assert client.get("/sources/").status_code == 200
    refused = client.post("/sources/1/sync", headers={"X-CSRFToken": token})
    assert refused.status_code == 403
    assert "Your role (viewer) cannot do this: it needs member or admin" in refused.get_data(as_text=True)


def test_roles_are_set_from_settings_and_the_cli(app, logged_in, db, runner) -> None:  # noqa: ANN001
    from tests.conftest import csrf_token

    other, _ = create_user("colleague@example.com", "colleague-password")
    assert other.role == "member"
    token = csrf_token(logged_in, "/settings/")
    logged_in.post(f"/settings/users/{other.id}/role", data={"role": "viewer", "csrf_token": token})
    db.session.expire_all()
    assert db.session.get(User, other.id).role == "viewer"
    html = logged_in.get("/settings/users", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'title="reads every page, changes nothing">viewer</span>' in html
    me = db.session.scalar(sa.select(User).where(User.email == "marketer@example.com"))
    refused = logged_in.post(f"/settings/users/{me.id}/role", data={"role": "member", "csrf_token": token},
                             headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "You cannot remove your own admin role." in refused
    made = logged_in.post("/settings/users", data={"email": "v2@example.com", "role": "viewer",
                                                   "csrf_token": token}, headers={"HX-Request": "true"})
    assert made.status_code == 200
    assert db.session.scalar(sa.select(User.role).where(User.email == "v2@example.com")) == "viewer"
    result = runner.invoke(args=["users", "create", "cli@example.com", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    assert "\tviewer" in runner.invoke(args=["users", "list"]).output


def test_admins_stay_admins_and_others_become_members_on_upgrade(tmp_path) -> None:
    import os

    from flask_migrate import upgrade

    from webapp import create_app

    migrations = os.path.join(os.path.dirname(__file__), "..", "..", "webapp", "migrations")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
                      "SECRET_KEY": "x"})
    with app.app_context():
        from webapp.extensions import db

        upgrade(directory=migrations, revision="c3e8a1f7b008")
        with db.engine.begin() as connection:
            for email, admin in (("a@example.com", 1), ("m@example.com", 0)):
                connection.execute(sa.text(
                    "INSERT INTO users (email, password_hash, active, is_admin, created_at, updated_at) "
                    f"VALUES ('{email}', 'x', 1, {admin}, '2026-01-01', '2026-01-01')"))
        upgrade(directory=migrations)
        with db.engine.connect() as connection:
            roles = dict(connection.execute(sa.text("SELECT email, role FROM users")).all())
        db.engine.dispose()
    assert roles == {"a@example.com": "admin", "m@example.com": "member"}
