"""Onsite tracking: GET /t.js (the script) and POST /t/collect (its events; open to the store's origins,
bot-filtered, capped per address and per visitor), and the dashboard's Onsite page (nested blueprint
`onsite.dashboard`: the snippets, signing, the platforms' own snippets)."""

from __future__ import annotations

import json
import logging

import pydantic
from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_from_directory
from flask_login import current_user

from webapp.blueprints.common import dashboard_blueprint
from webapp.extensions import csrf
from webapp.schemas.canonical.back_in_stock import BackInStockRequest
from webapp.schemas.canonical.onsite import Collect, CollectBatch, parse_collect
from webapp.schemas.errors import ApiError, error_list
from webapp.services.onsite.guard import cors_origin, is_bot, origin_allowed, over_budget
from webapp.services.orders.onsite import (
    BadSignature,
    Identity,
    claimed_identity,
    collect_many,
    identity_from,
    last_claim,
    queue_identity,
)
from webapp.services.platform_catalogs.back_in_stock import subscribe

log = logging.getLogger(__name__)
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
    origin = request.headers.get("Origin")
    if not origin_allowed(origin):
        return _refuse(403, "this origin may not send onsite events (SHOPRELAY_ONSITE_ORIGINS)", path="Origin")
    if request.method == "OPTIONS":
        return _cors(Response(status=204))
    if is_bot(request.user_agent.string):
        return _refuse(403, "bots and scripts are not tracked", path="User-Agent")
    if (request.content_length or 0) > MAX_BODY:
        return _refuse(413, f"body too large (at most {MAX_BODY} bytes)")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _refuse(413, f"body too large (at most {MAX_BODY} bytes)")
    try:
        body = parse_collect(json.loads(raw or b"null"))
    except (ValueError, pydantic.ValidationError) as exc:  # junk counts against the address's budget too
        refusal, _ = over_budget(request.remote_addr or "unknown", None)
        if refusal is not None:
            return _refuse(refusal.status, refusal.message)
        if isinstance(exc, pydantic.ValidationError):
            return _cors(_json(422, errors=error_list(exc)))
        return _refuse(400, "body must be JSON")
    events = body.events if isinstance(body, CollectBatch) else [body]
    try:
        claims = [claimed_identity(event) for event in events]
    except BadSignature as exc:
        return _refuse(403, str(exc), path="signature")
    anonymous_id = events[0].anonymous_id
    refusal, answers = over_budget(request.remote_addr or "unknown", anonymous_id, len(events),
                                   also=lambda pipe: queue_identity(pipe, anonymous_id, last_claim(claims)))
    if refusal is not None:
        return _refuse(refusal.status, refusal.message)
    stored = identity_from(answers[0]) if answers else None
    if isinstance(body, Collect) and body.event == "back_in_stock":
        return _cors(_back_in_stock(body, claims[0] or stored or Identity()))
    results = collect_many(events, claims, stored)
    if isinstance(body, CollectBatch):
        return _cors(_json(202, results=results))
    return _cors(_json(202, result=results[0]))


def _back_in_stock(body: Collect, claimed: Identity) -> Response:
    """`shoprelay.backInStock({...})`: the same subscription as POST /api/v1/back-in-stock (the identified
    visitor's email when the call names none)."""
    fields = {key: body.properties.get(key) for key in ("email", "phone", "sku", "product_id", "channels")
              if body.properties.get(key) is not None}
    if "email" not in fields and "phone" not in fields and claimed.email:
        fields["email"] = claimed.email
    try:
        subscription, warnings = subscribe(BackInStockRequest.model_validate(fields), origin="onsite")
    except pydantic.ValidationError as exc:
        return _json(422, errors=error_list(exc))
    except ApiError as exc:
        return _json(exc.status, **exc.to_json())
    return _json(202, result="subscribed", id=subscription.id, warnings=warnings)


def _json(status: int, **body: object) -> Response:
    response = jsonify(**body)
    response.status_code = status
    return response


def _refuse(status: int, message: str, path: str = "") -> Response:
    """A 4xx in the API's error shape, logged with the client's address (the shopper's, behind trusted
    proxies) so a flood or a misconfigured store can be traced."""
    log.info("onsite %s from %s (origin %s): %s", status, request.remote_addr, request.headers.get("Origin"),
             message)
    return _cors(_json(status, errors=[{"path": path, "message": message}]))


def _cors(response: Response) -> Response:
    allow = cors_origin(request.headers.get("Origin"))
    if allow:
        response.headers["Access-Control-Allow-Origin"] = allow
        if allow != "*":
            response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = "86400"
    return response


# ---- the dashboard's Onsite page ----

dashboard = dashboard_blueprint("dashboard", __name__, url_prefix="/onsite")
bp.register_blueprint(dashboard)


@dashboard.get("/")
def index():  # noqa: ANN201
    from webapp.services.onsite.page import page_context

    return render_template("onsite/index.html", **page_context(is_admin=current_user.role == "admin"))


@dashboard.get("/by-day")
def by_day():  # noqa: ANN201
    """The overview's onsite chart (loaded by the overview page as a fragment)."""
    from webapp.services.overview.onsite_by_day import onsite_chart
    from webapp.services.platform.charts import line_chart

    return render_template("overview/_onsite_by_day.html", line_chart=line_chart, **onsite_chart())
