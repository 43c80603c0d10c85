"""Catalog calls under the same rules as event delivery: the account's rate limit and its "wait".

Every call takes a slot from each window its platform names (platforms.py: on Klaviyo the catalog's own, jobs
75/s and 750/min, job status and listings 350/s and 3,500/min; on Sendlane half the account's window, then the
account's window that order events use too), waits out the account's
pause (a 429 anywhere on the account stops catalog calls too; a 429 here stops event delivery too), retries
answers that may succeed later with backoff, and is logged in the destination's request log, secrets redacted.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from redis import Redis

from webapp.extensions import db
from webapp.models import DeliveryRequest, Destination
from webapp.services.platform.crypto import redact
from workers import shutdown
from workers.catalogs.platforms import PLATFORMS, Window
from workers.delivery.engine import build_adapter
from workers.delivery.http_client import SendResult, get_client, send
from workers.delivery.outcomes import MAX_RESPONSE_BODY, masked, request_text
from workers.delivery.pause import Pause, throttled
from workers.destinations.base import Outcome, PreparedRequest
from workers.rate_limit import Limits, RateLimiter

ATTEMPTS = 6
BACKOFF = (1.0, 30.0)  # first and longest wait between attempts of one call (seconds)
LONGEST_PAUSE = 15 * 60  # a longer "wait" ends the run: the next one continues from the ledger


class CatalogRefused(Exception):
    """The platform refused a call for good (4xx other than 429), or credentials fail (401/403)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def credentials(self) -> bool:
        """The account itself was refused: no later call of the run can succeed."""
        return self.status in (401, 403)


class CatalogUnavailable(Exception):
    """The platform kept failing, or asked to wait longer than a run waits, or the worker is stopping."""


class CatalogClient:
    def __init__(self, destination: Destination, redis: Redis | None, timeout: float = 30.0) -> None:
        self.destination_id = destination.id
        self.adapter = build_adapter(destination)
        self.pause = Pause(redis, self.adapter.account(), destination.id, destination.kind)
        windows = PLATFORMS[destination.kind].windows
        self.limiters = {} if redis is None else {
            method: [self._limiter(redis, window, destination.rate_limits or {}) for window in chain]
            for method, chain in windows.items()}
        self.sender = get_client(timeout)
        self.calls = 0

    def call(self, method: str, path: str, content: bytes | None = None, entries: int = 0) -> SendResult:
        """One call, retried until the platform answers 2xx; raises when it refuses or keeps failing."""
        request = self.adapter.catalog_request(method, path, content)
        message = ""
        for attempt in range(ATTEMPTS):
            self._wait_turn(method)
            result = send(self.sender, request)
            self.calls += 1
            classification = masked(self.adapter.classify(result.status, result.headers, result.body, result.error),
                                    self.adapter.secrets())  # its message becomes the run's error, shown everywhere
            self._log(request, result, classification.outcome, classification.message, entries)
            if classification.outcome is Outcome.DELIVERED:
                if self.pause.streak:
                    self.pause.reset_backoff()
                return result
            message = classification.message
            if throttled(classification, result.status):
                self.pause.start(classification.retry_after)
                continue
            if classification.outcome is not Outcome.RETRY:
                raise CatalogRefused(message, result.status)
            self.sleep(min(BACKOFF[1], BACKOFF[0] * 2 ** attempt) * random.uniform(0.8, 1.2))
        raise CatalogUnavailable(f"no success after {ATTEMPTS} attempts: {message}")

    def _wait_turn(self, method: str) -> None:
        """Until the account's pause ends (Redis, else the database copy), then a slot of the catalog window."""
        while True:
            db_until = db.session.scalar(sa.select(Destination.rate_limited_until).where(
                Destination.id == self.destination_id))
            db.session.rollback()  # a read must not keep a transaction (and SQLite's snapshot) open
            until = self.pause.check(db_until)
            if until is None:
                break
            wait = (until - datetime.now(UTC)).total_seconds()
            if wait > LONGEST_PAUSE:
                raise CatalogUnavailable(f"the platform asked to wait until {until.isoformat(timespec='seconds')}")
            self.sleep(wait + 0.01)
        for limiter in self.limiters.get(method, []):
            if not limiter.acquire(max_wait=120.0):
                raise CatalogUnavailable("no slot in the account's catalog rate limit within 2 minutes")

    def _limiter(self, redis: Redis, window: Window, delivery_limits: dict) -> RateLimiter:
        limits = Limits.from_dict(window.limits if window.limits is not None else delivery_limits)
        scaled = Limits(limits.burst_per_second * window.share, limits.per_minute * window.share)
        return RateLimiter(redis, f"{self.pause.account}:{window.suffix}", scaled, self.pause)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + max(0.0, seconds)
        while (left := end - time.monotonic()) > 0:
            if shutdown.requested():
                raise CatalogUnavailable("the worker is stopping; the next run continues")
            time.sleep(min(left, 0.5))

    def _log(self, request: PreparedRequest, result: SendResult, outcome: Outcome, message: str,
             entries: int) -> None:
        secrets = self.adapter.secrets()
        db.session.add(DeliveryRequest(
            destination_id=self.destination_id, duration_ms=result.duration_ms, method=request.method,
            url=redact(request.url, secrets), http_status=result.status, outcome=str(outcome),
            request_body=request_text(request, secrets) or None,
            response_body=redact(result.body[:MAX_RESPONSE_BODY].decode("utf-8", "replace"), secrets) or None,
            error=None if outcome is Outcome.DELIVERED else redact(message, secrets)[:2000], event_count=entries))
        db.session.commit()
