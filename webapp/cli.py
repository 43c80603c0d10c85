"""The `shoprelay` command line (a Flask CLI group): run the product and administer it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

DEFAULT_ADMIN_EMAIL = "admin@shoprelay.local"
WORKER_DB_WAIT_SECONDS = 30.0
DELIVERY_WORKER_QUEUES = ("-q", "delivery", "-q", "alerts")  # `up`'s second worker: never behind a sync


def _create_app() -> Flask:
    from webapp import create_app
    from webapp.settings import SettingsError

    try:
        return create_app()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def main() -> None:
    """shoprelay: catalog feeds, server-side order events and customer LTV for custom stores."""


def init_app(app: Flask) -> None:
    from webapp.commands import register_commands

    register_commands(app)


@main.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the dashboard listens on.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Seed a small demo store (catalog, contacts, orders).")
@click.option("--one-worker", is_flag=True,
              help="One worker for every queue (less memory; a long sync then delays delivery until it ends).")
def up_command(host: str, port: int, demo: bool, one_worker: bool) -> None:
    """Run everything (Redis when REDIS_URL is unset, web, workers, scheduler) in one command.

    Two workers by default: one on every queue and one that only delivers (and sends alerts), so orders that
    arrive during the nightly sync or a feed build reach the platforms while it runs."""
    from webapp.processes import SIGINT_EXIT, Supervisor, child_env, python_command, start_embedded_redis

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    instance = Path(app.instance_path)
    overrides = {"SHOPRELAY_INSTANCE_PATH": str(instance), "DATABASE_URL": app.config["DATABASE_URL"],
                 "SECRET_KEY": app.config["SECRET_KEY"]}
    if demo:  # the demo's webhook destination posts to this instance's own receiver: that address, that port
        allowed = ",".join(filter(None, [app.config.get("ALLOW_PRIVATE_URLS"), f"127.0.0.1:{port}"]))
        app.config["ALLOW_PRIVATE_URLS"] = overrides["SHOPRELAY_ALLOW_PRIVATE_URLS"] = allowed
    redis_process = None
    if not app.config.get("REDIS_URL"):
        redis_process, redis_url = start_embedded_redis(instance, child_env())
        app.config["REDIS_URL"] = redis_url
        click.echo(f"· embedded Redis on {redis_url}")
    overrides["REDIS_URL"] = app.config["REDIS_URL"]
    env = child_env(**overrides)
    supervisor = Supervisor(env, log=lambda message: click.echo(f"· {message}", err=True))
    if redis_process is not None:
        supervisor.extra.append(redis_process)
    try:
        _prepare_database(app, demo, f"http://127.0.0.1:{port}")
        supervisor.add("web", python_command("web", "--host", host, "--port", str(port)))
        supervisor.add("worker", python_command("worker"))
        if not one_worker:
            supervisor.add("delivery worker", python_command("worker", *DELIVERY_WORKER_QUEUES))
        supervisor.add("scheduler", python_command("scheduler"))
    except KeyboardInterrupt:  # Ctrl-C while migrating or starting: stop what runs, no traceback
        supervisor.stop()
        sys.exit(SIGINT_EXIT)
    except Exception:
        supervisor.stop()
        raise
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"\n  shoprelay is running: http://{shown_host}:{port}/   (Ctrl-C stops everything)\n")
    sys.exit(supervisor.run())


def _prepare_database(app: Flask, demo: bool, base_url: str) -> None:
    """Apply migrations, create the first admin (printing the login once), seed the demo store."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from webapp.extensions import db
    from webapp.models import User
    from webapp.security import create_user

    upgrade(directory=os.path.join(os.path.dirname(__file__), "migrations"))
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0:
        email = os.environ.get("SHOPRELAY_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL)
        _, password = create_user(email, os.environ.get("SHOPRELAY_ADMIN_PASSWORD"), is_admin=True)
        click.echo("\n  First run: an admin account was created. This password is shown only once.")
        click.echo(f"  Log in with  email: {email}   password: {password}\n")
    if demo:
        from webapp.services.demo import seed_demo

        summary = seed_demo(base_url)
        click.echo(f"· demo store: {summary}")


@main.command("web")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="Threads per process (default SHOPRELAY_WEB_THREADS).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help="Processes (default SHOPRELAY_WEB_WORKERS); 1 runs waitress, more run gunicorn.")
def web_command(host: str, port: int, threads: int | None, workers: int | None) -> None:
    """Serve the dashboard, API and feeds (waitress, or gunicorn with --workers > 1)."""
    from webapp.web_server import serve

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    serve(app, host, port, threads=threads or app.config["WEB_THREADS"],
          workers=workers or app.config["WEB_WORKERS"])


@main.command("worker")
@click.option("--queues", "-q", multiple=True, help="Queues to work (default: all; delivery first, other queues get a turn between delivery jobs).")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
def worker_command(queues: tuple[str, ...], burst: bool) -> None:
    """Run an RQ worker with the app context (REDIS_URL must be set)."""
    from workers.runner import run_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set (shoprelay up starts an embedded Redis)")
    from webapp.extensions import db

    app.config["DB_WAIT_SECONDS"] = WORKER_DB_WAIT_SECONDS  # no caller waits on a job: wait out a busy database
    with app.app_context():
        db.engine.dispose()  # connections opened so far got the web's busy timeout
    run_worker(app, list(queues) or None, burst=burst)


@main.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run RQ's cron scheduler with shoprelay's periodic jobs (one per deployment)."""
    from workers.schedule import run_scheduler

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set (shoprelay up starts an embedded Redis)")
    run_scheduler(current_app.config["REDIS_URL"])


if __name__ == "__main__":
    main()
