"""Passwords, API keys and the guards: API key scopes, dashboard roles, login throttling, session cookies,
security headers, the /metrics token — one module per guard, wired into the app here."""

from __future__ import annotations

from flask import Flask

from webapp.extensions import login_manager
from webapp.security.api_keys import (
    API_KEY_PREFIX,
    API_SCOPES,
    EVERY_KEY,
    INGEST_CALLS,
    SCOPE_HELP,
    api_key_required,
    create_api_key,
    find_api_key,
    revoke_api_key,
    scopes_allowed,
)
from webapp.security.headers import (
    CONTENT_SECURITY_POLICY,
    SECURITY_HEADERS,
    SecureCookies,
    metrics_token_guard,
    security_headers,
)
from webapp.security.logins import LoginWait, login_failed, login_succeeded, login_wait
from webapp.security.roles import (
    MEMBER_ACTIONS,
    NOT_DASHBOARD,
    ROLE_HELP,
    can,
    role_allows,
    role_guard,
    role_needed,
)
from webapp.security.users import authenticate, create_user, hash_password, load_user, verify_password

__all__ = [
    "API_KEY_PREFIX", "API_SCOPES", "CONTENT_SECURITY_POLICY", "EVERY_KEY", "INGEST_CALLS", "MEMBER_ACTIONS",
    "NOT_DASHBOARD", "ROLE_HELP", "SCOPE_HELP", "SECURITY_HEADERS", "LoginWait", "SecureCookies",
    "api_key_required", "authenticate", "can", "create_api_key", "create_user", "find_api_key", "hash_password",
    "init_app", "login_failed", "login_succeeded", "login_wait", "revoke_api_key", "role_allows", "role_needed",
    "scopes_allowed", "verify_password",
]


def init_app(app: Flask) -> None:
    login_manager.user_loader(load_user)
    # Flask-Login's remember-me cookie gets the session cookie's flags (Secure is added per request below).
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.before_request(metrics_token_guard)
    app.before_request(role_guard)
    app.add_template_global(can)
    app.after_request(security_headers)
    app.wsgi_app = SecureCookies(app.wsgi_app)  # type: ignore[method-assign]
