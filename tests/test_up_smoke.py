"""`shoprelay up` on a bare directory: embedded Redis, migrations, first admin, web+worker+scheduler."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.processes import LOCAL_FAKES, alive, descendants, free_port, wait_until

pytestmark = pytest.mark.slow


def test_up_runs_everything_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not key.startswith("SHOPRELAY_")}
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
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not key.startswith("SHOPRELAY_")}
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
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not key.startswith("SHOPRELAY_")}
    env["SHOPRELAY_ALLOW_PRIVATE_URLS"] = LOCAL_FAKES  # the fake platform listens on loopback
    with FakePlatform() as fake:
        process = subprocess.Popen([sys.executable, "-m", "webapp.cli", "up", "--port", str(port)], cwd=tmp_path,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            wait_until(lambda: _healthy(port), timeout=40)
            key = subprocess.run([sys.executable, "-m", "webapp.cli", "apikeys", "create", "ctrl-c"], cwd=tmp_path,
                                 env=env, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                              headers={"Authorization": f"Bearer {key}"}) as api:
                created = api.post("/api/v1/destinations", json={
                    "name": "hook", "kind": "webhook",
                    "credentials": {"url": fake.base_url("webhook"), "secret": fake.webhook_secret}})
                assert created.status_code == 201, created.text
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
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not key.startswith("SHOPRELAY_")}
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
