"""Helpers for the orders, delivery and dashboard benchmarks: databases, child servers, orders, percentiles.

Every database these benchmarks make is a throwaway `shoprelay_bench2_*` one (or a SQLite file in a temp
folder); Redis is a DB of its own (SHOPRELAY_TEST_REDIS_URL, default redis://127.0.0.1:6379/9), flushed
before use. The app, the fake platform and the floor servers run as child processes, so the load
generator in the pytest process never shares a GIL with what it measures.

`python -m tests.benchmarks.bench_support floor --port P --database URL` serves the ingest floor: a bare
WSGI app on waitress that parses the same JSON and stores the orders with one executemany.

Environment: SHOPRELAY_BENCH_BACKENDS (comma list: sqlite, postgresql), SHOPRELAY_BENCH_POSTGRES_URL
(server for throwaway databases), SHOPRELAY_BENCH_KEEP=1 (keep databases for a re-run).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.processes import LOCAL_FAKES

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("SHOPRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
POSTGRES_ADMIN_URL = os.environ.get("SHOPRELAY_BENCH_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE_PREFIX = "shoprelay_bench2_"
KEEP_DATABASES = os.environ.get("SHOPRELAY_BENCH_KEEP", "") == "1"
SECRET_KEY = "bench-secret"
# A fixed Fernet key so destinations created in-process decrypt in the worker processes.
ENCRYPTION_KEY = "e6rT0Kx0o4Q0cQnS1xF2mYyq7m2v9n8G3Wc5b4a1d0E="
# Limits far above anything a local run reaches: throughput runs measure shoprelay, not the limiter's wait.
UNLIMITED = {"burst_per_second": 1_000_000, "per_minute": 60_000_000,
             "bulk_burst_per_second": 1_000_000, "bulk_per_minute": 60_000_000}
FAKE_CREDENTIALS = {"klaviyo": {"api_key": "pk_test"}, "esputnik": {"api_key": "es_test"},
                    "sendlane": {"api_token": "sl_api_test",
                                 "integration_token": "3f0c6a52-7f6b-4c1e-9a55-5e0d1c2b7a10"}}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def backends(default: str = "sqlite,postgresql") -> list[str]:
    raw = os.environ.get("SHOPRELAY_BENCH_BACKENDS", default)
    return [name.strip() for name in raw.split(",") if name.strip()]


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def postgres_url(name: str) -> str:
    return sqlalchemy_url(re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", POSTGRES_ADMIN_URL, count=1))


def _admin_engine():  # noqa: ANN202 - sa.Engine
    import sqlalchemy as sa

    return sa.create_engine(sqlalchemy_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT",
                            connect_args={"connect_timeout": 3})


def postgres_available() -> bool:
    import sqlalchemy as sa

    engine = _admin_engine()
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def create_schema(database_url: str) -> None:
    import sqlalchemy as sa

    from webapp.models import Base

    engine = sa.create_engine(database_url)
    Base.metadata.create_all(engine)
    engine.dispose()


@contextlib.contextmanager
def throwaway_database(backend: str, folder: Path, label: str, *, schema: bool = True) -> Iterator[str]:
    """An empty database with shoprelay's schema; dropped afterwards unless SHOPRELAY_BENCH_KEEP=1."""
    import pytest
    import sqlalchemy as sa

    if backend == "sqlite":
        url = f"sqlite:///{folder / f'{label}.db'}"
        if schema:
            create_schema(url)
        yield url
        return
    if not postgres_available():
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
    name = f"{DATABASE_PREFIX}{label}_{uuid.uuid4().hex[:8]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        if schema:
            create_schema(postgres_url(name))
        yield postgres_url(name)
    finally:
        if KEEP_DATABASES:
            print(f"kept database {name}", flush=True)
        else:
            drop_postgres_database(admin, name)
        admin.dispose()


def drop_postgres_database(admin: Any, name: str) -> None:
    import sqlalchemy as sa

    if not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a benchmark database")
    with admin.connect() as connection:
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name})
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def flushed_redis():  # noqa: ANN201 - redis.Redis
    from redis import Redis

    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    return connection


# -- the application and its processes --

def make_app(database_url: str, instance: Path, **config: Any):  # noqa: ANN201 - Flask app
    from webapp import create_app

    return create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(instance), "REDIS_URL": REDIS_URL,
                       "SECRET_KEY": SECRET_KEY, "ENCRYPTION_KEY": ENCRYPTION_KEY, "LOG_LEVEL": "WARNING",
                       "ALLOW_PRIVATE_URLS": LOCAL_FAKES, **config})


def app_env(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    """Environment for `python -m webapp.cli ...` children: the same database, Redis, keys and instance."""
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "SHOPRELAY_INSTANCE_PATH": str(instance),
                "SECRET_KEY": SECRET_KEY, "SHOPRELAY_ENCRYPTION_KEY": ENCRYPTION_KEY,
                "SHOPRELAY_LOG_LEVEL": "WARNING", "SHOPRELAY_ALLOW_PRIVATE_URLS": LOCAL_FAKES,
                "PYTHONPATH": str(REPO)})
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{process.args} did not listen on {port} within {timeout:.0f} s")


