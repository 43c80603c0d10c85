"""POST /api/v1/events/<id>/retry and POST /api/v1/orders/<id>/replay."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from webapp.api import bp
from webapp.api.common import json_body, not_found, validate
from webapp.extensions import db
from webapp.models import Event, Order
from webapp.schemas.errors import ApiError, problem
from webapp.schemas.replays import OrderReplayRequest
from webapp.security import api_key_required
from webapp.services.delivery import retries as delivery_ops
from webapp.services.orders.views import event_json


@bp.post("/events/<int:event_id>/retry")
@api_key_required
def retry_event(event_id: int):  # noqa: ANN201
    event = db.session.get(Event, event_id)
    if event is None:
        raise not_found(f"event {event_id}")
    try:
        delivery_ops.retry_event(event)
    except ValueError as exc:
        raise ApiError(409, [problem([], str(exc))]) from None
    return jsonify(event_json(event))


@bp.post("/orders/<path:order_id>/replay")
@api_key_required
def replay_order(order_id: str):  # noqa: ANN201
    """Body: {"destination_id": N, "new_unique_ids": false}."""
    body = validate(OrderReplayRequest, json_body())
    order = db.session.scalar(sa.select(Order).where(Order.external_id == order_id))
    if order is None:
        raise not_found(f"order {order_id!r}")
    try:
        count = delivery_ops.replay_order(order, body.destination_id, new_unique_ids=body.new_unique_ids)
    except ValueError as exc:
        raise ApiError(409, [problem([], str(exc))]) from None
    return jsonify(replayed=count), 202
