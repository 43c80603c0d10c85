"""`shoprelay web --workers N`: gunicorn processes share the ingest load and stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import REDIS_URL, both_databases
from tests.factories import make_order
from tests.processes import alive, descendants, free_port, stop_process, wait_until
from webapp.web_server import _fresh_pool_after_fork, gunicorn_options


def _web_process(app, port: int, *args: str) -> subprocess.Popen:
    env = dict(os.environ) | {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": REDIS_URL,
        "SHOPRELAY_INSTANCE_PATH": app.instance_path, "SECRET_KEY": "test-secret",
        "SHOPRELAY_ENCRYPTION_KEY": app.config["ENCRYPTION_KEY"], "SHOPRELAY_LOG_LEVEL": "WARNING",
    }
    log = open(Path(app.instance_path) / f"web-{port}.log", "wb")  # noqa: SIM115 - the child keeps a copy
    process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "web", "--port", str(port), *args],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503):
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process, grace=0, sig=signal.SIGKILL)
            raise AssertionError((Path(app.instance_path) / f"web-{port}.log").read_text()[-3000:])
        time.sleep(0.1)


@pytest.mark.slow
@both_databases
def test_two_processes_take_concurrent_orders_and_stop_on_sigterm(app, db, api_key):
    port = free_port()
    process = _web_process(app, port, "--workers", "2", "--threads", "2")
    try:
        wait_until(lambda: len(descendants(process.pid)) >= 2)
        workers = descendants(process.pid)
        failures: list[str] = []

        def post(first: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                              headers={"Authorization": f"Bearer {api_key}"}) as client:
                for number in range(first, first + 10):
                    order = make_order(id=f"W{number}")
                    response = client.post("/api/v1/orders", content=json.dumps(order),
                                           headers={"Content-Type": "application/json"})
                    if response.status_code != 202:
                        failures.append(f"{response.status_code} {response.text[:300]}")

        threads = [threading.Thread(target=post, args=(start,)) for start in range(0, 40, 10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [], (Path(app.instance_path) / f"web-{port}.log").read_text()[-4000:]
        db.session.remove()
        stored = db.session.scalar(sa.text("SELECT count(*) FROM orders WHERE external_id LIKE 'W%'"))
        assert stored == 40
        # Every order is from the same customer, most of them at the same moment in two processes: one
        # contact, and its figures count all 40 orders (none lost to a concurrent read-modify-write).
        contacts = db.session.execute(sa.text("SELECT id, orders_count FROM contacts")).all()
        assert [count for _, count in contacts] == [40]
        placed = db.session.scalar(sa.text("SELECT placed FROM contact_ltv"))
        assert float(placed) == pytest.approx(40 * make_order()["total"])
    finally:
        code = stop_process(process, grace=40)
    assert code == 0
    wait_until(lambda: not any(alive(pid) for pid in workers))


def test_a_forked_process_drops_the_parents_pooled_connections(app, db):
    db.session.execute(sa.text("SELECT 1"))
    db.session.remove()
    assert db.engine.pool.checkedin() == 1
    _fresh_pool_after_fork(app)(None, None)
    assert db.engine.pool.checkedin() == 0


def test_gunicorn_options_mirror_the_waitress_ones():
    options = gunicorn_options("::1", 8000, threads=8, workers=3)
    assert options["bind"] == "[::1]:8000"
    assert gunicorn_options("0.0.0.0", 80, threads=8, workers=3)["bind"] == "0.0.0.0:80"
    assert (options["workers"], options["threads"], options["worker_class"]) == (3, 8, "gthread")
    assert options["control_socket_disable"] is True

