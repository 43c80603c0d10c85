"""Passwords, API keys and the guards: API key scopes, dashboard roles, login throttling, session cookies,
security headers, the /metrics token.

API key scopes and dashboard roles are each one table (`scopes_allowed`, `role_needed`) read from the request's
endpoint and method — by `api_key_required` for /api/v1, by an app-wide hook for the dashboard — so no view
repeats them, and a route added later is admin-only for writes and readable by `read` keys and viewers until
its table says otherwise (tests/api/test_key_scopes.py and tests/webapp/test_roles.py walk the URL map).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, Response, abort, current_app, g, jsonify, request
from flask_login import current_user
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db, login_manager
from webapp.models import ApiKey, User, utcnow
from webapp.models.accounts import ROLES

F = TypeVar("F", bound=Callable[..., Any])
API_KEY_PREFIX = "sr_"
_KEYS = ApiKey.__table__

API_SCOPES = ("ingest", "read", "admin")
SCOPE_HELP = {
    "ingest": "a store backend: send orders, checkouts, products and back-in-stock requests, read orders back",
    "read": "reporting: read everything, change nothing",
    "admin": "everything, including sources, feeds, destinations, alerts, retries and replays",
}
# What an ingest key (a store's backend) may call: its writes, and reading back the orders it sent.
INGEST_CALLS = frozenset({
    ("api.post_orders", "POST"), ("api.post_checkout", "POST"), ("api.push_products", "POST"),
    ("api.back_in_stock", "POST"), ("api.get_order", "GET"),
})
EVERY_KEY = frozenset({"api.ping"})  # a store checks its key, whatever its scope
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


log = logging.getLogger(__name__)

# Only the app's own scripts and styles (htmx is served from /static; no inline script, style or handler);
# product images come from the store's own sites. Nothing may frame the dashboard.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: https: http:",
    "font-src 'self'", "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'"))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # a feed URL's token never leaves in a Referer
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    login_manager.user_loader(_load_user)
    # Flask-Login's remember-me cookie gets the session cookie's flags (Secure is added per request below).
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.before_request(_metrics_token_guard)
    app.before_request(_role_guard)
    app.add_template_global(can)
    app.after_request(_security_headers)
    app.wsgi_app = SecureCookies(app.wsgi_app)  # type: ignore[method-assign]


# ---- dashboard roles: one table, read for every dashboard request from its endpoint and method ----

# Blueprints that are not the dashboard: their own guards (API keys, feed tokens, none for health and onsite).
NOT_DASHBOARD = frozenset({"api", "feed_serving", "ops", "auth", "static", "onsite", "demo_sink"})
ROLE_HELP = {
    "viewer": "reads every page, changes nothing",
    "member": "works with sources, feeds, imports and retries",
    "admin": "also manages destinations, alerts, replays, API keys and users",
}
# What a member may change besides reading: everything else that changes something needs an admin.
MEMBER_ACTIONS = frozenset({
    "sources.create", "sources.update", "sources.delete", "sources.save_mapping", "sources.mapping_preview",
    "sources.sync", "feeds.create", "feeds.update", "feeds.delete", "feeds.build", "feeds.publish", "feeds.rotate",
    "feeds.preview", "imports.upload", "imports.resume", "orders.retry", "destinations.retry_event",
    "destinations.retry_failed", "destinations.test", "jobs.requeue", "contacts.refresh",
})


def role_needed(endpoint: str | None, method: str) -> str:
    """The least role that may call this dashboard endpoint with this method."""
    if method in _READ_METHODS:
        return "viewer"
    return "member" if endpoint in MEMBER_ACTIONS else "admin"


def role_allows(role: str, endpoint: str | None, method: str) -> bool:
    return ROLES.index(role) >= ROLES.index(role_needed(endpoint, method)) if role in ROLES else False


def can(endpoint: str, method: str = "POST") -> bool:
    """For templates: whether the logged-in user's role may call this endpoint (hide what would be a 403)."""
    return bool(current_user.is_authenticated) and role_allows(current_user.role, endpoint, method)


def _role_guard() -> None:
    """403 for a logged-in user whose role does not allow this dashboard call (a route added later is read
    by viewers and changed by admins until MEMBER_ACTIONS names it). Not logged in: the blueprint's own guard
    sends them to the login page."""
    if request.endpoint is None or request.blueprint in NOT_DASHBOARD or request.blueprint is None:
        return
    if not current_user.is_authenticated or role_allows(current_user.role, request.endpoint, request.method):
        return
    needed = role_needed(request.endpoint, request.method)
    abort(403, description=f"Your role ({current_user.role}) cannot do this: it needs {needed}"
                           f"{' or admin' if needed == 'member' else ''}. Ask an admin.")


