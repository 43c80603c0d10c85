"""POST /api/v1/checkouts: a server-side Started Checkout (becomes Abandoned Checkout without an order)."""

from __future__ import annotations

from flask import current_app, jsonify

from webapp.api import bp
from webapp.api.common import json_body, validate
from webapp.schemas.canonical.checkouts import CanonicalCheckout
from webapp.schemas.canonical.input_warnings import clean_canonical
from webapp.security import api_key_required
from webapp.services.orders.checkouts import record_checkout


@bp.post("/checkouts")
@api_key_required
def post_checkout():  # noqa: ANN201
    incoming = validate(CanonicalCheckout, json_body())
    # Between validation and storage: non-web links dropped, phones in E.164; the warnings say what was not used.
    warnings = clean_canonical(incoming, current_app.config.get("DEFAULT_PHONE_REGION"))
    checkout, created = record_checkout(incoming)
    return jsonify(id=checkout.external_id, result="created" if created else "updated",
                   **({"warnings": warnings} if warnings else {})), 202
