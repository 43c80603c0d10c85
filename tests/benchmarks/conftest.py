"""Shared helpers for the benchmarks: scale, catalog data, throwaway databases, measured child processes.

Benchmarks (`bench_*.py`) are not collected by the default run; run one on demand with
`python -m pytest tests/benchmarks/bench_catalog_sync.py -m benchmark -s`. Every figure is printed beside
a floor measured in the same run, as a ratio: absolute times drift on this shared 2-core machine.

Environment:
    SHOPRELAY_BENCH_ROWS       products per run (default 1,000,000; 20000 for a quick check)
    SHOPRELAY_BENCH_BACKENDS   comma list of sqlite, postgresql (default both)
    SHOPRELAY_BENCH_POSTGRES_URL  server for the throwaway `shoprelay_bench_*` databases
    SHOPRELAY_TEST_REDIS_URL   Redis the app reports progress to (default redis://127.0.0.1:6379/10)
    SHOPRELAY_BENCH_TIMEOUT    seconds one measured child may take before it is killed (default 600)
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import re
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.processes import LOCAL_FAKES

BENCH_ROWS = int(os.environ.get("SHOPRELAY_BENCH_ROWS", "1000000"))
BACKENDS = [name.strip() for name in os.environ.get("SHOPRELAY_BENCH_BACKENDS", "sqlite,postgresql").split(",")
            if name.strip()]
REDIS_URL = os.environ.get("SHOPRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
POSTGRES_ADMIN_URL = os.environ.get("SHOPRELAY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CHILD_TIMEOUT = float(os.environ.get("SHOPRELAY_BENCH_TIMEOUT", "600"))

CSV_HEADER = ("id", "title", "description", "price", "link", "image", "categories", "stock")
_WORDS = ("linen", "oak", "matte", "steel", "woven", "hand-made", "quiet", "compact", "warm", "classic",
          "durable", "light", "soft", "glazed", "recycled", "stackable")
_CATEGORIES = ("Home", "Kitchen", "Garden", "Outdoor", "Lighting", "Textiles", "Decor", "Storage", "Sale")


# -- catalog data: the rows PERFORMANCE.md measured (id, title, ~200-char description, price, link, image,
#    3 categories, stock), deterministic so two files differ exactly where we change them --

def catalog_row(number: int, version: int = 0) -> tuple[str, ...]:
    """One product as CSV text; `version` > 0 changes its title and price (an edited product)."""
    words = " ".join(_WORDS[(number * 7 + k) % len(_WORDS)] for k in range(4))
    description = (f"Product {number}: {words}. " * 6)[:200]
    cents = 199 + (number * 37) % 50000 + version * 100
    categories = ", ".join(_CATEGORIES[(number + k) % len(_CATEGORIES)] for k in range(3))
    title = f"{words.title()} {number}" + (f" v{version}" if version else "")
    return (f"P{number}", title, description, f"{cents // 100}.{cents % 100:02d}",
            f"https://shop.example/p/{number}", f"https://cdn.shop.example/img/{number}.jpg", categories,
            str(number % 97))


def write_catalog_csv(path: Path, rows: int, *, changed_every: int = 0) -> Path:
    """A catalog CSV of `rows` products; with `changed_every` = n every n-th product is edited."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for number in range(rows):
            edited = changed_every and number % changed_every == 0
            writer.writerow(catalog_row(number, 1 if edited else 0))
    return path


def write_catalog_json(path: Path, rows: int) -> Path:
    """The same catalog as one plain JSON document ({"products": [...]}, minified), written page by page."""
    import orjson

    with path.open("wb") as handle:
        handle.write(b'{"products": [')
        for start in range(0, rows, 10_000):
            page = [dict(zip(CSV_HEADER, catalog_row(number), strict=True))
                    for number in range(start, min(start + 10_000, rows))]
            handle.write((b"," if start else b"") + orjson.dumps(page)[1:-1])
        handle.write(b"]}")
    return path


def product_records(source_id: int, start: int, stop: int) -> Iterator[dict[str, Any]]:
    """The same products as `products` table values, for seeding a database without a sync."""
    for number in range(start, stop):
        external_id, title, description, price, link, image, categories, stock = catalog_row(number)
        yield {"source_id": source_id, "external_id": external_id, "title": title, "description": description,
               "link": link, "image_link": image, "price": Decimal(price), "currency": "USD",
               "categories": categories.split(", "), "inventory_quantity": int(stock), "extras": {},
               "content_hash": 0}


