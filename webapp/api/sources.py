"""/api/v1/sources (+ sync), /api/v1/sync-runs/<id>, and the push endpoint /api/v1/products."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from webapp.api import bp
from webapp.api.common import flag, json_body, not_found, state_conflicts, validate
from webapp.extensions import db
from webapp.models import Source, SyncRun
from webapp.schemas.canonical.products import ProductPush
from webapp.schemas.errors import ApiError, problem
from webapp.schemas.sources import SourceCreate, SourceUpdate
from webapp.security import api_key_required
from webapp.services.catalog.product_push import apply_push
from webapp.services.catalog.sources import (
    create_source,
    delete_source,
    run_json,
    source_json,
    source_warnings,
    update_source,
)
from webapp.services.catalog.sync import SyncAlreadyRunning, request_sync


def _saved(source: Source) -> dict:
    """The source as saved, with `warnings` when it is accepted but cannot do everything yet."""
    body = source_json(source)
    warnings = source_warnings(source)
    if warnings:
        body["warnings"] = warnings
    return body


def _get(source_id: int) -> Source:
    source = db.session.get(Source, source_id)
    if source is None:
        raise not_found(f"source {source_id}")
    return source


@bp.get("/sources")
@api_key_required
def list_sources():  # noqa: ANN201
    return jsonify(sources=[source_json(s) for s in db.session.scalars(sa.select(Source).order_by(Source.id))])


@bp.post("/sources")
@api_key_required
def create_source_view():  # noqa: ANN201
    return jsonify(_saved(create_source(validate(SourceCreate, json_body())))), 201


@bp.get("/sources/<int:source_id>")
@api_key_required
def get_source(source_id: int):  # noqa: ANN201
    return jsonify(source_json(_get(source_id)))


@bp.patch("/sources/<int:source_id>")
@api_key_required
def update_source_view(source_id: int):  # noqa: ANN201
    source, data = _get(source_id), validate(SourceUpdate, json_body())
    return jsonify(_saved(update_source(source, data)))


@bp.delete("/sources/<int:source_id>")
@api_key_required
def delete_source_view(source_id: int):  # noqa: ANN201
    delete_source(_get(source_id))
    return "", 204


@bp.post("/sources/<int:source_id>/sync")
@api_key_required
def sync_source(source_id: int):  # noqa: ANN201
    """Queue a sync; ?confirm_removals=1 lets it remove more than the guard allows. 409 when one is running."""
    source = _get(source_id)
    if source.kind == "push":
        raise ApiError(409, [problem([], "push sources are updated by POST /api/v1/products")])
    try:
        run = request_sync(source, trigger="api", confirm_removals=flag("confirm_removals"))
    except SyncAlreadyRunning as exc:
        return jsonify(errors=[{"path": "", "message": str(exc)}], run=run_json(exc.run)), 409
    return jsonify(run_json(run)), 202


@bp.get("/sync-runs/<int:run_id>")
@api_key_required
def get_sync_run(run_id: int):  # noqa: ANN201
    run = db.session.get(SyncRun, run_id)
    if run is None:
        raise not_found(f"sync run {run_id}")
    return jsonify(run_json(run))


@bp.post("/products")
@api_key_required
def push_products():  # noqa: ANN201
    data = validate(ProductPush, json_body())
    with state_conflicts("source_id"):
        run, diff = apply_push(data)
    warnings = {"warnings": diff.problems} if diff.problems else {}
    return jsonify(source_id=run.source_id, run_id=run.id, added=diff.added, updated=diff.updated,
                   unchanged=diff.unchanged, removed=diff.removed, **warnings), 202
