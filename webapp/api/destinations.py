"""/api/v1/destinations: create / list / get / update / delete, pause, resume, retry failures, replay a window
(+ /api/v1/replays/<id>: a replay's progress)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import jsonify, request

from webapp.api import bp
from webapp.api.common import flag, json_body, not_found, validate
from webapp.extensions import db
from webapp.models import Destination
from webapp.schemas.destinations import DestinationCreate, DestinationUpdate
from webapp.schemas.errors import ApiError, problem
from webapp.security import api_key_required
from webapp.services.delivery import replays
from webapp.services.delivery import retries as delivery_ops
from webapp.services.delivery.destinations import (
    create_destination,
    destination_json,
    pause_destination,
    resume_destination,
    test_connection,
    update_destination,
)
from webapp.services.platform_catalogs import runs as catalog_runs
from webapp.services.platform_catalogs import status as catalog_status


def _get(destination_id: int) -> Destination:
    destination = db.session.get(Destination, destination_id)
    if destination is None:
        raise not_found(f"destination {destination_id}")
    return destination


@bp.get("/destinations")
@api_key_required
def list_destinations():  # noqa: ANN201
    rows = db.session.scalars(sa.select(Destination).order_by(Destination.id)).all()
    return jsonify(destinations=[destination_json(d) for d in rows])


@bp.post("/destinations")
@api_key_required
def create():  # noqa: ANN201
    destination = create_destination(validate(DestinationCreate, json_body()))
    catalog_runs.catalog_switched(destination, "off")
    return jsonify(_with_warnings(destination)), 201


def _with_warnings(destination: Destination) -> dict:
    body = destination_json(destination)
    warnings = catalog_status.catalog_warnings(destination)
    if warnings:
        body["warnings"] = warnings
    return body


@bp.get("/destinations/<int:destination_id>")
@api_key_required
def get(destination_id: int):  # noqa: ANN201
    return jsonify(destination_json(_get(destination_id)))


@bp.patch("/destinations/<int:destination_id>")
@api_key_required
def update(destination_id: int):  # noqa: ANN201
    destination = _get(destination_id)
    before, data = destination.catalog, validate(DestinationUpdate, json_body())
    update_destination(destination, data)  # 409 for what only this destination's kind refuses
    catalog_runs.catalog_switched(destination, before)
    return jsonify(_with_warnings(destination))


@bp.get("/destinations/<int:destination_id>/catalog")
@api_key_required
def catalog(destination_id: int):  # noqa: ANN201
    return jsonify(catalog_status.catalog_status(_get(destination_id)))


@bp.post("/destinations/<int:destination_id>/catalog/reconcile")
@api_key_required
def reconcile(destination_id: int):  # noqa: ANN201
    """Queue a reconcile now (?full=1 also reads the platform's catalog back first)."""
    destination = _get(destination_id)
    if not catalog_runs.reconciled(destination):
        raise ApiError(409, [problem(["catalog"], "this destination's catalog is not kept through a Catalog API "
                                                  "(set catalog to \"api\" on a Klaviyo destination)")])
    run = catalog_runs.request_reconcile(destination, "manual", full=flag("full"))
    return jsonify(catalog_status.run_json(run)), 202


@bp.delete("/destinations/<int:destination_id>")
@api_key_required
def delete(destination_id: int):  # noqa: ANN201
    db.session.delete(_get(destination_id))
    db.session.commit()
    return "", 204


@bp.post("/destinations/<int:destination_id>/pause")
@api_key_required
def pause(destination_id: int):  # noqa: ANN201
    destination = _get(destination_id)
    pause_destination(destination, (request.get_json(silent=True) or {}).get("reason") or "paused via the API")
    return jsonify(destination_json(destination))


@bp.post("/destinations/<int:destination_id>/resume")
@api_key_required
def resume(destination_id: int):  # noqa: ANN201
    destination = _get(destination_id)
    resume_destination(destination)
    return jsonify(destination_json(destination))


@bp.post("/destinations/<int:destination_id>/test")
@api_key_required
def test(destination_id: int):  # noqa: ANN201
    return jsonify(test_connection(_get(destination_id)))


@bp.post("/destinations/<int:destination_id>/retry")
@api_key_required
def retry(destination_id: int):  # noqa: ANN201
    """Retry failed/dead events created in [since, until]; ?dry_run=1 only counts them."""
    _get(destination_id)
    since, until = _time_arg("since"), _time_arg("until")
    if flag("dry_run"):
        return jsonify(would_retry=delivery_ops.count_failed(destination_id, since, until))
    return jsonify(retried=delivery_ops.retry_failed(destination_id, since, until))


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, [problem([name], "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z")]) from None
    if value.tzinfo is None:
        raise ApiError(422, [problem([name], "timestamp needs a UTC offset, e.g. 2026-11-20T10:15:00Z")])
    return value


@bp.post("/destinations/<int:destination_id>/replay")
@api_key_required
def replay_window(destination_id: int):  # noqa: ANN201
    """Send again what the destination was sent (or failed to get) in [since, until): 200 with the count on
    a dry run, else 202 with the replay (queued in chunks; large ones by a worker)."""
    destination, body = _get(destination_id), json_body()
    if isinstance(body, dict):  # pydantic would also read a number as seconds since 1970; the document says text
        for name in ("since", "until"):
            if name in body and not isinstance(body[name], str):
                raise ApiError(422, [problem([name], "must be an ISO 8601 timestamp, e.g. 2026-11-20T10:15:00Z")])
        for name in ("new_ids", "dry_run"):  # and `1` or "yes" as true: JSON says true
            if name in body and not isinstance(body[name], bool):
                raise ApiError(422, [problem([name], "must be true or false")])
    window = replays.parse_window(body)
    if window.dry_run:
        return jsonify(dry_run=True, **replays.count_window(destination.id, window))
    return jsonify(replays.replay_json(replays.start_replay(destination, window))), 202


@bp.get("/replays/<replay_id>")
@api_key_required
def replay(replay_id: str):  # noqa: ANN201
    found = replays.get_replay(replay_id)
    if found is None:
        raise not_found(f"replay {replay_id!r}")
    return jsonify(replays.replay_json(found))
