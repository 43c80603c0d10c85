"""/api/v1/feeds: create / list / get / update / delete, POST /<id>/build, GET /api/v1/feed-builds/<id>."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from webapp.api import bp
from webapp.api.common import json_body, not_found, state_conflicts, validate
from webapp.extensions import db
from webapp.models import Feed, FeedBuild
from webapp.schemas.feeds import FeedCreate, FeedUpdate
from webapp.security import api_key_required
from webapp.services.publishing.builds import BuildAlreadyRunning, request_build
from webapp.services.publishing.feeds import (
    build_json,
    create_feed,
    delete_feed,
    feed_json,
    rotate_token,
    update_feed,
)


def _get(feed_id: int) -> Feed:
    feed = db.session.get(Feed, feed_id)
    if feed is None:
        raise not_found(f"feed {feed_id}")
    return feed


@bp.get("/feeds")
@api_key_required
def list_feeds():  # noqa: ANN201
    return jsonify(feeds=[feed_json(f) for f in db.session.scalars(sa.select(Feed).order_by(Feed.id))])


@bp.post("/feeds")
@api_key_required
def create_feed_view():  # noqa: ANN201
    data = validate(FeedCreate, json_body())
    with state_conflicts("source_ids", "slug"):
        return jsonify(feed_json(create_feed(data))), 201


@bp.get("/feeds/<int:feed_id>")
@api_key_required
def get_feed(feed_id: int):  # noqa: ANN201
    return jsonify(feed_json(_get(feed_id)))


@bp.patch("/feeds/<int:feed_id>")
@api_key_required
def update_feed_view(feed_id: int):  # noqa: ANN201
    feed, data = _get(feed_id), validate(FeedUpdate, json_body())
    with state_conflicts("source_ids", "slug"):
        return jsonify(feed_json(update_feed(feed, data)))


@bp.delete("/feeds/<int:feed_id>")
@api_key_required
def delete_feed_view(feed_id: int):  # noqa: ANN201
    delete_feed(_get(feed_id))
    return "", 204


@bp.post("/feeds/<int:feed_id>/build")
@api_key_required
def build_feed(feed_id: int):  # noqa: ANN201
    try:
        build = request_build(_get(feed_id), trigger="api")
    except BuildAlreadyRunning as exc:
        return jsonify(errors=[{"path": "", "message": str(exc)}], build=build_json(exc.build)), 409
    return jsonify(build_json(build)), 202


@bp.post("/feeds/<int:feed_id>/rotate-token")
@api_key_required
def rotate(feed_id: int):  # noqa: ANN201
    feed = _get(feed_id)
    rotate_token(feed)
    return jsonify(feed_json(feed))


@bp.get("/feed-builds/<int:build_id>")
@api_key_required
def get_build(build_id: int):  # noqa: ANN201
    build = db.session.get(FeedBuild, build_id)
    if build is None:
        raise not_found(f"feed build {build_id}")
    return jsonify(build_json(build))
