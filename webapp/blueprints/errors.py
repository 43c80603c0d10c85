"""Error pages for the dashboard; JSON errors in the API's shape for /api, /feeds and /healthz."""

from __future__ import annotations

import contextlib
import logging

import sqlalchemy as sa
from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.services.platform.db_unavailable import RETRY_AFTER_SECONDS, DatabaseBusy, is_unavailable

log = logging.getLogger(__name__)
JSON_PATHS = ("/api/", "/feeds/", "/t/")
UNAVAILABLE_PAGE = ("<!doctype html><title>503 · Service Unavailable</title><h1>503 · Service Unavailable</h1>"
                    "<p>The database is busy or unavailable right now. Try again in a few seconds.</p>")


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):  # noqa: ANN202
        return render_template("errors/error.html", code=400, name="Form expired",
                               description="The form's security token is missing or expired. "
                                           "Go back, reload the page and try again."), 400

    @app.errorhandler(DatabaseBusy)
    @app.errorhandler(sa.exc.DBAPIError)
    @app.errorhandler(sa.exc.TimeoutError)
    def database_unavailable(exc: Exception):  # noqa: ANN202
        """Busy (SQLite's write lock past the deadline), down or restarting: 503 + Retry-After, not a 500."""
        if not is_unavailable(exc):
            raise exc
        with contextlib.suppress(Exception):  # a dead connection may not even roll back
            from webapp.extensions import db

            db.session.rollback()
        log.warning("database unavailable for %s %s: %s", request.method, request.path,
                    str(exc).splitlines()[0][:300])
        message = (f"the database is busy or unavailable right now; nothing was stored, retry in "
                   f"{RETRY_AFTER_SECONDS} seconds")
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if request.path.startswith((*JSON_PATHS, "/healthz")):
            return jsonify(errors=[{"path": "", "message": message}]), 503, headers
        return UNAVAILABLE_PAGE, 503, headers  # plain: the dashboard's layout itself reads the database

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # noqa: ANN202
        if request.path.startswith(JSON_PATHS):
            message = exc.description or exc.name
            if exc.code == 413:
                message = f"request body too large (limit {app.config['API_MAX_BYTES']} bytes)"
            return jsonify(errors=[{"path": "", "message": message}]), exc.code, kept_headers(exc)
        description = too_large_text() if exc.code == 413 else exc.description
        return render_template("errors/error.html", code=exc.code, name=exc.name,
                               description=description), exc.code, kept_headers(exc)


def too_large_text() -> str:
    """Which cap a dashboard form met: file uploads take SHOPRELAY_SOURCE_MAX_BYTES, every other form the API's."""
    from flask import current_app

    limit = request.max_content_length or current_app.config["API_MAX_BYTES"]
    setting = ("SHOPRELAY_SOURCE_MAX_BYTES" if limit == current_app.config["SOURCE_MAX_BYTES"]
               else "SHOPRELAY_API_MAX_BYTES")
    return (f"What you sent is larger than {limit:,} bytes, the most this shoprelay takes here ({setting}). "
            "Nothing was stored.")


def kept_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """The headers the exception carries besides its HTML content type: `Allow` on a 405 (RFC 9110 requires
    it; clients and Schemathesis read it to learn the methods), `Retry-After`, `WWW-Authenticate`."""
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]
