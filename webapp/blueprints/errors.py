"""Error pages for the dashboard; JSON errors in the API's shape for /api, /feeds and /healthz."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):  # noqa: ANN202
        return render_template("errors/error.html", code=400, name="Form expired",
                               description="The form's security token is missing or expired. "
                                           "Go back, reload the page and try again."), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # noqa: ANN202
        if request.path.startswith(("/api/", "/feeds/", "/t/")):
            message = exc.description or exc.name
            if exc.code == 413:
                message = f"request body too large (limit {app.config['API_MAX_BYTES']} bytes)"
            return jsonify(errors=[{"path": "", "message": message}]), exc.code
        return render_template("errors/error.html", code=exc.code, name=exc.name,
                               description=exc.description), exc.code
