"""The four steps from an empty instance to events flowing; the overview shows them until all are done."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Destination, Feed, Order, Source


@dataclass(frozen=True)
class SetupStep:
    title: str
    text: str
    url: str
    action: str
    done: bool


def _exists(query: sa.Select) -> bool:
    return db.session.scalar(query.limit(1)) is not None


def setup_steps() -> list[SetupStep]:
    """Each check is an EXISTS-style look-up (LIMIT 1), cheap on any table size."""
    return [
        SetupStep("Add a source", "Point shoprelay at your product export (URL, file upload or API push).",
                  "/sources/", "Add a source", _exists(sa.select(Source.id))),
        SetupStep("Publish a feed", "Choose a format and the products; the platform fetches its stable URL.",
                  "/feeds/", "Create a feed", _exists(sa.select(Feed.id).where(Feed.published_build_id.is_not(None)))),
        SetupStep("Connect a destination", "Klaviyo, Sendlane, eSputnik or a webhook receives the order events.",
                  "/destinations/", "Connect a destination", _exists(sa.select(Destination.id))),
        SetupStep("Create an API key and send orders", "Your store posts orders to /api/v1/orders with the key.",
                  "/settings/#api-keys", "Create an API key", _exists(sa.select(Order.id))),
    ]


def is_empty_instance(steps: list[SetupStep]) -> bool:
    """Nothing set up yet: the overview shows only the welcome panel (there is nothing to chart)."""
    return not any(step.done for step in steps)
