"""What this instance is running on (version, database, Redis, workers, paths) and how much it holds.

URLs are shown with their passwords replaced, never verbatim: screenshots of this page get shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import current_app

import webapp
from webapp.extensions import db
from webapp.models import Contact, Event, Order, Product
from webapp.services.overview.runtime_status import RuntimeStatus
from webapp.services.platform.statements import dialect_name

EXACT_COUNT_LIMIT = 200_000  # above this PostgreSQL's planner estimate is shown instead of a slow count(*)


@dataclass(frozen=True)
class TableCount:
    label: str
    count: int
    estimated: bool


@dataclass(frozen=True)
class InstanceInfo:
    version: str
    database_backend: str
    database_url: str
    redis_url: str
    redis_error: str | None
    workers: int
    scheduler_alive: bool
    instance_path: str
    feeds_dir: str
    counts: list[TableCount]


def redact_url(url: str | None) -> str:
    """`scheme://user:secret@host/db` -> `scheme://user:***@host/db`; URLs without a password are unchanged."""
    if not url:
        return "not set"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def table_count(model: type, label: str) -> TableCount:
    """Exact on SQLite and small tables; PostgreSQL's estimate (no full scan) for big ones."""
    if dialect_name() == "postgresql":
        estimate = db.session.scalar(sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:name AS regclass)"),
                                     {"name": model.__tablename__})
        if estimate is not None and estimate > EXACT_COUNT_LIMIT:
            return TableCount(label, int(estimate), estimated=True)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
    return TableCount(label, count, estimated=False)


def instance_info(runtime: RuntimeStatus) -> InstanceInfo:
    config = current_app.config
    bind = db.session.get_bind()
    counts = [table_count(Order, "Orders"), table_count(Contact, "Contacts"), table_count(Event, "Events"),
              table_count(Product, "Products")]
    return InstanceInfo(
        version=webapp.__version__,
        database_backend=f"{bind.dialect.name} {'.'.join(map(str, bind.dialect.server_version_info or ()))}".strip(),
        database_url=redact_url(config.get("SQLALCHEMY_DATABASE_URI")),
        redis_url=redact_url(config.get("REDIS_URL")),
        redis_error=runtime.redis_error,
        workers=len(runtime.workers),
        scheduler_alive=runtime.scheduler_alive,
        instance_path=current_app.instance_path,
        feeds_dir=config.get("FEEDS_DIR", ""),
        counts=counts,
    )
