"""The demo store: believable data in every area, idempotent, and its deliveries really go out."""

import sqlalchemy as sa

from webapp.models import Contact, Destination, Event, Feed, Order, Product
from webapp.services.demo import seed_demo


def test_seed_fills_every_area_once(app, db, client, worker):
    summary = seed_demo("http://localhost")
    assert "18 products" in summary
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Product)) == 18
    feeds = db.session.scalars(sa.select(Feed)).all()
    assert len(feeds) == 2 and all(f.published_build_id for f in feeds)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 70
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact).where(
        Contact.rfm_segment.is_not(None))) > 5
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.historical)) > 0
    assert db.session.scalars(sa.select(Destination)).one().kind == "webhook"
    assert seed_demo("http://localhost") == "already seeded"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 70
    assert client.post("/demo/webhook-sink", json={}).status_code == 200


def test_demo_orders_never_happen_in_the_future():
    import random
    from datetime import UTC, datetime

    from webapp.services.demo import _orders

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    orders = _orders(random.Random(7), now)
    stamps = [(o["id"], key, o[key]) for o in orders
              for key in ("placed_at", "fulfilled_at", "cancelled_at", "refunded_at") if key in o]
    assert [s for s in stamps if datetime.fromisoformat(s[2]) > now] == []
    assert not [o["id"] for o in orders if o["status"] == "cancelled" and "fulfilled_at" in o]
    for order in orders:
        assert order["placed_at"] <= order.get("fulfilled_at", order["placed_at"]) <= order.get(
            "refunded_at", "9999")
