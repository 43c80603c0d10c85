"""Dashboard sessions and what every answer carries: login throttling (per account, per address, growing
waits refused at once with the time to wait), session cookie flags, security headers with a CSP that allows
only the app's own scripts and styles, and /metrics behind an optional bearer token."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import csrf_token
from webapp.security import logins as security

TEMPLATES = Path(__file__).resolve().parents[2] / "webapp" / "templates"
PASSWORD = "correct horse battery"


def _login(client, email: str, password: str, address: str = "203.0.113.7"):  # noqa: ANN001, ANN202
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def test_failed_logins_past_the_allowance_must_wait_longer_each_time(app, client, user, monkeypatch) -> None:  # noqa: ANN001
    app.config["LOGIN_MAX_FAILURES"] = 3
    for _ in range(2):
        response = _login(client, user.email, "wrong")
        assert response.status_code == 401 and "Too many" not in response.get_data(as_text=True)
    third = _login(client, user.email, "wrong")
    assert third.status_code == 401
    assert "Try again in 1 second" in third.get_data(as_text=True)

    refused = _login(client, user.email, PASSWORD)  # even the right password: the wait is not over
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "Too many failed logins for this account. Try again in 1 second." in refused.get_data(as_text=True)

    clock = [time.time() + 1.5]
    real_wait, real_failed = security.login_wait, security.login_failed
    monkeypatch.setattr("webapp.blueprints.auth.login_wait", lambda e, a: real_wait(e, a, clock[0]))
    monkeypatch.setattr("webapp.blueprints.auth.login_failed", lambda e, a: real_failed(e, a, clock[0]))
    fourth = _login(client, user.email, "wrong")  # the first wait is over: one more try, then 2 s
    assert fourth.status_code == 401 and "Try again in 2 seconds" in fourth.get_data(as_text=True)
    for expected in ("4 seconds", "8 seconds", "16 seconds", "32 seconds", "2 minutes"):
        clock[0] += 3600 / 4  # well past each wait, within the hour failures are remembered
        response = _login(client, user.email, "wrong")
        assert f"Try again in {expected}" in response.get_data(as_text=True), expected
    clock[0] += 3000
    assert _login(client, user.email, PASSWORD).status_code == 302
    assert security.login_wait(user.email, "198.51.100.1", clock[0]) is None  # success clears the account


def test_the_wait_never_passes_fifteen_minutes(app, user) -> None:  # noqa: ANN001
    now = time.time()
    for _ in range(40):
        security.login_failed(user.email, "192.0.2.9", now)
    wait = security.login_wait(user.email, "192.0.2.9", now)
    assert wait is not None and wait.seconds == security.LOGIN_MAX_WAIT
    assert wait.message.endswith("Try again in 15 minutes.")


def test_one_address_guessing_many_accounts_is_throttled(app, client, user) -> None:  # noqa: ANN001
    app.config["LOGIN_MAX_FAILURES"] = 2
    allowance = 2 * security.LOGIN_ADDRESS_FACTOR
    for n in range(allowance):
        assert _login(client, f"guess{n}@example.com", "x", address="198.51.100.23").status_code == 401
    refused = _login(client, user.email, PASSWORD, address="198.51.100.23")
    assert refused.status_code == 429
    assert "for your network address" in refused.get_data(as_text=True)
    assert _login(client, user.email, PASSWORD, address="198.51.100.24").status_code == 302  # others log in


def test_without_redis_logins_still_work(app, client, user) -> None:  # noqa: ANN001
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    assert _login(client, user.email, "wrong").status_code == 401
    assert _login(client, user.email, PASSWORD).status_code == 302


def test_session_cookies_are_httponly_and_lax(client, user) -> None:  # noqa: ANN001
    response = _login(client, user.email, PASSWORD)
    cookies = response.headers.getlist("Set-Cookie")
    assert {c.split("=", 1)[0] for c in cookies} >= {"session", "remember_token"}
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie, cookie


def test_over_https_every_cookie_is_secure(client, user) -> None:  # noqa: ANN001
    page = client.get("/login", base_url="https://shop.example.com").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    over_https = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token},
                             base_url="https://shop.example.com",
                             headers={"Referer": "https://shop.example.com/login"})  # CSRF checks it over HTTPS
    assert over_https.status_code == 302, over_https.get_data(as_text=True)[-600:]
    for cookie in over_https.headers.getlist("Set-Cookie"):
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


def test_behind_a_trusted_proxy_https_and_the_client_address_come_from_its_headers(tmp_path, redis) -> None:  # noqa: ANN001
    from webapp import create_app

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i"), "SECRET_KEY": "x",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "TRUSTED_PROXIES": 1})

    @app.get("/_probe")
    def probe():  # noqa: ANN202
        from flask import request, session

        session["seen"] = True
        return f"{request.remote_addr} {request.scheme}"

    response = app.test_client().get("/_probe", headers={"X-Forwarded-For": "203.0.113.50",
                                                         "X-Forwarded-Proto": "https"})
    assert response.get_data(as_text=True) == "203.0.113.50 https"
    assert "; Secure" in response.headers["Set-Cookie"]
    untrusted = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "j"), "SECRET_KEY": "x",
                            "DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}"})
    untrusted.add_url_rule("/_probe", view_func=probe)
    plain = untrusted.test_client().get("/_probe", headers={"X-Forwarded-For": "203.0.113.50",
                                                            "X-Forwarded-Proto": "https"})
    assert plain.get_data(as_text=True) == "127.0.0.1 http"  # no proxy trusted: the headers mean nothing


@pytest.mark.parametrize("path", ["/login", "/", "/api/v1/openapi.json", "/healthz", "/t.js", "/nowhere"])
def test_every_answer_carries_the_security_headers(logged_in, path: str) -> None:  # noqa: ANN001
    response = logged_in.get(path)
    response.close()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_style_or_handler() -> None:
    """What the CSP would refuse in a browser: inline <script>, <style>, style="" and on*="" attributes."""
    found = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"<style\b", r"\sstyle=\"", r"\son[a-z]+=\"",
                        r"href=\"javascript:", r"hx-on[:-]"):
            found += [f"{template.relative_to(TEMPLATES)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert found == []


def test_metrics_need_the_bearer_token_when_one_is_set(app, client) -> None:  # noqa: ANN001
    assert client.get("/metrics").status_code == 200  # unset: open, as before
    app.config["METRICS_TOKEN"] = "s" * 32
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {'s' * 32}"})
    assert allowed.status_code == 200 and b"shoprelay_" in allowed.data
    assert client.get("/healthz").status_code in (200, 503)  # only /metrics is guarded


def test_a_short_metrics_token_fails_fast() -> None:
    from webapp.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="SHOPRELAY_METRICS_TOKEN"):
        load_settings({"SHOPRELAY_METRICS_TOKEN": "short"})
