"""shoprelay's Flask application factory: configuration, then one `init_app` call per part."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment; `config` overrides settings (tests pass their own)."""
    from webapp import blueprints, cli, converters, extensions, security
    from webapp import config as app_config
    from webapp.services.platform import log_masking

    app = Flask(__name__, instance_relative_config=False)
    app_config.init_app(app, config)
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown everything else
    log_masking.install()  # no secret in any log line (webapp/services/platform/log_masking.py)
    extensions.init_app(app)
    security.init_app(app)
    converters.init_app(app)
    blueprints.init_app(app)
    cli.init_app(app)
    if app.config.get("TRUSTED_PROXIES"):  # outermost: the client's address and scheme as the proxies saw them
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    return app