def _security_headers(response: Response) -> Response:
    """Security headers on every answer (a view may set its own first)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class SecureCookies:
    """Every cookie set in an answer to an HTTPS request is marked Secure: the session, remember-me and any
    other, whoever sets it (Flask saves the session and Flask-Login its cookie after every after_request hook,
    so this sits around the whole app). Behind a proxy the scheme is the one ProxyFix found in
    X-Forwarded-Proto, once SHOPRELAY_TRUSTED_PROXIES says the proxy may be believed."""

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def secure_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get("wsgi.url_scheme") == "https":
                headers = [(name, value + "; Secure" if name.lower() == "set-cookie"
                            and "; secure" not in value.lower() else value) for name, value in headers]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, secure_start)


def _metrics_token_guard() -> Response | None:
    """`GET /metrics` needs `Authorization: Bearer <SHOPRELAY_METRICS_TOKEN>` when that setting is given."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token or request.endpoint != "ops.metrics":
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    response = Response("metrics need Authorization: Bearer <SHOPRELAY_METRICS_TOKEN>\n", 401,
                        mimetype="text/plain")
    response.headers["WWW-Authenticate"] = 'Bearer realm="shoprelay metrics"'
    return response


def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def create_user(email: str, password: str | None = None, *, is_admin: bool = False,
                role: str | None = None) -> tuple[User, str]:
    """Create a dashboard user; returns the user and the (generated when not given) password.

    `role` (admin, member, viewer) wins over `is_admin` (admin, else member).
    """
    role = role or ("admin" if is_admin else "member")
    if role not in ROLES:
        raise ValueError(f"role: one of {', '.join(reversed(ROLES))}")
    email = email.strip().lower()
    if not email or "@" not in email:
        raise ValueError("email: a valid email address is required")
    if db.session.scalar(sa.select(User).where(User.email == email)):
        raise ValueError(f"email: a user {email} already exists")
    password = password or secrets.token_urlsafe(12)
    if len(password) < 8:
        raise ValueError("password: at least 8 characters")
    user = User(email=email, password_hash=hash_password(password), role=role)
    db.session.add(user)
    db.session.commit()
    return user, password


# ---- login throttling: per account and per client address, growing waits, counted in Redis ----

LOGIN_FIRST_WAIT = 1.0  # seconds after the first failure past the allowance; doubles with each further one
LOGIN_MAX_WAIT = 15 * 60.0
LOGIN_ADDRESS_FACTOR = 4  # an address (an office behind one NAT) gets this many times an account's allowance
LOGIN_FORGET_SECONDS = 3600  # failures are forgotten this long after the last one


@dataclass(frozen=True)
class LoginWait:
    seconds: float
    reason: str  # "account" or "address"

    @property
    def message(self) -> str:
        whom = "this account" if self.reason == "account" else "your network address"
        return f"Too many failed logins for {whom}. Try again in {_duration(self.seconds)}."

    @property
    def retry_after(self) -> str:
        return str(max(1, math.ceil(self.seconds)))


