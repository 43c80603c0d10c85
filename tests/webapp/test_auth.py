"""Every dashboard route needs a login; every form needs CSRF; the API needs a live key."""

import re

import pytest

from tests.conftest import csrf_token


def _dashboard_get_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ("api", "feed_serving", "ops", "auth", "static", "onsite"):
            continue
        if "GET" in rule.methods:
            yield rule


def test_every_dashboard_route_redirects_to_login(app, client):
    rules = list(_dashboard_get_rules(app))
    assert len(rules) >= 8
    for rule in rules:
        path = re.sub(r"<(?:\w+:)?(\w+)>", "1", rule.rule)
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"], path


def test_every_post_route_rejects_a_missing_csrf_token(app, logged_in):
    posts = [r for r in app.url_map.iter_rules()
             if "POST" in r.methods and r.endpoint.split(".")[0] not in ("api", "onsite", "demo_sink")]
    assert posts
    for rule in posts:
        path = re.sub(r"<(?:\w+:)?(\w+)>", "1", rule.rule)
        response = logged_in.post(path, data={})
        assert response.status_code == 400, path
        assert b"security token" in response.data, path


def test_login_with_wrong_password_is_refused(client, user):
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": user.email, "password": "nope", "csrf_token": token})
    assert response.status_code == 401
    assert b"Wrong email or password" in response.data


def test_login_then_overview_then_logout(client, user):
    token = csrf_token(client, "/login")
    response = client.post("/login?next=//evil.example/x", data={
        "email": user.email.upper(), "password": "correct horse battery", "csrf_token": token})
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert client.get("/").status_code == 302


def test_disabled_user_cannot_log_in(client, user, db):
    user.active = False
    db.session.commit()
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"email": user.email, "password": "correct horse battery",
                                           "csrf_token": token})
    assert response.status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_api_requires_a_valid_key(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/ping", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["errors"][0]["message"].startswith("a valid API key")


def test_revoked_key_is_refused(client, api_key):
    from webapp.security import find_api_key, revoke_api_key

    assert client.get("/api/v1/ping", headers={"Authorization": f"Bearer {api_key}"}).status_code == 200
    revoke_api_key(find_api_key(api_key).id)
    assert client.get("/api/v1/ping", headers={"Authorization": f"Bearer {api_key}"}).status_code == 401


def test_only_a_hash_of_the_key_is_stored(app, api_key, db):
    from webapp.models import ApiKey

    stored = db.session.scalars(db.select(ApiKey)).one()
    assert api_key not in (stored.key_hash, stored.prefix)
    assert len(stored.key_hash) == 64
