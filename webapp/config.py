"""Turn the parsed settings into Flask configuration."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from webapp.services.onsite.settings import load_onsite_settings, resolve_onsite_secret
from webapp.settings import load_settings, resolve_instance


def init_app(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    values = load_settings()
    values.update(load_onsite_settings())
    values.update(overrides or {})
    values = resolve_onsite_secret(resolve_instance(values))
    app.instance_path = values["INSTANCE_PATH"]
    app.config.update(values)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=values["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(values["DATABASE_URL"], values["DB_WAIT_SECONDS"]),
        MAX_CONTENT_LENGTH=values["API_MAX_BYTES"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        FEEDS_DIR=os.path.join(values["INSTANCE_PATH"], "feeds"),
        UPLOADS_DIR=os.path.join(values["INSTANCE_PATH"], "uploads"),
    )
    for folder in (app.config["FEEDS_DIR"], app.config["UPLOADS_DIR"]):
        os.makedirs(folder, exist_ok=True)


def engine_options(url: str, wait_seconds: float = 5.0) -> dict[str, Any]:
    """SQLite: wait on locks (the busy timeout, set per connection in extensions) instead of failing;
    PostgreSQL: a pool that survives restarts (pre-ping) and gives up on a dead server within the wait."""
    import orjson

    # JSON columns are read on every feed row: 3x faster. Bound values stay out of database error messages, which
    # end up in logs, job errors and alerts (a statement's parameters can be an email or a credential).
    common = {"json_deserializer": orjson.loads, "hide_parameters": True}
    if url.startswith("sqlite"):
        return common | {"connect_args": {"timeout": wait_seconds}}
    return common | {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_timeout": wait_seconds,
                     "connect_args": {"connect_timeout": max(1, round(wait_seconds))}}
