"""The server behind `shoprelay web`: waitress in one process, or gunicorn with several.

A request holds Python's GIL for most of its few milliseconds of work, so one process serves at most one
CPU's worth of requests however many threads it runs; more processes use the other CPUs (a single-order
ingest costs ~3-5 ms of CPU: tests/benchmarks/RESULTS-orders.md, issue 5). waitress stays the one-process
server because it runs everywhere; gunicorn, the production server of the Dockerfile, runs on POSIX.
"""

from __future__ import annotations

import gc
from typing import Any

from flask import Flask


def serve(app: Flask, host: str, port: int, *, threads: int, workers: int) -> None:
    """Serve `app` until SIGTERM/SIGINT: `workers` processes of `threads` threads each."""
    # The app's long-lived objects leave the collector's view: a full collection during a 1000-order
    # ingest no longer walks them (~15% of the batch; RESULTS-orders.md, issue 5). Frozen before the
    # fork, they also stay shared between gunicorn's worker processes.
    gc.freeze()
    if workers <= 1:
        import waitress

        # Forwarded headers reach the app (its ProxyFix judges them) only when proxies are trusted.
        waitress.serve(app, host=host, port=port, threads=threads, ident="shoprelay",
                       clear_untrusted_proxy_headers=not app.config.get("TRUSTED_PROXIES"), channel_timeout=300)
        return
    options = gunicorn_options(host, port, threads=threads, workers=workers)
    run_gunicorn(app, options | {"post_fork": _fresh_pool_after_fork(app)})


def gunicorn_options(host: str, port: int, *, threads: int, workers: int) -> dict[str, Any]:
    """gunicorn settings equivalent to the waitress ones: threads per process, 5-minute request time."""
    return {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "workers": workers,
            "worker_class": "gthread", "threads": threads, "timeout": 300, "graceful_timeout": 30,
            "keepalive": 5, "proc_name": "shoprelay-web",
            # gunicorn >= 25.1 opens a control socket in $HOME by default; two servers would share it.
            "control_socket_disable": True}


def run_gunicorn(wsgi_app: Any, options: dict[str, Any]) -> None:
    """gunicorn's documented embedding: these options, this already-built app, no command-line parsing."""
    from gunicorn.app.base import BaseApplication  # POSIX only: imported when more processes are asked for

    class Server(BaseApplication):
        def load_config(self) -> None:
            for name, value in options.items():
                if name in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                    self.cfg.set(name, value)

        def load(self) -> Any:
            return wsgi_app

    Server().run()


def _fresh_pool_after_fork(app: Flask) -> Any:
    """gunicorn's post_fork hook: a forked worker must not share the parent's pooled database
    connections (SQLAlchemy's rule for forking)."""
    def post_fork(_server: Any, _worker: Any) -> None:
        from webapp.extensions import db

        with app.app_context():
            db.engine.dispose(close=False)

    return post_fork
