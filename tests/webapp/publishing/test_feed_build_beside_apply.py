"""A feed build never publishes a source that is half applied: it waits while a sync applies its changes, and a
build whose read overlapped an apply is not published (the sync's end asks for the next build)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import Feed, FeedBuild, SyncRun, utcnow
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.feeds import FeedCreate
from webapp.services.catalog.product_push import apply_push
from webapp.services.publishing.builds import request_build, run_build
from webapp.services.publishing.feeds import create_feed


def _feed(db):  # noqa: ANN001, ANN202
    run, _ = apply_push(ProductPush(upserts=[{"external_id": f"P{i}", "title": f"Product {i}",
                                              "link": f"https://s.example/p/{i}", "price": 10,
                                              "image_link": f"https://s.example/i/{i}.png"} for i in range(3)]))
    feed = create_feed(FeedCreate(name="F", slug="f", format="klaviyo_json", source_ids=[run.source_id]))
    db.session.execute(sa.delete(FeedBuild))
    db.session.commit()
    return feed, run.source_id


def _apply(db, source_id: int, **fields) -> SyncRun:  # noqa: ANN001
    run = SyncRun(source_id=source_id, trigger="manual", problems=[], added=1, started_at=utcnow(), **fields)
    db.session.add(run)
    db.session.commit()
    return run


@both_databases
def test_a_build_whose_read_overlapped_an_apply_is_not_published(app, db) -> None:  # noqa: ANN001
    feed, source_id = _feed(db)
    # an apply that began after the build started reading (here: stamped later than the build's start)
    _apply(db, source_id, status="succeeded", phase="applied", apply_started_at=utcnow() + timedelta(hours=1))
    build = run_build(request_build(feed, enqueue=False).id)
    assert build.status == "failed" and "not published" in build.error
    assert db.session.get(Feed, feed.id).published_build_id is None
