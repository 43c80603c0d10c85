"""Helpers for tests that run real child processes: free ports, process trees, waiting."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
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


def wait_until(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll `predicate` every 50 ms until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
