"""Live progress of long work (sync runs, feed builds, imports) kept in Redis while it runs.

The database row gets the final figures in the same transaction as the work; Redis carries the
moving numbers so a page can show them without the worker writing to a table it holds locked.
"""

from __future__ import annotations

import contextlib

from flask import current_app
from redis.exceptions import RedisError

TTL_SECONDS = 6 * 3600


def _key(kind: str, item_id: int) -> str:
    return f"shoprelay:progress:{kind}:{item_id}"


def set_progress(kind: str, item_id: int, done: int, total: int | None = None, note: str = "") -> None:
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    if not url:
        return
    with contextlib.suppress(RedisError):  # progress is a nicety; the work itself must not fail for it
        connect(url).set(_key(kind, item_id), f"{done}|{'' if total is None else total}|{note}", ex=TTL_SECONDS)


def get_progress(kind: str, item_id: int) -> tuple[int, int | None, str] | None:
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    try:
        raw = connect(url).get(_key(kind, item_id))
    except RedisError:
        return None
    if not raw:
        return None
    done, total, note = raw.decode().split("|", 2)
    return int(done), (int(total) if total else None), note