def _duration(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    if whole < 60:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _login_keys(email: str, address: str) -> dict[str, str]:
    """Redis keys of the two counters; hashed, so Redis holds no email address or IP in clear."""
    def digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()[:32]

    return {"account": f"shoprelay:login:account:{digest(email.strip().lower())}",
            "address": f"shoprelay:login:address:{digest(address)}"}


def _login_redis():  # noqa: ANN202
    from webapp.extensions import get_redis

    return get_redis()


def login_wait(email: str, address: str, now: float | None = None) -> LoginWait | None:
    """How long this account or address must still wait before another try, or None when it may try.

    Redis unreachable: logins are not throttled (logged), rather than nobody being able to log in.
    """
    now = time.time() if now is None else now
    allowance = current_app.config.get("LOGIN_MAX_FAILURES", 5)
    try:
        redis = _login_redis()
        keys = _login_keys(email, address)
        with redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.hmget(key, "failures", "last")
            counters = pipe.execute()
    except Exception as exc:  # noqa: BLE001 - any Redis failure: do not lock everyone out
        log.warning("login throttling is off for this request (Redis: %s)", exc)
        return None
    longest: LoginWait | None = None
    for (reason, _), (failures, last) in zip(keys.items(), counters, strict=True):
        limit = allowance * (LOGIN_ADDRESS_FACTOR if reason == "address" else 1)
        count = int(failures or 0)
        if count < limit or last is None:
            continue
        wait = min(LOGIN_MAX_WAIT, LOGIN_FIRST_WAIT * 2 ** (count - limit)) - (now - float(last))
        if wait > 0 and (longest is None or wait > longest.seconds):
            longest = LoginWait(wait, reason)
    return longest


def login_failed(email: str, address: str, now: float | None = None) -> None:
    """Count a failed login against the account and the address."""
    now = time.time() if now is None else now
    try:
        redis = _login_redis()
        with redis.pipeline(transaction=True) as pipe:
            for key in _login_keys(email, address).values():
                pipe.hincrby(key, "failures", 1)
                pipe.hset(key, "last", repr(now))
                pipe.expire(key, LOGIN_FORGET_SECONDS)
            pipe.execute()
    except Exception as exc:  # noqa: BLE001
        log.warning("a failed login was not counted (Redis: %s)", exc)


def login_succeeded(email: str) -> None:
    """A correct password clears the account's count (not the address's: one's own account must not reset
    an address that is guessing others')."""
    try:
        _login_redis().delete(_login_keys(email, "")["account"])
    except Exception as exc:  # noqa: BLE001
        log.warning("a login's failure count was not cleared (Redis: %s)", exc)


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active or not verify_password(user, password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str, scope: str = "admin") -> tuple[ApiKey, str]:
    """Make a key; only its SHA-256 is stored, so the returned plain key is shown once."""
    name = name.strip()
    if not name:
        raise ValueError("name: required")
    if len(name) > 120:
        raise ValueError("name: at most 120 characters")
    if scope not in API_SCOPES:
        raise ValueError(f"scope: one of {', '.join(API_SCOPES)}")
    plain = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=plain[:10], key_hash=_digest(plain), scope=scope)
    db.session.add(key)
    db.session.commit()
    return key, plain


def revoke_api_key(key_id: int) -> ApiKey:
    key = db.get_or_404(ApiKey, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.commit()
    return key


def find_api_key(plain: str) -> sa.Row | None:
    """The key's row (id, name, prefix, scope, last_used_at) when it exists and is not revoked, else None.

    Checked against the database on every request (one Core query, no ORM object, no cache), so a
    revoked key stops working at once in every process.
    """
    return db.session.execute(_key_query(), {"key_hash": _digest(plain)}).first()


@cache
def _key_query() -> sa.Select:
    """Built once (webapp.services.platform.statements): this runs on every API request."""
    return (sa.select(_KEYS.c.id, _KEYS.c.name, _KEYS.c.prefix, _KEYS.c.scope, _KEYS.c.last_used_at)
            .where(_KEYS.c.key_hash == sa.bindparam("key_hash"), _KEYS.c.revoked_at.is_(None)))


@cache
def _touch_key() -> sa.Update:
    return sa.update(_KEYS).where(_KEYS.c.id == sa.bindparam("key_id")).values(last_used_at=sa.bindparam("now"))


def scopes_allowed(endpoint: str | None, method: str) -> tuple[str, ...]:
    """The key scopes that may call this endpoint with this method (admin may call everything)."""
    method = "GET" if method in _READ_METHODS else method
    if endpoint in EVERY_KEY:
        return API_SCOPES
    allowed = []
    if (endpoint, method) in INGEST_CALLS:
        allowed.append("ingest")
    if method == "GET":
        allowed.append("read")
    return (*allowed, "admin")


def _api_error(status: int, message: str) -> Any:
    response = jsonify(errors=[{"path": "", "message": message}])
    response.status_code = status
    return response


def api_key_required(view: F) -> F:
    """Guard for /api/v1: `Authorization: Bearer <key>` whose scope allows the call; 401 or 403 in the API's
    error shape otherwise. Last use is recorded at most once a minute per key (busy keys write nothing more)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        key = find_api_key(token.strip()) if scheme.lower() == "bearer" and token else None
        if key is None:
            response = _api_error(401, "a valid API key is required (Authorization: Bearer <key>)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="shoprelay"'
            return response
        now = utcnow()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            db.session.execute(_touch_key(), {"key_id": key.id, "now": now})
            db.session.commit()
        allowed = scopes_allowed(request.endpoint, request.method)
        if key.scope not in allowed:
            needed = " or ".join(scope for scope in allowed if scope != key.scope)
            return _api_error(403, f"this API key's scope is {key.scope}: {request.method} {request.path} "
                                   f"needs a key with the {needed} scope")
        g.api_key = key
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
