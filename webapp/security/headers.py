"""What every answer carries (security headers, Secure cookies over HTTPS) and the /metrics token."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request

# Only the app's own scripts and styles (htmx is served from /static; no inline script, style or handler);
# product images come from the store's own sites. Nothing may frame the dashboard.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: https: http:",
    "font-src 'self'", "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'"))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # a feed URL's token never leaves in a Referer
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "Cross-Origin-Opener-Policy": "same-origin",
}


def security_headers(response: Response) -> Response:
    """Security headers on every answer (a view may set its own first)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class SecureCookies:
    """Every cookie set in an answer to an HTTPS request is marked Secure: the session, remember-me and any
    other, whoever sets it (Flask saves the session and Flask-Login its cookie after every after_request hook,
    so this sits around the whole app). Behind a proxy the scheme is the one ProxyFix found in
    X-Forwarded-Proto, once SHOPRELAY_TRUSTED_PROXIES says the proxy may be believed."""

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def secure_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ.get("wsgi.url_scheme") == "https":
                headers = [(name, value + "; Secure" if name.lower() == "set-cookie"
                            and "; secure" not in value.lower() else value) for name, value in headers]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, secure_start)


def metrics_token_guard() -> Response | None:
    """`GET /metrics` needs `Authorization: Bearer <SHOPRELAY_METRICS_TOKEN>` when that setting is given."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token or request.endpoint != "ops.metrics":
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    response = Response("metrics need Authorization: Bearer <SHOPRELAY_METRICS_TOKEN>\n", 401,
                        mimetype="text/plain")
    response.headers["WWW-Authenticate"] = 'Bearer realm="shoprelay metrics"'
    return response
