"""Fake generic webhook receiver (any path under /webhook): checks shoprelay's signature, de-duplicates.

Signature contract: `X-Shoprelay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
with the destination's secret; several `v1=` entries are allowed (secret rotation) and any
match passes. Deliveries are keyed by `X-Shoprelay-Id`, so a redelivery is counted, not stored twice.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import TYPE_CHECKING

from tests.fakeplatform.records import NOT_JSON, Incoming, Reply

if TYPE_CHECKING:
    from tests.fakeplatform.server import FakePlatform

KIND = "webhook"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a correct sender produces (tests use it to build valid requests)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def error_reply(status: int, detail: str) -> Reply:
    return Reply.json(status, {"error": detail})


def throttled_reply(retry_after: float) -> Reply:
    reply = error_reply(429, "Too many requests.")
    reply.headers["Retry-After"] = str(math.ceil(retry_after))
    return reply


def unauthorized_reply() -> Reply:
    return error_reply(401, "Invalid signature.")


def signature_problem(header: str | None, body: bytes, secret: str, tolerance: float) -> str | None:
    """Why the signature header does not prove the body came from the secret's holder, or None."""
    if not header:
        return "Missing X-Shoprelay-Signature."
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not timestamp.isdigit() or not candidates:
        return "Malformed X-Shoprelay-Signature."
    if abs(time.time() - int(timestamp)) > tolerance:
        return "Signature timestamp outside the tolerance window."
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        return "Invalid signature."
    return None


def handle(request: Incoming, fake: FakePlatform) -> Reply:
    if fake.faults.auth_broken(KIND):
        return unauthorized_reply()
    if request.method != "POST":
        return error_reply(405, "Only POST is accepted.")
    problem = signature_problem(request.headers.get("x-shoprelay-signature"), request.body,
                                fake.webhook_secret, fake.webhook_tolerance)
    if problem:
        return error_reply(401, problem)
    delivery_id = request.headers.get("x-shoprelay-id")
    if not delivery_id:
        return error_reply(400, "Missing X-Shoprelay-Id.")
    body = request.json()
    if body is NOT_JSON:
        return error_reply(400, "The body must be JSON.")
    with fake.lock:
        if delivery_id in fake.webhook_deliveries:
            fake.webhook_duplicates += 1
        else:
            fake.webhook_deliveries[delivery_id] = body
    return Reply.json(200, {"received": delivery_id})
