"""Operational endpoints: /healthz for load balancers, /metrics for Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from webapp.services.overview.health import check_health
from webapp.services.overview.metrics import render_metrics

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    parts = check_health()
    status = 200 if all(value == "ok" for value in parts.values()) else 503
    return jsonify(parts), status


@bp.get("/metrics")
def metrics():  # noqa: ANN201
    return Response(render_metrics(), mimetype="text/plain; version=0.0.4")
