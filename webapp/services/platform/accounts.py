"""Managing dashboard users and API keys from the settings page (creation itself lives in webapp.security).

Nobody can disable themselves or drop their own admin role: the last admin must not lock everyone out.
"""

from __future__ import annotations

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import ApiKey, User


class AccountError(ValueError):
    """A refused change, with a message meant for the person who asked for it."""


def list_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.email)))


def list_api_keys() -> list[ApiKey]:
    """Active keys first (newest first), revoked ones after them."""
    return list(db.session.scalars(sa.select(ApiKey).order_by(
        ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())))


def get_user(user_id: int) -> User:
    return db.get_or_404(User, user_id)


def set_user_active(user: User, active: bool, acting: User) -> User:
    if user.id == acting.id and not active:
        raise AccountError("You cannot disable your own account.")
    user.active = active
    db.session.commit()
    return user


def set_user_admin(user: User, is_admin: bool, acting: User) -> User:
    if user.id == acting.id and not is_admin:
        raise AccountError("You cannot remove your own admin role.")
    user.is_admin = is_admin
    db.session.commit()
    return user


def set_user_role(user: User, role: str, acting: User) -> User:
    from webapp.models.accounts import ROLES

    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}: one of {', '.join(reversed(ROLES))}.")
    if user.id == acting.id and role != "admin":
        raise AccountError("You cannot remove your own admin role.")
    user.role = role
    db.session.commit()
    return user


def form_errors(exc: ValueError) -> dict[str, str]:
    """`create_user`/`create_api_key` raise "field: message"; split it for the form's field errors."""
    field, sep, message = str(exc).partition(": ")
    return {field: message} if sep else {"": str(exc)}
