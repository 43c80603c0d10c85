"""API keys and their scopes: one table (`scopes_allowed`) read from the request's endpoint and method by
`api_key_required`, so no view repeats it and a route added later is admin-only for writes and readable by
`read` keys until the table says otherwise (tests/api/test_key_scopes.py walks the URL map)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import cache, wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import g, jsonify, request

from webapp.extensions import db
from webapp.models import ApiKey, utcnow

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
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    method = "GET" if method in READ_METHODS else method
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
