"""Where a benchmark run's CPU went, by process kind: the delivery workers, PostgreSQL, the fake platform.

On a machine of a few cores the workers, the database and the fake platform share the CPUs, so a
throughput figure alone cannot say whether the workers or the machine set the pace. A thread polls
/proc (Linux) a few times a second and sums each process's CPU time (user + system) from the moment
metering starts; a process that starts later (a database backend, a worker) counts from zero, and one
that exits counts up to its last poll (a poll's worth, at most, is lost).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
POLL_SECONDS = 0.2


def delivery_kind(command: str) -> str | None:
    """The kinds a delivery run reports; None for processes it does not count."""
    if command.startswith("postgres"):
        return "postgresql"
    if "webapp.cli worker" in command:
        return "workers"
    if "tests.fakeplatform" in command:
        return "fake platform"
    return None


def _cpu_seconds(pid: str) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def _command(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CpuMeter:
    """`with CpuMeter() as meter: ...` then `meter.seconds` = {kind: CPU seconds used while metering}."""

    def __init__(self, kind_of: Callable[[str], str | None] = delivery_kind) -> None:
        self.kind_of = kind_of
        self.seconds: dict[str, float] = {}
        self._seen: dict[str, tuple[str, float, float]] = {}  # pid -> (kind, at start, last seen)
        self._ended: dict[str, float] = {}  # kind -> CPU of processes whose pid was taken by a new one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self.available = Path("/proc/self/stat").exists()

    def __enter__(self) -> CpuMeter:
        if self.available:
            self._poll(first=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.available:
            return
        self._stop.set()
        self._thread.join()
        self._poll(first=False)
        totals = dict(self._ended)
        for kind, start, last in self._seen.values():
            totals[kind] = totals.get(kind, 0.0) + last - start
        self.seconds = totals

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._poll(first=False)

    def _poll(self, *, first: bool) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            used = _cpu_seconds(pid)
            if used is None:
                continue
            known = self._seen.get(pid)
            if known is not None and used >= known[2]:
                self._seen[pid] = (known[0], known[1], used)
                continue
            if known is not None:  # the pid now belongs to a new process
                self._ended[known[0]] = self._ended.get(known[0], 0.0) + known[2] - known[1]
                first = False
            kind = self.kind_of(_command(pid))
            if kind is not None:
                self._seen[pid] = (kind, used if first else 0.0, used)

    def per_thousand(self, events: int) -> dict[str, float]:
        """CPU milliseconds per 1,000 events, by kind."""
        return {kind: seconds * 1_000_000 / events for kind, seconds in self.seconds.items()} if events else {}
