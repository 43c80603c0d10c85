"""/api/v1: the store's and operators' JSON API (Bearer API key, pydantic-validated, one error shape)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from webapp.extensions import csrf
from webapp.schemas.errors import ApiError
from webapp.security import api_key_required

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):  # noqa: ANN202
    return jsonify(exc.to_json()), exc.status


@bp.get("/ping")
@api_key_required
def ping():  # noqa: ANN201
    """Cheap authenticated call so a store can check its key."""
    return jsonify(ok=True)


# Importing the modules registers their routes on `bp`.
from webapp.api import (  # noqa: E402, F401
    alerts,
    back_in_stock,
    checkouts,
    contacts,
    destinations,
    erasures,
    events,
    feeds,
    openapi,
    orders,
    sources,
)
