"""Back in stock: shoppers waiting for a variant, handed to Klaviyo's back-in-stock API (Klaviyo then notifies
them itself when the variant's inventory returns), and one `back_in_stock` event per subscriber to webhook
destinations when a sync brings the inventory back above zero.

A Klaviyo subscription names a catalog variant, so it goes out once Klaviyo holds that variant (the ledger
says so): at once when it does, else at the end of the reconcile that creates it. Both events travel through
the outbox (retries, logs, one row per subscription and destination).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import BackInStockSubscription, CatalogEntry, Destination, Product, utcnow
from webapp.schemas.canonical.back_in_stock import BackInStockRequest
from webapp.schemas.errors import ApiError, problem
from webapp.services.orders.outbox import NewEvent, Target, write_events
from webapp.services.platform_catalogs import runs

SUBSCRIBE = "back_in_stock_subscription"
RESTOCKED = "back_in_stock"
PAGE = 1000


def _product(body: BackInStockRequest) -> Product:
    column, value, field = ((Product.sku, body.sku, "sku") if body.sku else
                            (Product.external_id, body.product_id, "product_id"))
    found = db.session.scalars(sa.select(Product).where(column == value).order_by(Product.id).limit(1)).first()
    if found is None:
        raise ApiError(422, [problem([field], f"no product in the catalog has this {field.replace('_', ' ')}")])
    return found


def subscribe(body: BackInStockRequest, origin: str = "api") -> tuple[BackInStockSubscription, list[dict[str, str]]]:
    """Keep the subscription (the same person waiting for the same product again is the same one) and send it
    to every Klaviyo catalog that holds the variant."""
    problems = body.problems()
    if problems:
        raise ApiError(422, [problem([field], why) for field, why in problems])
    product = _product(body)
    who = (BackInStockSubscription.email == body.email if body.email else
           BackInStockSubscription.phone == body.phone)  # one person: by email, else by phone
    existing = db.session.scalars(sa.select(BackInStockSubscription).where(
        BackInStockSubscription.source_id == product.source_id,
        BackInStockSubscription.product_external_id == product.external_id,
        BackInStockSubscription.restocked_at.is_(None), who).order_by(BackInStockSubscription.id).limit(1)).first()
    subscription = existing or BackInStockSubscription(
        source_id=product.source_id, product_external_id=product.external_id, sku=product.sku, email=body.email,
        phone=body.phone, channels=list(body.channels or []), origin=origin,
        last_quantity=product.inventory_quantity)
    if existing is not None:
        existing.channels = sorted(set(existing.channels or []) | set(body.channels or []))
        existing.phone = body.phone or existing.phone
    db.session.add(subscription)
    db.session.flush()
    warnings = []
    if (product.inventory_quantity or 0) > 0:
        warnings.append({"path": body.sku and "sku" or "product_id",
                         "message": f"in stock now ({product.inventory_quantity}): the shopper is told when it "
                                    "comes back after selling out"})
    waiting = [destination.id for destination in _klaviyo_catalogs() if not _variant_held(destination.id, product)]
    if waiting:
        warnings.append({"path": body.sku and "sku" or "product_id",
                         "message": "not in Klaviyo's catalog yet: the subscription goes to Klaviyo once its next "
                                    "reconcile has created the variant"})
    touched = _send_to_klaviyo([subscription])
    db.session.commit()
    _signal(touched)
    return subscription, warnings


def _klaviyo_catalogs() -> list[Destination]:
    return [destination for destination in runs.catalog_destinations()
            if _takes(destination, SUBSCRIBE)]


def _takes(destination: Destination, name: str) -> bool:
    from workers.destinations import get_adapter_class

    supported = get_adapter_class(destination.kind).supported_events
    return name in supported and (not destination.events or name in destination.events or name == SUBSCRIBE)


def _variant_held(destination_id: int, product: Product) -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CatalogEntry).where(
        CatalogEntry.destination_id == destination_id, CatalogEntry.kind == "variant",
        CatalogEntry.external_id == product.external_id, CatalogEntry.confirmed_digest.is_not(None))) > 0


def _payload(subscription: BackInStockSubscription, product: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"subscription": {"id": subscription.id, "email": subscription.email, "phone": subscription.phone,
                             "channels": subscription.channels, "sku": subscription.sku,
                             "product_id": subscription.product_external_id,
                             "created_at": subscription.created_at.isoformat() if subscription.created_at else None},
            **({"product": product} if product else {})}


def _send_to_klaviyo(subscriptions: list[BackInStockSubscription]) -> set[int]:
    """Subscription events for each Klaviyo catalog that holds the variant (a repeat writes nothing)."""
    touched: set[int] = set()
    for destination in _klaviyo_catalogs():
        held = set(db.session.scalars(sa.select(CatalogEntry.external_id).where(
            CatalogEntry.destination_id == destination.id, CatalogEntry.kind == "variant",
            CatalogEntry.confirmed_digest.is_not(None),
            CatalogEntry.external_id.in_({s.product_external_id for s in subscriptions}))).all())
        events = [NewEvent(SUBSCRIBE, f"bis:{s.id}", _payload(s), s.created_at or utcnow())
                  for s in subscriptions if s.product_external_id in held]
        touched |= write_events(events, [Target(destination.id, destination.mode, frozenset({SUBSCRIBE}))])
    return touched


def _waiting_pages() -> Iterator[list[BackInStockSubscription]]:
    """Subscriptions still waiting for their product, a page at a time (each page's writes are committed)."""
    last = 0
    while True:
        page = list(db.session.scalars(sa.select(BackInStockSubscription).where(
            BackInStockSubscription.restocked_at.is_(None), BackInStockSubscription.id > last)
            .order_by(BackInStockSubscription.id).limit(PAGE)).all())
        if not page:
            return
        last = page[-1].id
        yield page


def release_waiting(destination_id: int) -> int:
    """After a reconcile: subscriptions waiting for a variant this catalog now holds go out."""
    destination = db.session.get(Destination, destination_id)
    if destination is None or not _takes(destination, SUBSCRIBE):
        return 0
    sent = 0
    for page in _waiting_pages():
        sent += len(_send_to_klaviyo(page))
        db.session.commit()
    _signal({destination_id} if sent else set())
    return sent


def check_restocks() -> int:
    """After a sync: each waiting subscription whose product went from ≤ 0 to > 0 gives one `back_in_stock`
    event to the webhook destinations that take it; the inventory seen is kept for the next sync."""
    targets = [Target(d.id, d.mode, frozenset({RESTOCKED})) for d in db.session.scalars(
        sa.select(Destination).where(Destination.enabled)).all() if _takes(d, RESTOCKED)]
    from webapp.services.catalog.changes import product_json

    restocked = 0
    touched: set[int] = set()
    for page in _waiting_pages():
        products = {(p.source_id, p.external_id): p for p in db.session.scalars(sa.select(Product).where(
            Product.external_id.in_({s.product_external_id for s in page}))).all()}
        events = []
        for subscription in page:
            product = products.get((subscription.source_id, subscription.product_external_id))
            quantity = product.inventory_quantity if product is not None else None
            if quantity is None:
                continue
            if quantity > 0 and (subscription.last_quantity is not None and subscription.last_quantity <= 0):
                subscription.restocked_at = utcnow()
                events.append(NewEvent(RESTOCKED, f"bis:{subscription.id}",
                                       _payload(subscription, product_json(product)), subscription.restocked_at))
                restocked += 1
            subscription.last_quantity = quantity
        touched |= write_events(events, targets)
        db.session.commit()
    _signal(touched)
    return restocked


def subscription_json(subscription: BackInStockSubscription) -> dict[str, Any]:
    from webapp.services.platform.jsonutil import iso

    return {"id": subscription.id, "email": subscription.email, "phone": subscription.phone,
            "channels": subscription.channels, "sku": subscription.sku,
            "product_id": subscription.product_external_id, "source_id": subscription.source_id,
            "origin": subscription.origin, "created_at": iso(subscription.created_at),
            "restocked_at": iso(subscription.restocked_at)}


def waiting_for(product: Product) -> list[BackInStockSubscription]:
    """The product page's list: who waits for it, newest first."""
    return list(db.session.scalars(sa.select(BackInStockSubscription).where(
        BackInStockSubscription.source_id == product.source_id,
        BackInStockSubscription.product_external_id == product.external_id,
        BackInStockSubscription.restocked_at.is_(None)).order_by(BackInStockSubscription.id.desc()).limit(200)).all())


def _signal(destination_ids: set[int]) -> None:
    if not destination_ids:
        return
    from webapp.services.orders.ingest import signal_destinations

    targets = [Target(destination_id, "realtime", frozenset()) for destination_id in destination_ids]
    signal_destinations(destination_ids, targets)
