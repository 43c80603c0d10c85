"""Onsite tracking: GET /t.js (the script) and POST /t/collect (its events; CORS-open, rate limited)."""

from __future__ import annotations

import json

import pydantic
from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

from webapp.extensions import csrf
from webapp.schemas.back_in_stock import BackInStockRequest
from webapp.schemas.errors import ApiError, error_list
from webapp.schemas.onsite import Collect
from webapp.services.orders.onsite import allowed, collect
from webapp.services.platform_catalogs.back_in_stock import subscribe

bp = Blueprint("onsite", __name__)
csrf.exempt(bp)
MAX_BODY = 16 * 1024


@bp.get("/t.js")
def script() -> Response:
    response = send_from_directory(current_app.static_folder, "t.js", mimetype="application/javascript",
                                   max_age=3600)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.route("/t/collect", methods=["POST", "OPTIONS"])
def collect_view() -> Response:
    if request.method == "OPTIONS":
        return _cors(Response(status=204))
    if (request.content_length or 0) > MAX_BODY:
        return _cors(_error(413, "body too large"))
    if not allowed(request.remote_addr or "unknown"):
        return _cors(_error(429, "too many events from this address; slow down"))
    try:
        data = json.loads(request.get_data(cache=False, as_text=True) or "null")
    except ValueError:
        return _cors(_error(400, "body must be JSON"))
    try:
        body = Collect.model_validate(data)
    except pydantic.ValidationError as exc:
        response = jsonify(errors=error_list(exc))
        response.status_code = 422
        return _cors(response)
    if body.event == "back_in_stock":
        return _cors(_back_in_stock(body))
    return _cors(jsonify(result=collect(body)), 202)


def _back_in_stock(body: Collect) -> Response:
    """`shoprelay.backInStock({...})`: the same subscription as POST /api/v1/back-in-stock (the identified
    visitor's email when the call names none)."""
    fields = {key: body.properties.get(key) for key in ("email", "phone", "sku", "product_id", "channels")
              if body.properties.get(key) is not None}
    if "email" not in fields and "phone" not in fields and body.email:
        fields["email"] = str(body.email)
    try:
        subscription, warnings = subscribe(BackInStockRequest.model_validate(fields), origin="onsite")
    except pydantic.ValidationError as exc:
        response = jsonify(errors=error_list(exc))
        response.status_code = 422
        return response
    except ApiError as exc:
        response = jsonify(exc.to_json())
        response.status_code = exc.status
        return response
    response = jsonify(result="subscribed", id=subscription.id, warnings=warnings)
    response.status_code = 202
    return response


def _error(status: int, message: str) -> Response:
    response = jsonify(errors=[{"path": "", "message": message}])
    response.status_code = status
    return response


def _cors(response: Response, status: int | None = None) -> Response:
    if status is not None:
        response.status_code = status
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response
