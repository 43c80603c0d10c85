"""Serving published feed files: which file a URL means, basic auth, and the fetch log.

A platform polls its feed URL, mostly with a conditional GET answered 304, so this path stays cheap:
one Core query finds the feed and its published build together, and the fetch log is one Core INSERT
(no ORM objects, no unit of work) committed with the request.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from werkzeug.datastructures import Accept

from webapp.extensions import db
from webapp.models import Feed, FeedBuild, FeedFetch, utcnow
from webapp.services.platform.crypto import decrypt_json


@dataclass(frozen=True, slots=True)
class FeedTarget:
    """The few feed columns serving needs (no ORM object: this runs for every platform poll)."""

    id: int
    format: str
    basic_auth_username: str | None
    basic_auth_password_encrypted: str | None


@dataclass(frozen=True, slots=True)
class ServedFile:
    path: Path
    sha256: str
    gz_path: Path | None
    finished_at: datetime


_RESOLVE = (sa.select(Feed.id, Feed.format, Feed.basic_auth_username, Feed.basic_auth_password_encrypted,
                      FeedBuild.directory, FeedBuild.parts, FeedBuild.finished_at)
            .outerjoin(FeedBuild, FeedBuild.id == Feed.published_build_id))


def resolve(token: str, filename: str) -> tuple[FeedTarget | None, ServedFile | None]:
    """The feed for a token and its published part named `filename` (None when not published), in one query."""
    row = db.session.execute(_RESOLVE.where(Feed.token == token)).first()
    if row is None:
        return None, None
    feed = FeedTarget(row.id, row.format, row.basic_auth_username, row.basic_auth_password_encrypted)
    if not row.directory or row.finished_at is None:
        return feed, None
    for part in row.parts or ():
        if part["name"] == filename:
            path = Path(row.directory) / filename
            gz = path.with_name(filename + ".gz")
            return feed, ServedFile(path, part["sha256"], gz if gz.exists() else None, row.finished_at)
    return feed, None


def check_basic_auth(feed: FeedTarget | Feed, username: str | None, password: str | None) -> bool:
    """Constant-time comparison of both parts (no early exit on a wrong username)."""
    if not feed.basic_auth_username:
        return True
    expected = decrypt_json(feed.basic_auth_password_encrypted).get("password", "")
    user_ok = hmac.compare_digest((username or "").encode(), feed.basic_auth_username.encode())
    password_ok = hmac.compare_digest((password or "").encode(), expected.encode())
    return user_ok and password_ok


# An identity the client does not mention is acceptable (RFC 9110 §12.5.3) but its last choice.
_UNLISTED_IDENTITY = 0.001


def coding_quality(accept: Accept, coding: str) -> float:
    """The q-value a parsed Accept-Encoding gives `coding`: its own entry first, else `*`, else 0 (identity:
    acceptable unless refused). werkzeug's `quality()` takes the first match, which may be `*` before an
    explicit `gzip;q=0`, so the RFC's rule is applied here on werkzeug's parsed (value, q) pairs."""
    names = {coding, "x-gzip"} if coding == "gzip" else {coding}  # x-gzip is gzip (RFC 9110 §8.4.1.3)
    wildcard = None
    for value, quality in accept:
        if value.lower() in names:
            return float(quality)
        if value == "*":
            wildcard = float(quality)
    if wildcard is not None:
        return wildcard
    return _UNLISTED_IDENTITY if coding == "identity" else 0.0


def choose_encoding(accept: Accept, gzip_available: bool) -> str | None:
    """'gzip' or 'identity' by the client's q-values (a tie goes to gzip, the smaller), None when neither is
    acceptable (`identity;q=0` or `*;q=0` with no gzip to offer). No header at all: the plain file."""
    if not accept:
        return "identity"
    offers = [("gzip", coding_quality(accept, "gzip"))] if gzip_available else []
    offers.append(("identity", coding_quality(accept, "identity")))
    acceptable = [(quality, coding == "gzip", coding) for coding, quality in offers if quality > 0]
    return max(acceptable)[2] if acceptable else None


_LOG_FETCH = sa.insert(FeedFetch.__table__)


def log_fetch(feed_id: int, path: str, method: str, status: int, size: int, user_agent: str | None,
              ip: str | None) -> None:
    """Record one fetch (every one: it is the proof the platform picked the feed up) with a single INSERT."""
    db.session.execute(_LOG_FETCH, {
        "feed_id": feed_id, "fetched_at": utcnow(), "path": path[:255], "method": method, "status": status,
        "bytes": size, "user_agent": (user_agent or "")[:512] or None, "ip": (ip or "")[:64] or None})
    db.session.commit()