@contextlib.contextmanager
def child(args: Sequence[str], env: dict[str, str] | None = None, *, port: int | None = None,
          log: Path | None = None) -> Iterator[subprocess.Popen]:
    """A child Python process (`args` after `python`); waits for `port`; stopped (by its pid) at exit."""
    out = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, *args], env=env or dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO,
                               stdout=out, stderr=subprocess.STDOUT)
    try:
        if port is not None:
            wait_for_port(port, process)
        yield process
    finally:
        stop_process(process)
        if log:
            out.close()


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def fake_platform_process() -> Iterator[str]:
    """The fake platforms in their own process, bodies not kept; yields its base URL."""
    port = free_port()
    with child(["-m", "tests.fakeplatform", "--port", str(port), "--no-bodies"], port=port):
        yield f"http://127.0.0.1:{port}"


def create_destinations(app: Any, fake_url: str, kinds: Sequence[str],
                        rate_limits: dict[str, float] | None = None) -> tuple[str, list[int]]:
    """An API key and one destination per kind pointed at the fake, created through the real API."""
    from webapp.security import create_api_key

    with app.app_context():
        _, key = create_api_key("bench")
    client = app.test_client()
    ids = []
    for kind in kinds:
        body: dict[str, Any] = {"name": f"{kind} bench", "kind": kind, "credentials": FAKE_CREDENTIALS[kind],
                                "base_url": f"{fake_url}/{kind}"}
        if rate_limits:
            body["rate_limits"] = rate_limits
        response = client.post("/api/v1/destinations", json=body, headers={"Authorization": f"Bearer {key}"})
        if response.status_code != 201:
            raise RuntimeError(f"creating a {kind} destination failed: {response.get_json()}")
        ids.append(response.get_json()["id"])
    dispose(app)
    return key, ids


def dispose(app: Any) -> None:
    """Close the app's pooled connections (an open psycopg connection left to GC is a ResourceWarning)."""
    from webapp.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# -- orders shaped like what stores send --

def bench_order(number: int, *, lines: int = 3, customers: int = 0, prefix: str = "B") -> dict[str, Any]:
    """The canonical example order with `lines` lines and its own id; customers repeat every `customers`."""
    from tests.factories import make_order

    order = make_order()
    base_items = order["items"]
    items = []
    for index in range(lines):
        item = copy.deepcopy(base_items[index % len(base_items)])
        item["product_id"] = f"{item['product_id']}-{index}"
        item["sku"] = f"{item['sku']}-{index}"
        items.append(item)
    who = number % customers if customers else number
    order["id"] = f"{prefix}{number}"
    order["items"] = items
    order["subtotal"] = order["total"] = round(sum(item["price"] * item["quantity"] for item in items), 2)
    # Every identifier per customer: a phone shared by all orders would merge every contact into one.
    order["customer"] = order["customer"] | {"id": f"c-{who}", "email": f"customer{who}@example.com",
                                             "phone": f"+1555{who:07d}"}
    return order


def order_body(orders: list[dict[str, Any]]) -> bytes:
    payload: Any = orders[0] if len(orders) == 1 else {"orders": orders}
    return json.dumps(payload).encode()


# -- figures --

def post_concurrently(port: int, path: str, bodies: Sequence[bytes], clients: int, headers: dict[str, str],
                      timeout: float = 120) -> tuple[float, list[str]]:
    """POST every body over `clients` keep-alive connections: (seconds taken, failures); anything but 202 fails."""
    import http.client
    import itertools
    import threading

    counter = itertools.count()
    failures: list[str] = []

    def work() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        while (index := next(counter)) < len(bodies):
            connection.request("POST", path, body=bodies[index], headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 202:
                failures.append(f"{response.status}: {answer[:300]!r}")
        connection.close()

    threads = [threading.Thread(target=work) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        print(f"{len(failures)} failed requests, first: {failures[0]}")
    return seconds, failures


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1); NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(share * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}" if floor else "—"


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """A Markdown table on stdout (run with -s), ready to paste into RESULTS-orders.md."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(str(value) for value in row) + " |")
    print(flush=True)


# -- the ingest floor server --

def floor_wsgi_app(database_url: str):  # noqa: ANN201 - WSGI callable
    """Parse the JSON body like Flask does, insert the orders with one executemany, answer 202."""
    import sqlalchemy as sa

    def new_engine() -> sa.Engine:
        return sa.create_engine(database_url, pool_size=10, max_overflow=10,
                                connect_args={"timeout": 30} if database_url.startswith("sqlite") else {})

    table = sa.Table("floor_orders", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("external_id", sa.String(255)), sa.Column("data", sa.Text))
    creator = new_engine()
    table.create(creator, checkfirst=True)
    creator.dispose()
    engines: dict[int, sa.Engine] = {}  # one per process: gunicorn forks after this point

    def app(environ: dict, start_response: Any) -> list[bytes]:
        engine = engines.get(os.getpid()) or engines.setdefault(os.getpid(), new_engine())
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(length))
        orders = data.get("orders", [data])
        rows = [{"external_id": str(order["id"]), "data": json.dumps(order)} for order in orders]
        with engine.begin() as connection:
            connection.execute(table.insert(), rows)
        body = json.dumps({"accepted": len(rows)}).encode()
        start_response("202 Accepted", [("Content-Type", "application/json"),
                                         ("Content-Length", str(len(body)))])
        return [body]

    return app


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_support")
    parser.add_argument("what", choices=["floor"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    app = floor_wsgi_app(args.database)
    if args.workers > 1:  # the same gunicorn settings as `shoprelay web --workers N`
        from webapp.web_server import gunicorn_options, run_gunicorn

        run_gunicorn(app, gunicorn_options("127.0.0.1", args.port, threads=args.threads, workers=args.workers)
                     | {"loglevel": "warning"})
        return
    import waitress

    waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads, ident="floor", channel_timeout=300)


if __name__ == "__main__":
    _main()
