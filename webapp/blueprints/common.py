"""Helpers every dashboard blueprint shares."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
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


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render_page_or_partial(page: str, partial: str, **context: Any) -> str:
    """One template per list: htmx requests get the rows partial alone, others the full page."""
    return render_template(partial if is_htmx() else page, **context)
