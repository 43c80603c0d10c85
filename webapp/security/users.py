"""Dashboard users: creating them, their passwords, logging in."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.extensions import db
from webapp.models import User, utcnow
from webapp.models.accounts import ROLES


def load_user(user_id: str) -> User | None:
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


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active or not verify_password(user, password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user
