"""Helpers every dashboard blueprint shares."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask.blueprints import BlueprintSetupState
from flask_login import current_user

from webapp.extensions import login_manager


def dashboard_blueprint(name: str, import_name: str, url_prefix: str | None = None) -> Blueprint:
    """A blueprint whose every route needs a logged-in user (redirect to the login page otherwise)."""
    bp = Blueprint(name, import_name, url_prefix=url_prefix)

    @bp.before_request
    def _require_login():  # noqa: ANN202
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None

    return bp


def allow_file_uploads(bp: Blueprint, *views: str) -> None:
    """Source and order-import files may be far larger than an API body: these views of `bp` take up to
    SHOPRELAY_SOURCE_MAX_BYTES (the saving code enforces it again with a clear error).

    It must run before CSRF protection reads the form (that read enforces the cap), hence first in line.
    """
    endpoints = {f"{bp.name}.{view}" for view in views}

    def raise_upload_cap() -> None:
        if request.endpoint in endpoints:
            request.max_content_length = current_app.config["SOURCE_MAX_BYTES"]

    @bp.record_once
    def register(state: BlueprintSetupState) -> None:
        state.app.before_request_funcs.setdefault(None, []).insert(0, raise_upload_cap)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render_page_or_partial(page: str, partial: str, **context: Any) -> str:
    """One template per list: htmx requests get the rows partial alone, others the full page."""
    return render_template(partial if is_htmx() else page, **context)
