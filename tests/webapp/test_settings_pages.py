"""Settings page: users (create, disable, admin), API keys (shown once, revoke), instance info."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import g

from tests.conftest import csrf_token
from webapp.models import ApiKey, User
from webapp.security import create_user
from webapp.services.overview.instance_info import redact_url

HTMX = {"HX-Request": "true"}


def _forget_csrf() -> None:
    """The test's app context outlives requests, so Flask-WTF's token cache in `g` would leak from one
    client to another; each client must get the token of its own session."""
    for name in ("csrf_token", "csrf_valid"):
        g.pop(name, None)


def _post(client, path: str, data: dict, **kwargs):  # noqa: ANN001, ANN202
    _forget_csrf()
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/settings/")}, **kwargs)


def _login(app, email: str, password: str) -> int:  # noqa: ANN001
    _forget_csrf()
    client = app.test_client()
    token = csrf_token(client, "/login")
    status = client.post("/login", data={"email": email, "password": password, "csrf_token": token}).status_code
    _forget_csrf()
    return status


def test_settings_page_shows_the_three_sections(logged_in, user):
    response = logged_in.get("/settings/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for anchor in ('id="users"', 'id="api-keys"', 'id="instance"'):
        assert anchor in html
    assert user.email in html and "(you)" in html
    assert "shoprelay 0.1.0" in html and "sqlite" in html
    assert "No API keys yet" in html


@pytest.mark.parametrize(("path", "section"), [("/settings/users", "users"), ("/settings/api-keys", "api-keys"),
                                              ("/settings/instance", "instance")])
def test_each_section_is_a_partial_for_htmx_and_a_page_otherwise(logged_in, path, section):
    partial = logged_in.get(path, headers=HTMX).get_data(as_text=True)
    assert "<html" not in partial
    assert f'<section id="{section}"' in partial
    assert "<html" in logged_in.get(path).get_data(as_text=True)


def test_create_user_shows_the_generated_password_once_and_it_logs_in(app, logged_in):
    response = _post(logged_in, "/settings/users", {"email": "New.Person@example.com"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-user-password" type="text" value="([^"]+)" readonly', html).group(1)
    assert 'data-copy="new-user-password"' in html
    assert _login(app, "new.person@example.com", password) == 302
    assert password not in logged_in.get("/settings/").get_data(as_text=True)


def test_create_user_with_a_chosen_password_does_not_echo_it(app, logged_in):
    response = _post(logged_in, "/settings/users", {"email": "chosen@example.com", "password": "a-long-password"},
                     headers=HTMX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and "a-long-password" not in html
    assert "chosen@example.com can now log in" in html
    assert _login(app, "chosen@example.com", "a-long-password") == 302


def test_invalid_or_duplicate_users_are_refused_with_the_reason(logged_in, user):
    response = _post(logged_in, "/settings/users", {"email": user.email})
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    short = _post(logged_in, "/settings/users", {"email": "x@example.com", "password": "short"}, headers=HTMX)
    assert short.status_code == 200  # htmx swaps only 2xx responses
    assert "at least 8 characters" in short.get_data(as_text=True)


def test_disable_user_refuses_login_and_enable_restores_it(app, logged_in, db):
    other, password = create_user("colleague@example.com", "colleague-password")
    response = _post(logged_in, f"/settings/users/{other.id}/active", {"active": "0"})
    assert response.status_code == 302
    assert db.session.get(User, other.id).active is False
    assert _login(app, "colleague@example.com", password) == 401
    html = _post(logged_in, f"/settings/users/{other.id}/active", {"active": "1"}, headers=HTMX).get_data(
        as_text=True)
    assert "colleague@example.com enabled" in html
    assert _login(app, "colleague@example.com", password) == 302


def test_you_cannot_disable_yourself_or_drop_your_admin_role(logged_in, user, db):
    html = _post(logged_in, f"/settings/users/{user.id}/active", {"active": "0"}, headers=HTMX).get_data(
        as_text=True)
    assert "You cannot disable your own account." in html
    html = _post(logged_in, f"/settings/users/{user.id}/admin", {"admin": "0"}, headers=HTMX).get_data(
        as_text=True)
    assert "You cannot remove your own admin role." in html
    db.session.expire_all()
    assert db.session.get(User, user.id).active and db.session.get(User, user.id).is_admin
    assert logged_in.get("/settings/").status_code == 200  # still logged in


def test_make_admin(logged_in, db):
    other, _ = create_user("colleague@example.com", "colleague-password")
    _post(logged_in, f"/settings/users/{other.id}/admin", {"admin": "1"})
    db.session.expire_all()
    assert db.session.get(User, other.id).is_admin


def test_members_cannot_manage_users_or_keys(app, db):
    member, _ = create_user("member@example.com", "member-password")
    client = app.test_client()
    client.post("/login", data={"email": member.email, "password": "member-password",
                                "csrf_token": csrf_token(client, "/login")})
    html = client.get("/settings/").get_data(as_text=True)
    assert "Only admins can add or disable users." in html and "Create API key" not in html
    assert _post(client, "/settings/api-keys", {"name": "sneaky"}).status_code == 403
    assert _post(client, "/settings/users", {"email": "x@example.com"}).status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


def test_api_key_is_shown_once_works_and_stops_working_when_revoked(app, logged_in, db):
    response = _post(logged_in, "/settings/api-keys", {"name": "Store backend"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert "<html" not in html and response.headers["Cache-Control"] == "no-store"
    plain = re.search(r'id="new-api-key" type="text" value="(sr_[^"]+)" readonly', html).group(1)
    assert 'data-copy="new-api-key"' in html

    api = app.test_client()
    auth = {"Authorization": f"Bearer {plain}"}
    assert api.get("/api/v1/ping", headers=auth).status_code == 200

    page = logged_in.get("/settings/").get_data(as_text=True)
    assert plain not in page  # shown once
    assert "Store backend" in page and plain[:10] + "…" in page
    key = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == "Store backend"))
    assert key.last_used_at is not None

    revoked = _post(logged_in, f"/settings/api-keys/{key.id}/revoke", {}, headers=HTMX).get_data(as_text=True)
    assert "revoked" in revoked and 'hx-confirm="Revoke' not in revoked
    assert api.get("/api/v1/ping", headers=auth).status_code == 401


def test_api_key_needs_a_name(logged_in):
    response = _post(logged_in, "/settings/api-keys", {"name": "  "})
    assert response.status_code == 422
    assert "required" in response.get_data(as_text=True)


def test_revoke_asks_for_confirmation(logged_in, api_key):
    html = logged_in.get("/settings/api-keys", headers=HTMX).get_data(as_text=True)
    assert 'hx-confirm="Revoke “tests”?' in html


def test_instance_info_redacts_passwords_and_reports_redis(app, logged_in):
    app.config["REDIS_URL"] = "redis://:hunter2secret@127.0.0.1:1/0"
    html = logged_in.get("/settings/instance", headers=HTMX).get_data(as_text=True)
    assert "hunter2secret" not in html
    assert "redis://:***@127.0.0.1:1/0" in html
    assert "unreachable" in html


def test_redact_url():
    assert redact_url("postgresql+psycopg://shop:s3cret@db.internal:5432/shop") == \
        "postgresql+psycopg://shop:***@db.internal:5432/shop"
    assert redact_url("sqlite:////srv/instance/shoprelay.db") == "sqlite:////srv/instance/shoprelay.db"
    assert redact_url(None) == "not set"
