"""POST /demo/webhook-sink: a receiver for the demo store's webhook destination (stores nothing)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from webapp.extensions import csrf

bp = Blueprint("demo_sink", __name__)
csrf.exempt(bp)


@bp.post("/demo/webhook-sink")
def sink():  # noqa: ANN201
    """Answers like a healthy receiver so the demo's delivery timelines fill with real attempts."""
    return jsonify(received=True)
