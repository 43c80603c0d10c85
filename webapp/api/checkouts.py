"""POST /api/v1/checkouts: a server-side Started Checkout (becomes Abandoned Checkout without an order)."""

from __future__ import annotations

from flask import jsonify

from webapp.api import bp
from webapp.api.common import json_body, validate
from webapp.schemas.checkouts import CanonicalCheckout
from webapp.security import api_key_required
from webapp.services.orders.checkouts import record_checkout


@bp.post("/checkouts")
@api_key_required
def post_checkout():  # noqa: ANN201
    checkout, created = record_checkout(validate(CanonicalCheckout, json_body()))
    return jsonify(id=checkout.external_id, result="created" if created else "updated"), 202
