"""Passwords, API keys and the login/API-key guards."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import cache, wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, g, jsonify, request
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db, login_manager
from webapp.models import ApiKey, User, utcnow

F = TypeVar("F", bound=Callable[..., Any])
API_KEY_PREFIX = "sr_"
_KEYS = ApiKey.__table__


def init_app(app: Flask) -> None:
    login_manager.user_loader(_load_user)


def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def create_user(email: str, password: str | None = None, *, is_admin: bool = False) -> tuple[User, str]:
    """Create a dashboard user; returns the user and the (generated when not given) password."""
    email = email.strip().lower()
    if not email or "@" not in email:
        raise ValueError("email: a valid email address is required")
    if db.session.scalar(sa.select(User).where(User.email == email)):
        raise ValueError(f"email: a user {email} already exists")
    password = password or secrets.token_urlsafe(12)
    if len(password) < 8:
        raise ValueError("password: at least 8 characters")
    user = User(email=email, password_hash=hash_password(password), is_admin=is_admin)
    db.session.add(user)
    db.session.commit()
    return user, password


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active or not verify_password(user, password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str) -> tuple[ApiKey, str]:
    """Make a key; only its SHA-256 is stored, so the returned plain key is shown once."""
    name = name.strip()
    if not name:
        raise ValueError("name: required")
    plain = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=plain[:10], key_hash=_digest(plain))
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
    """The key's row (id, name, prefix, last_used_at) when it exists and is not revoked, else None.

    Checked against the database on every request (one Core query, no ORM object, no cache), so a
    revoked key stops working at once in every process.
    """
    return db.session.execute(_key_query(), {"key_hash": _digest(plain)}).first()


@cache
def _key_query() -> sa.Select:
    """Built once (webapp.services.platform.statements): this runs on every API request."""
    return (sa.select(_KEYS.c.id, _KEYS.c.name, _KEYS.c.prefix, _KEYS.c.last_used_at)
            .where(_KEYS.c.key_hash == sa.bindparam("key_hash"), _KEYS.c.revoked_at.is_(None)))


@cache
def _touch_key() -> sa.Update:
    return sa.update(_KEYS).where(_KEYS.c.id == sa.bindparam("key_id")).values(last_used_at=sa.bindparam("now"))


def api_key_required(view: F) -> F:
    """Guard for /api/v1: `Authorization: Bearer <key>`; 401 in the API's error shape otherwise."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        key = find_api_key(token.strip()) if scheme.lower() == "bearer" and token else None
        if key is None:
            response = jsonify(errors=[{"path": "", "message": "a valid API key is required "
                                        "(Authorization: Bearer <key>)"}])
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="shoprelay"'
            return response
        now = utcnow()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            # throttled so busy keys don't write on every request
            db.session.execute(_touch_key(), {"key_id": key.id, "now": now})
            db.session.commit()
        g.api_key = key
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
