"""shoprelay as it runs in production, as real processes: its own Redis server, the fake platforms, one
`shoprelay web`, two `shoprelay worker`, one `shoprelay scheduler`, on a SQLite file or a PostgreSQL database.

Every child runs in its own process group (kill -9 takes its children along) and is stopped in `close()`.
The app processes are supervised like `restart: unless-stopped` in docker-compose.yml: one that exits is
started again within half a second; exits the test did not cause are counted as crashes (with the log).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from tests.processes import free_port, stop_process, wait_until

REPO = Path(__file__).resolve().parents[2]
ORDER_EVENTS = ["placed_order", "ordered_product", "fulfilled_order", "cancelled_order", "refunded_order"]
LEASE_SECONDS = 6  # a killed worker's events come back after this long (default 300)
# The sweep every 3 s (default 60) and retries from 1 s (default 10, doubling): what waited for a minute's sweep
# or a 10-40 s backoff (scenario 2 drained 40 s after its load) comes due within seconds. The promises checked
# are the same, Retry-After's the stricter for it: a 1 s backoff after a 429 asking for 3 s must wait the 3 s.
SWEEP_SECONDS = 3
RETRY_BASE_SECONDS = 1


@dataclass
class Child:
    """One child process, restartable; its output appended to `log`."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    supervised: bool = False
    process: subprocess.Popen | None = None
    starts: int = 0
    crashes: list[str] = field(default_factory=list)
    held: bool = False  # stopped on purpose: the supervisor leaves it down
    _expected_exit: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
                out.write(f"\n=== start {self.starts + 1} at {time.time():.3f}\n".encode())
                out.flush()
                self.process = subprocess.Popen(self.args, env=self.env, cwd=REPO, stdout=out,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
            self.starts += 1
            self.held = False
            self._expected_exit = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    def kill(self, *, hold: bool = False) -> None:
        """kill -9 the whole process group; the supervisor restarts it unless `hold`."""
        with self._lock:
            self._expected_exit = True
            self.held = hold
            self.signal_group(signal.SIGKILL)
            if self.process is not None:
                self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM to the group, not waiting: `stop()` waits (several children stop side by side)."""
        with self._lock:
            self._expected_exit = True
            self.held = True
            if self.process is not None and self.process.poll() is None:
                self.signal_group(signal.SIGTERM)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; left down, and reaped."""
        with self._lock:
            self._expected_exit = True
            self.held = True
            if self.process is None:
                return
            stop_process(self.process, grace, group=True)

    def supervise(self) -> None:
        """Restart it if it exited and nobody holds it down; remember exits the test did not cause."""
        if not self.supervised or self.held or self.process is None or self.process.poll() is None:
            return
        if not self._expected_exit:
            self.crashes.append(f"{self.name} exited with {self.process.returncode}: {self.tail(1500)}")
        self.start()

    def tail(self, size: int = 3000) -> str:
        try:
            data = self.log.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode("utf-8", "replace")


class Stack:
    """The processes of one scenario. `Stack(folder, database_url)` then `start()`; `close()` stops all."""

    def __init__(self, folder: Path, database_url: str, *, schema_from: Path | None = None, **settings: str) -> None:
        self.folder = folder
        self.database_url = database_url
        self.schema_from = schema_from  # a SQLite file `shoprelay db upgrade` made: copied instead of upgrading again
        self.redis_port, self.fake_port, self.web_port = free_port(), free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.fake_url = f"http://127.0.0.1:{self.fake_port}"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.api_key = ""
        self.destination_id = 0
        self.env = _app_env(database_url, self.redis_url, folder / "instance", settings)
        logs = folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        python = [sys.executable]
        self.redis = Child("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", str(folder)],
                           dict(os.environ), logs / "redis.log")
        self.fake = Child("fake", [*python, "-m", "tests.fakeplatform", "--port", str(self.fake_port),
                                   "--no-bodies"], dict(os.environ, PYTHONPATH=str(REPO)), logs / "fake.log")
        cli = [*python, "-m", "webapp.cli"]
        self.web = Child("web", [*cli, "web", "--port", str(self.web_port)], self.env, logs / "web.log", True)
        self.workers = [Child(f"worker{n}", [*cli, "worker"], self.env, logs / f"worker{n}.log", True)
                        for n in (1, 2)]
        self.scheduler = Child("scheduler", [*cli, "scheduler"], self.env, logs / "scheduler.log", True)
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)

    @property
    def app_children(self) -> list[Child]:
        return [self.web, *self.workers, self.scheduler]

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self, destination: dict[str, Any] | None = None) -> Stack:
        """Redis and the fake, the schema (`shoprelay db upgrade`), then web, workers and scheduler booting
        while an API key is made (`shoprelay apikeys create`); a Klaviyo destination through the public API;
        returns once both workers are registered in Redis (the machine may be busy: booting takes seconds)."""
        self.redis.start()
        self.fake.start()
        if self.schema_from is not None and self.database_url.startswith("sqlite:///"):
            shutil.copyfile(self.schema_from, self.database_url.removeprefix("sqlite:///"))
        else:
            self._cli("db", "upgrade")
        for child in self.app_children:
            child.start()
        self.api_key = self._cli("apikeys", "create", "reliability").strip().splitlines()[-1]
        self.wait_redis()
        wait_until(lambda: _answers(f"{self.fake_url}/_control/summary"), timeout=30)
        self.wait_healthy(90)
        body = {"name": "Klaviyo", "kind": "klaviyo", "credentials": {"api_key": "pk_test"},
                "base_url": f"{self.fake_url}/klaviyo", "events": ORDER_EVENTS} | (destination or {})
        response = httpx.post(f"{self.web_url}/api/v1/destinations", json=body, headers=self.auth, timeout=30)
        assert response.status_code == 201, response.text
        self.destination_id = response.json()["id"]
        self._supervisor.start()
        self.wait_workers(90)
        return self

    def wait_workers(self, timeout: float) -> None:
        """Until every worker process is registered as an RQ worker."""
        from redis import Redis
        from rq import Worker

        with Redis.from_url(self.redis_url, socket_timeout=5) as redis:
            wait_until(lambda: Worker.count(connection=redis) >= len(self.workers), timeout=timeout)

    def close(self) -> None:
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=5)
        for child in self.app_children:  # side by side: one grace period for all, not one each
            child.terminate()
        for child in (*self.app_children, self.fake, self.redis):
            child.stop()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            for child in self.app_children:
                child.supervise()

    def _cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "webapp.cli", *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"shoprelay {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    # --- questions and faults ------------------------------------------------------------------

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def health(self) -> tuple[int, Any]:
        try:
            response = httpx.get(f"{self.web_url}/healthz", timeout=5)
        except httpx.HTTPError as exc:
            return 0, repr(exc)
        return response.status_code, response.json() if response.content else None

    def wait_healthy(self, timeout: float) -> None:
        last: list[tuple[int, Any]] = []

        def healthy() -> bool:
            last[:] = [self.health()]
            return last[0][0] == 200

        try:
            wait_until(healthy, timeout=timeout)
        except AssertionError:
            raise AssertionError(f"/healthz not green within {timeout:.0f} s; last answer: {last}") from None

    def wait_redis(self, timeout: float = 20) -> None:
        from redis import Redis

        def ping() -> bool:
            with contextlib.suppress(Exception), Redis.from_url(self.redis_url, socket_timeout=1) as redis:
                return bool(redis.ping())
            return False

        wait_until(ping, timeout=timeout)

    def queue_diagnostics(self) -> str:
        """What Redis says about delivery when work is stuck: signal keys (value, TTL), queue lengths,
        started and failed jobs, registered workers."""
        from redis import Redis
        from rq import Queue, Worker

        try:
            with Redis.from_url(self.redis_url, socket_timeout=5) as redis:
                signals = {key.decode(): (redis.get(key), redis.ttl(key)) for key in redis.keys("shoprelay:signal:*")}
                queue = Queue("delivery", connection=redis)
                return (f"signals {signals}; delivery queue {queue.count}, started {queue.started_job_registry.count}"
                        f", failed {queue.failed_job_registry.count}; workers "
                        f"{[(w.name, w.get_state()) for w in Worker.all(connection=redis)]}")
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not hide the failure it explains
            return f"Redis not readable: {exc!r}"

    def flush_redis(self) -> None:
        from redis import Redis

        with Redis.from_url(self.redis_url, socket_timeout=5) as redis:
            redis.flushall()

    def fault(self, kind: str, **spec: Any) -> None:
        """A fault rule at the fake (see tests/fakeplatform/control.py)."""
        response = httpx.post(f"{self.fake_url}/_control/fault", json={"kind": kind, **spec}, timeout=10)
        assert response.status_code == 204, response.text

    def fake_summary(self) -> dict[str, Any]:
        return httpx.get(f"{self.fake_url}/_control/summary", timeout=30).json()

    def crashes(self) -> list[str]:
        return [crash for child in self.app_children for crash in child.crashes]

    def post_json(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.web_url}{path}", json=body, headers=self.auth, timeout=30)

    def get_json(self, path: str) -> Any:
        response = httpx.get(f"{self.web_url}{path}", headers=self.auth, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


def upgraded_sqlite(folder: Path) -> Path:
    """A SQLite file with the schema `shoprelay db upgrade` makes (every migration, as production gets it), for
    each SQLite scenario to start from a copy: the upgrade costs seconds of a busy machine, a copy nothing."""
    path = folder / "schema.db"
    env = _app_env(f"sqlite:///{path}", "redis://127.0.0.1:9/0", folder / "instance", {})
    done = subprocess.run([sys.executable, "-m", "webapp.cli", "db", "upgrade"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"shoprelay db upgrade: {done.stdout}{done.stderr}"
    assert not Path(f"{path}-wal").exists() or not Path(f"{path}-wal").stat().st_size, "WAL left unmerged"
    return path


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _app_env(database_url: str, redis_url: str, instance: Path, settings: dict[str, str]) -> dict[str, str]:
    """The environment of every shoprelay process: this scenario's database, Redis and instance only."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") and not key.startswith("SHOPRELAY_")}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SHOPRELAY_INSTANCE_PATH": str(instance),
                "SECRET_KEY": "reliability-secret", "SHOPRELAY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "SHOPRELAY_LOG_LEVEL": "WARNING", "SHOPRELAY_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
                "SHOPRELAY_SWEEP_SECONDS": str(SWEEP_SECONDS), "SHOPRELAY_RETRY_BASE_SECONDS": str(RETRY_BASE_SECONDS),
                "SHOPRELAY_DELIVERY_TIMEOUT": "5", "SHOPRELAY_ALLOW_PRIVATE_URLS": "127.0.0.1,localhost",
                "PYTHONPATH": str(REPO)})
    env.update({f"SHOPRELAY_{key.upper()}": value for key, value in settings.items()})
    return env