# -- the application under measurement --

def make_app(database_url: str, instance: Path, **config: Any):  # noqa: ANN201 - a Flask app
    """The app as production builds it, on the benchmark's own database, instance folder and Redis DB."""
    from webapp import create_app

    return create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(instance), "REDIS_URL": REDIS_URL,
                       "SECRET_KEY": "bench-secret", "LOG_LEVEL": "WARNING", "ALLOW_PRIVATE_URLS": LOCAL_FAKES,
                       **config})


def create_schema(database_url: str, instance: Path) -> None:
    from webapp.extensions import db
    from webapp.models import Base

    app = make_app(database_url, instance)
    with app.app_context():
        Base.metadata.create_all(db.engine)
        db.engine.dispose()


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def postgres_available() -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(sqlalchemy_url(POSTGRES_ADMIN_URL), connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


# -- measured child processes: the benchmark's own data never counts in the peak RSS --

@dataclass(frozen=True)
class Measured:
    """What a measured function returns from its child: the timed seconds and any figures."""

    seconds: float
    value: Any = None
    rss_before_mb: float = 0.0  # resident size once set up (imports, app), before the timed work


@dataclass(frozen=True)
class ChildResult:
    seconds: float
    peak_rss_mb: float
    rss_before_mb: float
    value: Any


def rss_now_mb(field: str = "VmRSS") -> float:
    """This process's resident size now (VmRSS) or at its peak (VmHWM), from /proc/self/status."""
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def run_measured(target: Callable[..., Measured], *args: Any, timeout: float = CHILD_TIMEOUT) -> ChildResult:
    """Run `target(*args)` in a fresh (spawned) interpreter; its time and its process's peak RSS."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, target, args), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            pytest.fail(f"{target.__name__} took longer than {timeout:.0f} s; stopped")
        status, payload = receiver.recv()
    except EOFError:
        status, payload = "error", f"the child died (exit code {process.exitcode})"
    finally:
        if process.is_alive():
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        receiver.close()
    if status == "error":
        raise RuntimeError(f"{target.__name__} failed in its child process:\n{payload}")
    measured, peak_mb = payload
    return ChildResult(measured.seconds, peak_mb, measured.rss_before_mb, measured.value)


def _child_main(sender: Any, target: Callable[..., Measured], args: tuple[Any, ...]) -> None:
    try:
        measured = target(*args)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a spawned child would report
        # the size of the pytest process it was forked from.
        sender.send(("ok", (measured, rss_now_mb("VmHWM"))))
    except BaseException:
        sender.send(("error", traceback.format_exc()))
    finally:
        sender.close()


class Stopwatch:
    """`with Stopwatch() as watch: ...` then `watch.seconds`."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """A Markdown table on stdout (run with -s), ready to paste into RESULTS.md."""
    cells = [tuple(str(value) for value in row) for row in rows]
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in cells:
        print("| " + " | ".join(row) + " |")
    print(flush=True)


# -- fixtures --

@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch folder for source files, instances and SQLite files; removed afterwards (they are big)."""
    path = tmp_path_factory.mktemp("bench")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def new_database(bench_dir: Path) -> Iterator[Callable[[str, str], str]]:
    """`new_database(backend, label)` -> an empty database URL (schema created); all dropped at the end."""
    import sqlalchemy as sa

    created: list[str] = []
    admin: sa.Engine | None = None

    def make(backend: str, label: str) -> str:
        nonlocal admin
        if backend == "sqlite":
            url = f"sqlite:///{bench_dir / f'{label}.db'}"
        else:
            if admin is None:
                if not postgres_available():
                    pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
                admin = sa.create_engine(sqlalchemy_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
            name = f"shoprelay_bench_{uuid.uuid4().hex[:10]}"
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            created.append(name)
            url = sqlalchemy_url(re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", POSTGRES_ADMIN_URL, count=1))
        create_schema(url, bench_dir / f"instance-{label}")
        return url

    yield make
    if admin is not None:
        with admin.connect() as connection:
            for name in created:
                connection.execute(sa.text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
