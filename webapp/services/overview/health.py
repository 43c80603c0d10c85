"""Liveness of the parts shoprelay needs: the database and Redis."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from webapp.extensions import db


def check_health() -> dict[str, str]:
    """{"db": "ok"|reason, "redis": "ok"|reason}; a reason names what is wrong, never a secret."""
    return {"db": _check_db(), "redis": _check_redis()}


def _check_db() -> str:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return "ok"
    except sa.exc.SQLAlchemyError as exc:
        db.session.rollback()
        return f"down: {type(exc.orig or exc).__name__}"


def _check_redis() -> str:
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    if not url:
        return "down: REDIS_URL is not set"
    try:
        connect(url).ping()
        return "ok"
    except RedisError as exc:
        return f"down: {type(exc).__name__}"
