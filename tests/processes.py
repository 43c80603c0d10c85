"""Helpers for tests that run real child processes: free ports, process trees, waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# What a shoprelay process started by the tests may call although it is loopback (the suite's fake platforms,
# sources and receivers): SHOPRELAY_ALLOW_PRIVATE_URLS / ALLOW_PRIVATE_URLS of every app and child process.
LOCAL_FAKES = "127.0.0.1,localhost,::1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Every process whose parent chain leads to pid (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_process(process: subprocess.Popen, grace: float = 10.0, *, sig: int = signal.SIGTERM,
                 group: bool = False) -> int:
    """End a child for good and reap it: `sig` (SIGTERM by default; to its process group with `group`), up to
    `grace` seconds to exit, then SIGKILL; always waited for, so no Popen is collected while its child runs or
    sits unreaped (Popen.__del__'s "subprocess N is still running" ResourceWarning, an error in this suite).
    Pipes the caller did not read are closed. Returns the exit code."""
    if process.poll() is None:
        _signal(process, sig, group)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    if group:  # whatever is left of the group, even when its leader is gone
        _signal(process, signal.SIGKILL, True)
    if process.poll() is None:
        _signal(process, signal.SIGKILL, False)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # unkillable (D state): at least never leave it to __del__ unreaped
        process.returncode = -signal.SIGKILL
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return process.returncode


def _signal(process: subprocess.Popen, sig: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, sig)
        elif process.returncode is None:
            process.send_signal(sig)


@contextlib.contextmanager
def stopped_at_exit(process: subprocess.Popen, grace: float = 10.0, **options: object) -> Iterator[subprocess.Popen]:
    """`with stopped_at_exit(Popen(...)) as process:` — `stop_process` on leaving, however the block ends."""
    try:
        yield process
    finally:
        stop_process(process, grace, **options)  # type: ignore[arg-type]


# The safety net of tests/conftest.py (`pytest_runtest_protocol`): every Popen made while a test runs is kept
# (a strong reference, so none is collected before the net looked at it), with the phase that made it.
# After the test's teardown, each one that exited is reaped, and each one its body started that still runs is
# stopped (SIGTERM, SIGKILL, wait): a test or helper that forgot can no longer end in Popen.__del__'s
# "subprocess N is still running" (a PytestUnraisableExceptionWarning in whichever test the collection hit).
# Ones made during setup that still run belong to fixtures (maybe module- or session-scoped): left alone.
_started: list[tuple[str, subprocess.Popen]] = []
_phase: list[str] = []
_popen_init = subprocess.Popen.__init__


def _tracked_init(self: subprocess.Popen, *args: object, **kwargs: object) -> None:
    _popen_init(self, *args, **kwargs)  # type: ignore[arg-type]
    if _phase:
        _started.append((_phase[-1], self))


def track_popens() -> None:
    """Install the tracking (idempotent)."""
    if subprocess.Popen.__init__ is not _tracked_init:
        subprocess.Popen.__init__ = _tracked_init  # type: ignore[method-assign]


@contextlib.contextmanager
def in_phase(name: str) -> Iterator[None]:
    """Popens made inside are remembered as made in phase `name` (setup, call, teardown)."""
    _phase.append(name)
    try:
        yield
    finally:
        _phase.pop()


def reap_leftovers() -> list[str]:
    """The net's sweep after a test: reap exited children, stop what the test's body left running; forget all.
    Returns a line per child it had to stop."""
    stopped = []
    try:
        for phase, process in _started:
            if process.poll() is None and phase == "call":
                stopped.append(f"pid {process.pid} {process.args!r}"[:300])
                stop_process(process, grace=5.0)
    finally:
        _started.clear()
    return stopped


def wait_until(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll `predicate` every 50 ms until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
