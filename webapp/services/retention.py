"""Retention: delivered traffic is pruned (bodies after 30 days, rows after 180); failures stay until resolved."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import DeliveryAttempt, DeliveryRequest, FeedFetch, utcnow


def prune(now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    body_cutoff = now - timedelta(days=current_app.config["RETENTION_BODY_DAYS"])
    row_cutoff = now - timedelta(days=current_app.config["RETENTION_ROW_DAYS"])
    bodies = db.session.execute(
        sa.update(DeliveryRequest)
        .where(DeliveryRequest.outcome == "delivered", DeliveryRequest.started_at < body_cutoff,
               DeliveryRequest.request_body.is_not(None))
        .values(request_body=None, response_body=None)).rowcount
    attempts = db.session.execute(sa.delete(DeliveryAttempt).where(
        DeliveryAttempt.outcome == "delivered", DeliveryAttempt.attempted_at < row_cutoff)).rowcount
    requests = db.session.execute(sa.delete(DeliveryRequest).where(
        DeliveryRequest.outcome == "delivered", DeliveryRequest.started_at < row_cutoff)).rowcount
    fetches = db.session.execute(sa.delete(FeedFetch).where(FeedFetch.fetched_at < row_cutoff)).rowcount
    db.session.commit()
    return {"bodies_pruned": bodies, "attempts_deleted": attempts, "requests_deleted": requests,
            "feed_fetches_deleted": fetches}
