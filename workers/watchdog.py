"""A side thread in the scheduler and in every worker: once a minute, each checks that the other is alive
(webapp/services/alerts/watch.py), because neither can raise the alarm about itself."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)

EVERY_SECONDS = 60.0


def start(app: Flask, tick: Callable[[], object], name: str, every: float = EVERY_SECONDS) -> threading.Event:
    """Run `tick` in an app context every `every` seconds until the returned event is set (or the process
    ends: the thread is a daemon). A failing tick is logged and tried again next time."""
    stop = threading.Event()

    def run() -> None:
        from webapp.extensions import db

        while not stop.wait(every):
            with app.app_context():
                try:
                    tick()
                except Exception:
                    log.exception("%s failed; trying again in %.0f s", name, every)
                finally:
                    db.session.remove()

    threading.Thread(target=run, name=name, daemon=True).start()
    return stop


def watch_workers(app: Flask) -> threading.Event:
    """In the scheduler: tell people when no worker is alive (sent from here: no worker would send it)."""
    from webapp.services.alerts.watch import WorkerWatch

    return start(app, WorkerWatch().tick, "watch-workers")


def watch_scheduler(app: Flask) -> threading.Event:
    """In a worker: ask for an alerts evaluation when the scheduler is silent (its cron would never ask)."""
    from webapp.services.alerts.watch import watch_scheduler as check

    return start(app, check, "watch-scheduler")
