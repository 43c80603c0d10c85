"""/api/v1/back-in-stock: a shopper waiting for a sold-out variant (Klaviyo's back-in-stock subscription)."""

from __future__ import annotations

from flask import jsonify

from webapp.api import bp
from webapp.api.common import json_body, state_conflicts, validate
from webapp.schemas.canonical.back_in_stock import BackInStockRequest
from webapp.schemas.errors import ApiError, problem
from webapp.security import api_key_required
from webapp.services.platform_catalogs.back_in_stock import subscribe, subscription_json


@bp.post("/back-in-stock")
@api_key_required
def back_in_stock():  # noqa: ANN201
    data = validate(BackInStockRequest, json_body())
    if data.problems():  # the body's own shape: 422
        raise ApiError(422, [problem([field], why) for field, why in data.problems()])
    with state_conflicts("sku", "product_id"):  # no product in the catalog has it (yet)
        subscription, warnings = subscribe(data)
    body = subscription_json(subscription)
    if warnings:
        body["warnings"] = warnings
    return jsonify(body), 202
