"""Flask extensions, created unbound so `create_app` binds them (no I/O at import time)."""

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from webapp.models.base import Base


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render our TypeDecorators as plain SQLAlchemy types so migrations never import app code."""
    import sqlalchemy as sa

    from webapp.models.base import UtcDateTime

    if type_ != "type":
        return False
    if isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, sa.JSON) and obj._variant_mapping:
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")  # type: ignore[attr-defined]
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item)
login_manager = LoginManager()
csrf = CSRFProtect()


def init_app(app) -> None:  # noqa: ANN001 - Flask app
    """Bind the extensions; SQLite gets WAL + foreign keys + busy timeout on every connection, PostgreSQL
    sessions run without JIT compilation."""
    import os

    import sqlalchemy as sa

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    csrf.init_app(app)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            sa.event.listen(db.engine, "connect", lambda connection, _record: _sqlite_pragmas(
                connection, busy_ms(app.config["DB_WAIT_SECONDS"])))
    else:
        with app.app_context():
            sa.event.listen(db.engine, "connect", lambda connection, _record: _postgres_session(connection))


def busy_ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _sqlite_pragmas(dbapi_connection, timeout_ms: int) -> None:  # noqa: ANN001
    """The busy timeout is how long a write waits for SQLite's single write lock: a web request's
    deadline (SHOPRELAY_DB_WAIT_SECONDS), longer in workers (they set DB_WAIT_SECONDS = 30 at start).
    secure_delete=FAST zeroes deleted and overwritten values in the pages being written anyway (no extra I/O),
    so personal data that an update, retention or an erasure removed does not linger in the file's free space."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=FAST")
    cursor.execute(f"PRAGMA busy_timeout={timeout_ms}")
    cursor.close()


def _postgres_session(dbapi_connection) -> None:  # noqa: ANN001
    """No JIT: every statement here is short, but once a table holds millions of rows the planner's estimates
    pass `jit_above_cost` and each execution compiles its expressions first. The delivery claim at 10M events
    spent 25-30 ms of 55 in compilation (EXPLAIN's JIT section), which made it grow 1.75-1.9x from 1M to 10M
    events; without JIT it stays within 1.15x. Committed, or the pool's reset would roll the SET back."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET jit = off")
    cursor.close()
    dbapi_connection.commit()


def redis_url(app=None) -> str | None:  # noqa: ANN001
    from flask import current_app

    return (app or current_app).config.get("REDIS_URL")


def get_redis():  # noqa: ANN201
    """The app's Redis client (cached per URL); raises RuntimeError when no Redis is configured."""
    from workers.queue import connect

    url = redis_url()
    if not url:
        raise RuntimeError("REDIS_URL is not set (shoprelay up starts an embedded Redis)")
    return connect(url)
