"""`shoprelay up --demo`: a small, believable store so a new user sees a living dashboard at once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Source
from webapp.schemas.canonical.orders import parse_orders_payload
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.destinations import DestinationCreate
from webapp.schemas.feeds import FeedCreate
from webapp.services.catalog.product_push import apply_push
from webapp.services.contacts.rfm import refresh_rfm
from webapp.services.delivery.destinations import create_destination
from webapp.services.orders.ingest import ingest_orders
from webapp.services.publishing.builds import BuildAlreadyRunning, request_build, run_build
from webapp.services.publishing.feeds import create_feed

CATALOG = [
    ("Ceramic mug", "Kitchen", "Northfield", 14), ("Espresso cup set", "Kitchen", "Northfield", 29),
    ("Linen apron", "Kitchen", "Hearth & Co", 35), ("Cast iron pan", "Kitchen", "Hearth & Co", 59),
    ("Wool throw", "Home", "Loomworks", 89), ("Scented candle", "Home", "Wick Lane", 19),
    ("Oak serving board", "Kitchen", "Northfield", 45), ("Glass carafe", "Kitchen", "Clearwater", 24),
    ("Cotton tote", "Accessories", "Loomworks", 16), ("Leather notebook", "Stationery", "Inkwell", 32),
    ("Fountain pen", "Stationery", "Inkwell", 48), ("Desk lamp", "Home", "Lumen", 79),
    ("Plant pot", "Garden", "Terra", 22), ("Watering can", "Garden", "Terra", 27),
    ("Herb seeds kit", "Garden", "Terra", 12), ("Tea sampler", "Pantry", "Leafhouse", 21),
    ("Dark chocolate bar", "Pantry", "Cocoa Mill", 6), ("Honey jar", "Pantry", "Beeline", 11),
]
FIRST = ["Ava", "Liam", "Mia", "Noah", "Zoe", "Ethan", "Iris", "Lucas", "Nora", "Owen", "Ruby", "Theo",
         "Lena", "Omar", "Sofia", "Hugo", "Maya", "Felix", "Chloe", "Arlo"]
LAST = ["Reed", "Patel", "Nguyen", "Garcia", "Kowalski", "Haddad", "Moreau", "Silva", "Kim", "Brennan"]
DEMO_SOURCE = "Demo store catalog"


def seed_demo(base_url: str = "http://127.0.0.1:8000", now: datetime | None = None) -> str:
    """Idempotent: a second `up --demo` finds the demo store and leaves it alone."""
    if db.session.scalar(sa.select(Source.id).where(Source.name == DEMO_SOURCE)):
        return "already seeded"
    rng = random.Random(7)
    now = now or datetime.now(UTC)
    run, _ = apply_push(ProductPush(upserts=[{
        "external_id": f"SKU-{i:03}", "title": title, "description": f"{title} by {brand}. Made to last.",
        "link": f"https://demo-shop.example/p/{i}", "image_link": f"https://demo-shop.example/i/{i}.jpg",
        "price": price, "currency": "USD", "brand": brand, "categories": [category],
        "inventory_quantity": rng.choice([0, 3, 12, 40]), "sku": f"SKU-{i:03}"}
        for i, (title, category, brand, price) in enumerate(CATALOG, start=1)]))
    source = db.session.get(Source, run.source_id)
    source.name = DEMO_SOURCE
    db.session.commit()
    for fmt, slug in (("klaviyo_xml", "klaviyo"), ("google_rss", "google")):
        feed = create_feed(FeedCreate(name=f"Demo {fmt.replace('_', ' ')}", slug=f"demo-{slug}", format=fmt,
                                      source_ids=[source.id]))
        try:
            build = request_build(feed, trigger="demo", enqueue=False)
        except BuildAlreadyRunning as exc:
            build = exc.build
        run_build(build.id)
    create_destination(DestinationCreate(
        name="Demo webhook receiver", kind="webhook",
        credentials={"url": f"{base_url.rstrip('/')}/demo/webhook-sink", "secret": "demo-secret-not-for-production"}))
    orders = _orders(rng, now)
    old = [o for o in orders if o["placed_at"] < (now - timedelta(days=14)).isoformat()]
    recent = [o for o in orders if o not in old]
    ingest_orders(parse_orders_payload({"orders": old}), historical=True)
    for start in range(0, len(recent), 50):
        ingest_orders(parse_orders_payload({"orders": recent[start:start + 50]}))
    refresh_rfm(now)
    return f"{len(CATALOG)} products, 2 feeds, 1 destination, {len(orders)} orders"


def _orders(rng: random.Random, now: datetime) -> list[dict]:
    customers = [(f"{FIRST[i]} {LAST[i % len(LAST)]}", f"c-{100 + i}") for i in range(len(FIRST))]
    orders = []
    for n in range(70):
        name, customer_id = rng.choice(customers[: 8 + n % 12])
        first, last = name.split()
        placed = now - timedelta(days=rng.uniform(0, 90), hours=rng.uniform(0, 23))
        lines = rng.sample(list(enumerate(CATALOG, start=1)), rng.randint(1, 3))
        items = [{"product_id": str(i), "sku": f"SKU-{i:03}", "name": title, "quantity": (q := rng.randint(1, 2)),
                  "price": price, "total": price * q, "url": f"https://demo-shop.example/p/{i}",
                  "image_url": f"https://demo-shop.example/i/{i}.jpg", "categories": [category], "brand": brand}
                 for i, (title, category, brand, price) in lines]
        total = float(sum(Decimal(str(item["total"])) for item in items))
        status = rng.choices(["placed", "fulfilled", "cancelled", "refunded", "partially_refunded"],
                             [3, 10, 1, 1, 1])[0]
        order = {"id": f"D{1000 + n}", "status": status, "placed_at": placed.isoformat(), "currency": "USD",
                 "total": total, "subtotal": total, "tax": 0, "shipping": 0,
                 "customer": {"id": customer_id, "email": f"{first.lower()}.{last.lower()}@example.com",
                              "first_name": first, "last_name": last, "accepts_marketing": n % 3 != 0},
                 "billing_address": {"first_name": first, "last_name": last, "city": "Boston", "country_code": "US"},
                 "items": items}
        # Every later step happens before now: a recent order moves through its states faster.
        later = placed + min(timedelta(days=2), (now - placed) / 2)
        if status in ("fulfilled", "refunded", "partially_refunded"):
            order["fulfilled_at"] = later.isoformat()
        if status == "cancelled":
            order["cancelled_at"], order["reason"] = later.isoformat(), "customer changed their mind"
        if status in ("refunded", "partially_refunded"):
            order["refunded_at"] = (later + min(timedelta(days=5), (now - later) / 2)).isoformat()
            order["refunded_amount"] = round(total / 2, 2) if status == "partially_refunded" else total
            order["reason"] = "arrived damaged"
        orders.append(order)
    return orders
