"""`shoprelay up` on a bare directory: embedded Redis, migrations, first admin, web+worker+scheduler."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.processes import LOCAL_FAKES, alive, descendants, free_port, wait_until

pytestmark = pytest.mark.slow


def _bare_env(**extra: str) -> dict[str, str]:
    """This environment without the test run's database, Redis, key and settings: `up` on embedded defaults."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not key.startswith("SHOPRELAY_")}
    return env | extra


@contextmanager
def _api_with_a_webhook(tmp_path, env: dict[str, str], port: int, fake) -> Iterator[httpx.Client]:  # noqa: ANN001
    """An API client of the running `up` (a key made by the CLI) with a webhook destination posting to the fake."""
    key = subprocess.run([sys.executable, "-m", "webapp.cli", "apikeys", "create", "up-smoke"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                      headers={"Authorization": f"Bearer {key}"}) as api:
        created = api.post("/api/v1/destinations", json={
            "name": "hook", "kind": "webhook",
            "credentials": {"url": fake.base_url("webhook"), "secret": fake.webhook_secret}})
        assert created.status_code == 201, created.text
        yield api


def test_up_runs_everything_and_stops_cleanly(tmp_path):
    port = free_port()
    env = _bare_env()
    process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "up", "--port", str(port)], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 30
        healthy = False
        while time.monotonic() < deadline and not healthy:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                healthy = response.status_code == 200
            except httpx.HTTPError:
                time.sleep(0.3)
        assert healthy, "healthz never answered 200"
        assert response.json() == {"db": "ok", "redis": "ok"}
        children = descendants(process.pid)
        assert len(children) >= 4  # redis, web, worker, scheduler

        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        output.append(out)
        assert process.returncode == 0
        time.sleep(0.5)
        assert not [pid for pid in children if alive(pid)], "child processes outlived shoprelay up"
    finally:
        if process.poll() is None:
            process.kill()
            output.append(process.communicate()[0])
    text = "".join(output)
    login = re.search(r"email: (\S+)\s+password: (\S+)", text)
    assert login, text
    assert (tmp_path / "instance" / "shoprelay.db").exists()
    assert f"http://127.0.0.1:{port}/" in text


