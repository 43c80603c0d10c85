"""/api/v1/alerts: alert channels (create / list / get / update / delete, POST /<id>/test) and
GET /api/v1/alerts/incidents?state=open|closed."""

from __future__ import annotations

from flask import jsonify, request

from webapp.api import bp
from webapp.api.common import int_arg, json_body, not_found, validate
from webapp.api.openapi import document
from webapp.extensions import db
from webapp.models import AlertChannel
from webapp.schemas import alerts as out
from webapp.schemas.alerts import ChannelCreate, ChannelUpdate
from webapp.schemas.errors import ApiError, problem
from webapp.schemas.responses import ErrorResponse
from webapp.security import api_key_required
from webapp.services.alerts import channels, incidents
from webapp.services.alerts.sending import pending_counts, send_test


def _get(channel_id: int) -> AlertChannel:
    channel = db.session.get(AlertChannel, channel_id)
    if channel is None:
        raise not_found(f"alert channel {channel_id}")
    return channel


@bp.get("/alerts")
@api_key_required
def list_alert_channels():  # noqa: ANN201
    pending = pending_counts()
    return jsonify(channels=[channels.channel_json(channel, pending.get(channel.id, 0))
                             for channel in channels.list_channels()])


@bp.post("/alerts")
@api_key_required
def create_alert_channel():  # noqa: ANN201
    return jsonify(channels.channel_json(channels.create_channel(validate(ChannelCreate, json_body())))), 201


@bp.get("/alerts/<int:channel_id>")
@api_key_required
def get_alert_channel(channel_id: int):  # noqa: ANN201
    return jsonify(channels.channel_json(_get(channel_id)))


@bp.patch("/alerts/<int:channel_id>")
@api_key_required
def update_alert_channel(channel_id: int):  # noqa: ANN201
    channel = _get(channel_id)
    return jsonify(channels.channel_json(channels.update_channel(channel, validate(ChannelUpdate, json_body()))))


@bp.delete("/alerts/<int:channel_id>")
@api_key_required
def delete_alert_channel(channel_id: int):  # noqa: ANN201
    channels.delete_channel(_get(channel_id))
    return "", 204


@bp.post("/alerts/<int:channel_id>/test")
@api_key_required
def test_alert_channel(channel_id: int):  # noqa: ANN201
    """Sends a test message now and answers with the service's outcome (200 either way: the test ran)."""
    return jsonify(send_test(_get(channel_id)))


@bp.get("/alerts/incidents")
@api_key_required
def list_alert_incidents():  # noqa: ANN201
    state = request.args.get("state")
    if state not in (None, "open", "closed"):
        raise ApiError(422, [problem(["state"], "must be one of: open, closed")])
    rows = incidents.list_incidents(state, limit=int_arg("limit", 100))
    notices = incidents.notices_of([incident.id for incident in rows])
    return jsonify(incidents=[incidents.incident_json(incident, notices[incident.id]) for incident in rows])


document(
    ("get", "/alerts", "List alert channels (URLs are write-only: url_hint shows scheme and host)", None,
     {200: out.AlertChannelList}, []),
    ("post", "/alerts", "Create an alert channel from an Apprise URL (checked by apprise; 422 names the field)",
     ChannelCreate, {201: out.AlertChannelOut, 422: ErrorResponse}, []),
    ("get", "/alerts/{id}", "An alert channel", None, {200: out.AlertChannelOut, 404: ErrorResponse}, []),
    ("patch", "/alerts/{id}", "Update an alert channel (the URL only when given)", ChannelUpdate,
     {200: out.AlertChannelOut, 404: ErrorResponse, 422: ErrorResponse}, []),
    ("delete", "/alerts/{id}", "Delete an alert channel and its notices", None, {204: None, 404: ErrorResponse}, []),
    ("post", "/alerts/{id}/test", "Send a test message through the channel now; answers the service's outcome",
     None, {200: out.AlertTestOut, 404: ErrorResponse}, []),
    ("get", "/alerts/incidents", "Incidents, newest first: each problem from its start to its end, with the "
     "notices sent about it", None, {200: out.IncidentList, 422: ErrorResponse},
     [("state", "open (includes resolving) or closed; default both", {"type": "string", "enum": ["open", "closed"]}),
      ("limit", "at most this many (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000})]),
)
