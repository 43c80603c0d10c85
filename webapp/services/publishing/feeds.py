"""Feeds: create / update, the stable public URL and its rotatable token, serialisation, preview."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, request

from feeds.writers import FEED_FORMATS, write_feed
from webapp.extensions import db
from webapp.models import Feed, FeedBuild, FeedFetch, Source
from webapp.schemas.errors import ApiError, problem
from webapp.schemas.feeds import FeedCreate, FeedUpdate
from webapp.services.platform.crypto import encrypt_json
from webapp.services.platform.jsonutil import iso


def new_token() -> str:
    """192 random bits, URL-safe: the unguessable part of the public URL."""
    return secrets.token_urlsafe(24)


def _sources(ids: list[int]) -> list[Source]:
    sources = db.session.scalars(sa.select(Source).where(Source.id.in_(ids))).all()
    missing = sorted(set(ids) - {s.id for s in sources})
    if missing:
        raise ApiError(422, [problem(["source_ids"], f"no source with id {', '.join(map(str, missing))}")])
    return list(sources)


def _slug_free(slug: str, feed_id: int | None = None) -> None:
    taken = db.session.scalar(sa.select(Feed.id).where(Feed.slug == slug, Feed.id != (feed_id or 0)))
    if taken:
        raise ApiError(422, [problem(["slug"], f"another feed already uses {slug!r}")])


def create_feed(data: FeedCreate) -> Feed:
    _slug_free(data.slug)
    feed = Feed(name=data.name, slug=data.slug, format=data.format, token=new_token(), rules=data.rules or [],
                field_overrides=data.field_overrides or {}, gzip=data.gzip, max_loss_share=data.max_loss_share,
                sources=_sources(data.source_ids))
    _set_auth(feed, data.basic_auth)
    db.session.add(feed)
    db.session.commit()
    return feed


def update_feed(feed: Feed, data: FeedUpdate) -> Feed:
    if data.slug and data.slug != feed.slug:
        _slug_free(data.slug, feed.id)
    for name in ("name", "slug", "format", "gzip"):
        if getattr(data, name) is not None:
            setattr(feed, name, getattr(data, name))
    for name in ("rules", "field_overrides", "max_loss_share"):
        if name in data.model_fields_set:
            setattr(feed, name, getattr(data, name) if getattr(data, name) is not None else
                    ([] if name == "rules" else {} if name == "field_overrides" else None))
    if data.source_ids is not None:
        feed.sources = _sources(data.source_ids)
    if "basic_auth" in data.model_fields_set:
        _set_auth(feed, data.basic_auth)
    db.session.commit()
    return feed


def _set_auth(feed: Feed, auth: Any) -> None:
    if auth is None:
        feed.basic_auth_username = feed.basic_auth_password_encrypted = None
    else:
        feed.basic_auth_username = auth.username
        feed.basic_auth_password_encrypted = encrypt_json({"password": auth.password})


def rotate_token(feed: Feed) -> str:
    """A new URL; the old one stops working at once (tell the platform the new one)."""
    feed.token = new_token()
    db.session.commit()
    return feed.token


def delete_feed(feed: Feed) -> None:
    import shutil

    from webapp.services.publishing.builds import feed_dir

    shutil.rmtree(feed_dir(feed.id), ignore_errors=True)
    db.session.delete(feed)
    db.session.commit()


def part_names(feed: Feed) -> list[str]:
    build = db.session.get(FeedBuild, feed.published_build_id) if feed.published_build_id else None
    return [part["name"] for part in build.parts] if build else []


def feed_url(feed: Feed, filename: str | None = None) -> str:
    """The public URL (SHOPRELAY_BASE_URL when set, else the request's host)."""
    filename = filename or f"{feed.slug}.{FEED_FORMATS[feed.format].extension}"
    path = f"/feeds/{feed.token}/{filename}"
    base = current_app.config.get("BASE_URL")
    if base:
        return base.rstrip("/") + path
    return (request.host_url.rstrip("/") if has_request_context() else "") + path


def build_json(build: FeedBuild) -> dict[str, Any]:
    return {"id": build.id, "feed_id": build.feed_id, "status": build.status, "trigger": build.trigger,
            "counts": {"written": build.items_written, "skipped": build.items_skipped, "total": build.items_total,
                       "bytes": build.bytes, "parts": len(build.parts)},
            "parts": build.parts, "report": build.report, "error": build.error,
            "created_at": iso(build.created_at), "started_at": iso(build.started_at),
            "finished_at": iso(build.finished_at)}


def fetch_stats(feed_id: int) -> dict[str, Any]:
    last = db.session.scalar(sa.select(FeedFetch).where(FeedFetch.feed_id == feed_id)
                             .order_by(FeedFetch.fetched_at.desc()).limit(1))
    count = db.session.scalar(sa.select(sa.func.count()).where(FeedFetch.feed_id == feed_id)) or 0
    return {"fetches": count, "last_fetched_at": iso(last.fetched_at) if last else None,
            "last_user_agent": last.user_agent if last else None, "last_status": last.status if last else None}


def feed_json(feed: Feed) -> dict[str, Any]:
    published = db.session.get(FeedBuild, feed.published_build_id) if feed.published_build_id else None
    last = db.session.scalar(sa.select(FeedBuild).where(FeedBuild.feed_id == feed.id).order_by(FeedBuild.id.desc()))
    return {"id": feed.id, "name": feed.name, "slug": feed.slug, "format": feed.format,
            "source_ids": [s.id for s in feed.sources], "rules": feed.rules, "field_overrides": feed.field_overrides,
            "basic_auth": {"username": feed.basic_auth_username} if feed.basic_auth_username else None,
            "gzip": feed.gzip, "max_loss_share": feed.max_loss_share, "url": feed_url(feed),
            "part_urls": [feed_url(feed, name) for name in part_names(feed)],
            "published_build": build_json(published) if published else None,
            "last_build": build_json(last) if last else None, "fetch": fetch_stats(feed.id)}


def preview(fmt: str, source_ids: list[int], rules: list[dict[str, Any]], overrides: dict[str, str],
            tmpdir: Path, limit: int = 5) -> dict[str, Any]:
    """The first items rendered in the chosen format, and how many products the rules keep/drop."""
    from feeds.rules import compile_rules

    keep = compile_rules(rules)
    kept = dropped = 0
    sample: list[dict[str, Any]] = []
    from webapp.models import Product
    from webapp.services.publishing.builds import PRODUCT_COLUMNS

    query = sa.select(*PRODUCT_COLUMNS).where(Product.source_id.in_(source_ids)) if source_ids else None
    if query is not None:
        for row in db.session.execute(query.execution_options(yield_per=5000)):
            item = dict(row._mapping)
            if keep(item):
                kept += 1
                if len(sample) < limit:
                    sample.append(item)
            else:
                dropped += 1
    result = write_feed(fmt, sample, tmpdir, basename="preview", overrides=overrides or None,
                        channel={"title": "Preview", "link": "https://example.invalid", "description": "Preview"})
    text = "".join(part.path.read_text(encoding="utf-8") for part in result.parts)
    return {"kept": kept, "dropped": dropped, "text": text[:20000], "report": result.report,
            "items_skipped": result.items_skipped}

