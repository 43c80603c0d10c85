"""One blueprint per dashboard area, plus the API, feed serving and operations endpoints."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from webapp.api import bp as api_bp
    from webapp.blueprints import (
        alerts,
        auth,
        contacts,
        demo_sink,
        destinations,
        errors,
        feed_serving,
        feeds,
        filters,
        imports,
        jobs,
        onsite,
        ops,
        orders,
        overview,
        settings,
        sources,
    )

    filters.init_app(app)
    errors.init_app(app)
    for module in (auth, overview, sources, feeds, orders, contacts, destinations, alerts, jobs, settings,
                   imports, feed_serving, ops, onsite, demo_sink):
        app.register_blueprint(module.bp)
    app.register_blueprint(api_bp)
