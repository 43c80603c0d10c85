"""Read-side queries for the feed pages: the list, build history, fetch log and fetch counts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from feeds.writers import FEED_FORMATS
from webapp.extensions import db
from webapp.models import Feed, FeedBuild, FeedFetch, Source, utcnow
from webapp.services.publishing.builds import ACTIVE
from webapp.services.publishing.preview import skip_reason_text

FETCH_LOG_SIZE = 50
HISTORY_SIZE = 20
PRODUCTS_BROWSER = "/sources/products"
_COMPATIBLE = re.compile(r"compatible;\s*([^;)]+)", re.IGNORECASE)


@dataclass
class FeedRow:
    feed: Feed
    format_label: str
    published: FeedBuild | None
    last_build: FeedBuild | None
    last_fetch: FeedFetch | None


@dataclass
class FetchSummary:
    last: FeedFetch | None
    day: int
    week: int
    total: int


def format_label(fmt: str) -> str:
    found = FEED_FORMATS.get(fmt)
    return found.label if found else fmt


def user_agent_short(user_agent: str | None) -> str:
    """The product token people recognise: `Googlebot/2.1` from a long Mozilla-compatible string."""
    if not user_agent:
        return "unknown client"
    compatible = _COMPATIBLE.search(user_agent)
    token = compatible.group(1) if compatible else user_agent.split()[0]
    token = token.strip()
    return token if len(token) <= 40 else token[:39] + "…"


def feed_rows() -> list[FeedRow]:
    """Every feed with its published build, latest build and latest fetch (a handful of queries)."""
    feeds = db.session.scalars(sa.select(Feed).order_by(sa.func.lower(Feed.name), Feed.id)).all()
    if not feeds:
        return []
    ids = [feed.id for feed in feeds]
    published_ids = [feed.published_build_id for feed in feeds if feed.published_build_id]
    latest_ids = sa.select(sa.func.max(FeedBuild.id)).where(FeedBuild.feed_id.in_(ids)).group_by(FeedBuild.feed_id)
    builds = {build.id: build for build in db.session.scalars(sa.select(FeedBuild).where(
        sa.or_(FeedBuild.id.in_(published_ids), FeedBuild.id.in_(latest_ids))))}
    latest = {build.feed_id: build for build in sorted(builds.values(), key=lambda b: b.id)}
    newest = (sa.select(FeedFetch.feed_id, sa.func.max(FeedFetch.fetched_at).label("at"))
              .where(FeedFetch.feed_id.in_(ids)).group_by(FeedFetch.feed_id).subquery())
    fetches = {fetch.feed_id: fetch for fetch in db.session.scalars(sa.select(FeedFetch).join(
        newest, sa.and_(FeedFetch.feed_id == newest.c.feed_id, FeedFetch.fetched_at == newest.c.at)))}
    return [FeedRow(feed, format_label(feed.format), builds.get(feed.published_build_id or 0),
                    latest.get(feed.id), fetches.get(feed.id)) for feed in feeds]


def source_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Source)) or 0


def source_choices() -> list[Source]:
    return list(db.session.scalars(sa.select(Source).order_by(sa.func.lower(Source.name), Source.id)))


def build_history(feed_id: int, limit: int = HISTORY_SIZE) -> list[FeedBuild]:
    return list(db.session.scalars(sa.select(FeedBuild).where(FeedBuild.feed_id == feed_id)
                                   .order_by(FeedBuild.id.desc()).limit(limit)))


def latest_build(feed_id: int) -> FeedBuild | None:
    return db.session.scalar(sa.select(FeedBuild).where(FeedBuild.feed_id == feed_id)
                             .order_by(FeedBuild.id.desc()).limit(1))


def active_build(feed_id: int) -> FeedBuild | None:
    return db.session.scalar(sa.select(FeedBuild).where(FeedBuild.feed_id == feed_id,
                                                        FeedBuild.status.in_(ACTIVE)))


def reported_build(feed_id: int) -> FeedBuild | None:
    """The newest build that finished writing (succeeded or held): the one whose report to show."""
    return db.session.scalar(sa.select(FeedBuild).where(
        FeedBuild.feed_id == feed_id, FeedBuild.status.in_(("succeeded", "held")))
        .order_by(FeedBuild.id.desc()).limit(1))


def fetch_log(feed_id: int, limit: int = FETCH_LOG_SIZE) -> list[FeedFetch]:
    return list(db.session.scalars(sa.select(FeedFetch).where(FeedFetch.feed_id == feed_id)
                                   .order_by(FeedFetch.fetched_at.desc(), FeedFetch.id.desc()).limit(limit)))


def fetch_summary(feed_id: int, now: datetime | None = None) -> FetchSummary:
    """How often the platform picked the feed up: last 24 h, last 7 days, ever."""
    now = now or utcnow()
    count = sa.func.count(FeedFetch.id)
    day, week, total = db.session.execute(sa.select(
        count.filter(FeedFetch.fetched_at >= now - timedelta(days=1)),
        count.filter(FeedFetch.fetched_at >= now - timedelta(days=7)), count,
    ).where(FeedFetch.feed_id == feed_id)).one()
    last = db.session.scalar(sa.select(FeedFetch).where(FeedFetch.feed_id == feed_id)
                             .order_by(FeedFetch.fetched_at.desc(), FeedFetch.id.desc()).limit(1))
    return FetchSummary(last=last, day=day or 0, week=week or 0, total=total or 0)


def report_view(build: FeedBuild) -> dict[str, Any]:
    """A build's validation report arranged for the page: reasons in words, fill rates as percents."""
    report = build.report or {}
    skipped = sorted(((skip_reason_text(key), count, key) for key, count in (report.get("skipped") or {}).items()),
                     key=lambda entry: -entry[1])
    fill = [(name, round(share * 100, 1)) for name, share in (report.get("fill_rates") or {}).items()]
    issues = [issue | {"reason_text": skip_reason_text(_issue_key(issue)), "href": product_href(issue)}
              for issue in report.get("issues") or []]
    return {"skipped": skipped, "fill_rates": fill, "issues": issues, "warnings": report.get("warnings") or [],
            "issues_shown": len(issues), "skipped_total": build.items_skipped}


def _issue_key(issue: dict[str, Any]) -> str:
    reason = issue.get("reason") or ""
    return reason if reason in ("negative_price", "duplicate_id") else f"{reason}:{issue.get('field') or ''}"


def product_href(issue: dict[str, Any]) -> str:
    """The products browser searched for this product's id."""
    from urllib.parse import urlencode

    return f"{PRODUCTS_BROWSER}?{urlencode({'q': issue.get('external_id') or ''})}"


def build_duration(build: FeedBuild) -> str:
    if not build.started_at or not build.finished_at:
        return "—"
    seconds = (build.finished_at - build.started_at).total_seconds()
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
