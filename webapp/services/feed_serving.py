"""Serving published feed files: which file a URL means, basic auth, and the fetch log."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Feed, FeedBuild, FeedFetch
from webapp.services.crypto import decrypt_json


@dataclass
class ServedFile:
    feed: Feed
    build: FeedBuild
    path: Path
    sha256: str
    gz_path: Path | None


def resolve(token: str, filename: str) -> tuple[Feed | None, ServedFile | None]:
    """The feed for a token and the published part named `filename` (None when not published)."""
    feed = db.session.scalar(sa.select(Feed).where(Feed.token == token))
    if feed is None or not feed.published_build_id:
        return feed, None
    build = db.session.get(FeedBuild, feed.published_build_id)
    if build is None or not build.directory:
        return feed, None
    for part in build.parts:
        if part["name"] == filename:
            path = Path(build.directory) / filename
            gz = path.with_name(filename + ".gz")
            return feed, ServedFile(feed, build, path, part["sha256"], gz if gz.exists() else None)
    return feed, None


def check_basic_auth(feed: Feed, username: str | None, password: str | None) -> bool:
    """Constant-time comparison of both parts (no early exit on a wrong username)."""
    if not feed.basic_auth_username:
        return True
    expected = decrypt_json(feed.basic_auth_password_encrypted).get("password", "")
    user_ok = hmac.compare_digest((username or "").encode(), feed.basic_auth_username.encode())
    password_ok = hmac.compare_digest((password or "").encode(), expected.encode())
    return user_ok and password_ok


def log_fetch(feed_id: int, path: str, method: str, status: int, size: int, user_agent: str | None,
              ip: str | None) -> None:
    db.session.add(FeedFetch(feed_id=feed_id, path=path[:255], method=method, status=status, bytes=size,
                             user_agent=(user_agent or "")[:512] or None, ip=(ip or "")[:64] or None))
    db.session.commit()
