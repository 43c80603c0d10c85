"""Dashboard users and API keys."""

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, Timestamps

ROLES = ("viewer", "member", "admin")  # each may do what the ones before it may (webapp.security)


class User(UserMixin, Timestamps, Base):
    """A dashboard user. `role`: `admin` manages destinations, alerts, keys and users; `member` works with
    sources, feeds, imports and retries; `viewer` reads."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    role: Mapped[str] = mapped_column(sa.String(10), default="member", server_default="member")
    last_login_at: Mapped[datetime | None]

    @property
    def is_active(self) -> bool:  # Flask-Login refuses disabled users
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @is_admin.setter
    def is_admin(self, value: bool) -> None:
        """Making someone admin, or taking it away (they become a member), as before roles existed."""
        if value:
            self.role = "admin"
        elif self.role == "admin":
            self.role = "member"


class ApiKey(Timestamps, Base):
    """Bearer key for /api/v1. Only a SHA-256 of the key is stored; the key is shown once.

    `scope` is what the key may do (webapp.security.api_keys.API_SCOPES): `ingest` (a store backend), `read`, `admin`.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scope: Mapped[str] = mapped_column(sa.String(10), default="admin", server_default="admin")
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
