"""What the open collector refuses before it reads a body: foreign origins, bots, floods.

Every refusal is a 4xx in the API's error shape; a Redis that cannot be reached lets events through
(losing a rate limit is better than losing the store's events).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from redis.exceptions import RedisError

from webapp.models import utcnow
from webapp.services.onsite.settings import origin_of

# Crawlers, link previews, uptime checks, headless automation and HTTP libraries: none of them is a shopper.
# (Playwright-driven Chromium says "HeadlessChrome" only in headless shell mode; the tests use full Chromium.)
BOT_PATTERN = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|embedly|preview|headlesschrome|phantomjs|"
    r"lighthouse|pingdom|uptime|monitor|curl/|wget/|python-requests|python-httpx|aiohttp|go-http-client|"
    r"java/|okhttp|libwww|httpclient|scrapy|node-fetch|axios/", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


def is_bot(user_agent: str | None) -> bool:
    """No user agent, or one that names a crawler or an HTTP library."""
    return not user_agent or bool(BOT_PATTERN.search(user_agent))


def allowed_origins() -> tuple[str, ...]:
    return tuple(current_app.config.get("ONSITE_ORIGINS") or ())


def origin_allowed(origin: str | None) -> bool:
    """Any origin when SHOPRELAY_ONSITE_ORIGINS is unset; else only the listed ones (a missing Origin too:
    browsers always send one on a cross-origin POST, so its absence means a script, not a store page)."""
    origins = allowed_origins()
    if not origins:
        return True
    return bool(origin) and origin != "null" and origin_of(origin) in origins


def cors_origin(origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin to answer: `*` when any origin may post, else the caller's own."""
    if not allowed_origins():
        return "*"
    return origin_of(origin) if origin and origin_allowed(origin) else None


def _redis():  # noqa: ANN202
    from workers.queue import connect

    url = current_app.config.get("REDIS_URL")
    return connect(url) if url else None


def over_budget(address: str, visitor: str | None, events: int = 1,
                also: Callable[[Any], None] | None = None) -> tuple[Refusal | None, list[Any]]:
    """Per client address and per visitor, events per minute; `also` queues more commands on the same Redis
    pipeline (one round trip for the budget and the browser's identity). Returns the refusal, if any, and
    the answers to `also`'s commands (empty without Redis)."""
    redis = _redis()
    if redis is None:
        return None, []
    now = utcnow().timestamp()
    minute, into = divmod(now, 60)
    names = [f"ip:{address}"] + ([f"visitor:{visitor}"] if visitor else [])
    try:
        pipe = redis.pipeline(transaction=False)
        for name in names:
            pipe.incrby(f"shoprelay:onsite:{name}:{int(minute)}", events)
            pipe.expire(f"shoprelay:onsite:{name}:{int(minute)}", 120)
            pipe.get(f"shoprelay:onsite:{name}:{int(minute) - 1}")
        if also is not None:
            also(pipe)
        answers = pipe.execute()
    except RedisError:
        return None, []
    counts = [sliding_count(int(answers[3 * i]), int(answers[3 * i + 2] or 0), into / 60)
              for i in range(len(names))]
    extra = answers[3 * len(names):]
    if counts[0] > current_app.config["ONSITE_IP_PER_MINUTE"]:
        return Refusal(429, "too many events from this address; slow down"), extra
    if len(counts) > 1 and counts[1] > current_app.config["ONSITE_VISITOR_PER_MINUTE"]:
        return Refusal(429, "too many events from this visitor; slow down"), extra
    return None, extra


def sliding_count(current: int, previous: int, into_minute: float) -> float:
    """Events in the last sixty seconds, estimated from this minute's count and the share of the previous
    minute still inside the window: a fixed per-minute window let a flood spend two budgets across a
    minute's turn."""
    return current + previous * (1.0 - into_minute)
