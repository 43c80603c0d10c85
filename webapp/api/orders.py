"""POST /api/v1/orders (ingest), GET /api/v1/orders/<id> (the order and its delivery per destination)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, jsonify

from webapp.api import bp
from webapp.api.common import flag, json_body, not_found
from webapp.extensions import db
from webapp.models import Order
from webapp.schemas.canonical.input_warnings import clean_canonical
from webapp.schemas.canonical.orders import parse_orders_payload
from webapp.security import api_key_required
from webapp.services.orders.ingest import ingest_orders
from webapp.services.orders.views import order_json


@bp.post("/orders")
@api_key_required
def post_orders():  # noqa: ANN201
    """Upsert one order or {"orders": [...]} (≤ 1000); ?historical=1 marks a backfill."""
    body = json_body()
    orders = parse_orders_payload(body)
    batch = isinstance(body, dict) and "orders" in body
    region = current_app.config.get("DEFAULT_PHONE_REGION")
    # Between validation and ingest: non-web links dropped, phones in E.164; the order is stored all the same.
    warnings = [clean_canonical(order, region, ("orders", index) if batch else ())
                for index, order in enumerate(orders)]
    results = ingest_orders(orders, historical=flag("historical"))
    return jsonify(accepted=len(results), results=[
        result.as_json() | ({"warnings": found} if found else {}) for result, found in zip(results, warnings,
                                                                                        strict=True)]), 202


@bp.get("/orders/<order_id:order_id>")  # not ".../replay": that URL is the replay action
@api_key_required
def get_order(order_id: str):  # noqa: ANN201
    order = db.session.scalar(sa.select(Order).where(Order.external_id == order_id))
    if order is None:
        raise not_found(f"order {order_id!r}")
    return jsonify(order_json(order))