def test_up_login_with_printed_credentials(tmp_path):
    port = free_port()
    env = _bare_env()
    process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "up", "--port", str(port)], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 30
        while "password:" not in seen and time.monotonic() < deadline:
            seen += process.stdout.readline()
        login = re.search(r"email: (\S+)\s+password: (\S+)", seen)
        assert login, seen
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for _ in range(100):
                try:
                    page = client.get("/login")
                    break
                except httpx.HTTPError:
                    time.sleep(0.3)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            response = client.post("/login", data={"email": login.group(1), "password": login.group(2),
                                                   "csrf_token": token})
            assert response.status_code == 302
            overview = client.get("/")
            assert overview.status_code == 200
            assert "Overview" in overview.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_ctrl_c_while_a_delivery_runs_stops_everything_in_order(tmp_path):
    """Ctrl-C reaches the whole foreground process group at once (here: SIGINT to the group of `up`, which
    leads its own). A delivery is mid-request: it finishes and is recorded, Redis outlives the worker (no
    Redis error, no traceback), nothing of the tree is left, and the exit status is 130 (ended by SIGINT)."""
    from tests.factories import make_order
    from tests.fakeplatform import FakePlatform

    port = free_port()
    env = _bare_env(SHOPRELAY_ALLOW_PRIVATE_URLS=LOCAL_FAKES)  # the fake platform listens on loopback
    with FakePlatform() as fake:
        process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "up", "--port", str(port)], cwd=tmp_path,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            wait_until(lambda: _healthy(port), timeout=40)
            with _api_with_a_webhook(tmp_path, env, port, fake) as api:
                fake.timeout_next(1, delay=4.0)  # the platform holds the request: the delivery job is running
                assert api.post("/api/v1/orders", json=make_order()).status_code == 202
            wait_until(lambda: any(record.fault for record in list(fake.requests)), timeout=30)
            tree = descendants(process.pid)
            assert len(tree) >= 4  # redis, web, worker, scheduler

            started = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            out, err = process.communicate(timeout=40)
            took = time.monotonic() - started
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        time.sleep(0.3)
        assert not [pid for pid in tree if alive(pid)], "processes outlived shoprelay up"
    assert "Traceback" not in out + err, err[-4000:]
    assert "could not connect to Redis" not in err, err[-4000:]
    assert process.returncode == 130, (process.returncode, err[-2000:])
    assert took < 30, took
    import sqlite3

    with sqlite3.connect(tmp_path / "instance" / "shoprelay.db") as connection:
        states = [row[0] for row in connection.execute("SELECT state FROM events WHERE name = 'placed_order'")]
    assert states == ["delivered"]  # the answer in hand was recorded before the worker left


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_up_demo_delivers_to_its_own_receiver_under_the_outbound_guard(tmp_path):
    """No allow list in the environment: `up --demo` allows exactly its own address and port, so the demo's
    webhook destination (this instance's /demo/webhook-sink) receives its events, and nothing else opens."""
    import sqlite3

    port = free_port()
    env = _bare_env()
    process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "up", "--demo", "--port", str(port)],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = tmp_path / "instance" / "shoprelay.db"

    def delivered() -> int:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT count(*) FROM events WHERE state = 'delivered'").fetchone()[0]

    try:
        wait_until(lambda: _healthy(port), timeout=60)
        wait_until(lambda: delivered() > 0, timeout=60)
        with sqlite3.connect(database) as connection:
            errors = [row[0] for row in connection.execute("SELECT error FROM delivery_requests WHERE error IS NOT NULL")]
        assert not [error for error in errors if "not allowed" in error], errors[:3]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class _TricklingCatalog(BaseHTTPRequestHandler):
    """A store export that arrives a line every half second until told to finish: a sync that runs as long
    as the test needs."""

    started = threading.Event()
    done = threading.Event()

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.end_headers()
        self.wfile.write(b"id,title,price,link\n")
        self.started.set()
        for n in range(120):
            if self.done.is_set():
                break
            self.wfile.write(f"sku-{n},Mug {n},9.50,https://shop.example/p/{n}\n".encode())
            self.wfile.flush()
            time.sleep(0.5)

    def log_message(self, *args: object) -> None:
        pass


def test_orders_reach_the_platform_while_a_long_sync_runs(tmp_path):
    """`up` runs a worker that only delivers beside the one on every queue: an order placed while the nightly
    sync is still reading the store's export reaches the platform within seconds, not after the sync."""
    from tests.factories import make_order
    from tests.fakeplatform import FakePlatform

    port = free_port()
    env = _bare_env(SHOPRELAY_ALLOW_PRIVATE_URLS=LOCAL_FAKES)
    export = ThreadingHTTPServer(("127.0.0.1", 0), _TricklingCatalog)
    threading.Thread(target=export.serve_forever, daemon=True).start()
    with FakePlatform() as fake:
        process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "up", "--port", str(port)], cwd=tmp_path,
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            wait_until(lambda: _healthy(port), timeout=40)
            with _api_with_a_webhook(tmp_path, env, port, fake) as api:
                source = api.post("/api/v1/sources", json={
                    "name": "Export", "kind": "csv", "location": f"http://127.0.0.1:{export.server_port}/products.csv"})
                assert source.status_code == 201, source.text
                assert api.post(f"/api/v1/sources/{source.json()['id']}/sync").status_code == 202
                assert _TricklingCatalog.started.wait(30), "the sync never fetched the export"
                time.sleep(1)  # both workers have looked at their queues since
                placed = time.monotonic()
                assert api.post("/api/v1/orders", json=make_order()).status_code == 202
                wait_until(lambda: any(not record.fault for record in list(fake.requests)), timeout=20)
                took = time.monotonic() - placed
                running = api.get(f"/api/v1/sources/{source.json()['id']}").json()
            assert not _TricklingCatalog.done.is_set()
            assert took < 15, took  # the export still trickles (60 s in all): the sync holds the other worker
            assert running["last_run"]["status"] in ("queued", "running"), running["last_run"]
        finally:
            _TricklingCatalog.done.set()
            export.shutdown()
            export.server_close()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
