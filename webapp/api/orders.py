"""POST /api/v1/orders (ingest), GET /api/v1/orders/<id> (the order and its delivery per destination)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from webapp.api import bp
from webapp.api.common import flag, json_body, not_found
from webapp.extensions import db
from webapp.models import Order
from webapp.schemas.orders import parse_orders_payload
from webapp.security import api_key_required
from webapp.services.orders.ingest import ingest_orders
from webapp.services.orders.views import order_json


@bp.post("/orders")
@api_key_required
def post_orders():  # noqa: ANN201
    """Upsert one order or {"orders": [...]} (≤ 1000); ?historical=1 marks a backfill."""
    orders = parse_orders_payload(json_body())
    results = ingest_orders(orders, historical=flag("historical"))
    return jsonify(accepted=len(results), results=[r.as_json() for r in results]), 202


@bp.get("/orders/<path:order_id>")
@api_key_required
def get_order(order_id: str):  # noqa: ANN201
    order = db.session.scalar(sa.select(Order).where(Order.external_id == order_id))
    if order is None:
        raise not_found(f"order {order_id!r}")
    return jsonify(order_json(order))
