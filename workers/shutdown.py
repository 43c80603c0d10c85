"""A worker process's warm-shutdown request, visible to the job it is running.

RQ's warm shutdown lets the current job finish; a delivery job may have up to its whole time budget left
(30 s, longer under a platform's rate limit). Long jobs check `requested()` and stop at their next safe point
(a delivery run records the answers in hand, hands back unsent events and signals a follow-up job), so a
stopping worker leaves within about a second and loses nothing.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    """For tests, and a worker object started again in the same process."""
    _requested.clear()
