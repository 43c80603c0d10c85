"""Fake generic webhook receiver (any path under /webhook): checks shoprelay's signatures, de-duplicates.

Signature contracts, both with the destination's secret:
- `X-Shoprelay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`; several `v1=` entries
  are allowed (secret rotation) and any match passes. Required.
- Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), verified with the
  `standardwebhooks` package exactly as a receiver following the README would: `Webhook(secret)` for a
  `whsec_` secret, `Webhook(secret.encode())` for a plain one. Every request's result is recorded
  (`standard_checks(fake)`); a request carrying the headers that does not verify is refused with 401, one
  without them (an older sender, the fake's own tests) is let through and recorded as unchecked.
Deliveries are keyed by `webhook-id` (else `X-Shoprelay-Id`), so a redelivery is counted, not stored twice,
while an order's placed and fulfilled events (one order id) are two deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

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


@dataclass(frozen=True, slots=True)
class StandardCheck:
    """One request's Standard Webhooks verification: ok None means it carried no Standard Webhooks headers."""

    webhook_id: str | None
    timestamp: str | None
    signatures: int
    ok: bool | None
    error: str | None = None


def standard_checks(fake: FakePlatform) -> list[StandardCheck]:
    """Every webhook request's Standard Webhooks result, in arrival order (kept for the fake's lifetime)."""
    with fake.lock:
        return list(_checks(fake))


def _checks(fake: FakePlatform) -> list[StandardCheck]:
    return fake.__dict__.setdefault("webhook_standard_checks", [])


def receiver(secret: str) -> Webhook:
    """What the README tells a receiver to build from the destination's secret."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def standard_check(headers: dict[str, str], body: bytes, secret: str) -> StandardCheck:
    webhook_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    signature = headers.get("webhook-signature")
    if not (webhook_id or timestamp or signature):
        return StandardCheck(None, None, 0, None, "no Standard Webhooks headers")
    count = len(signature.split(" ")) if signature else 0
    try:
        receiver(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError) as exc:  # ValueError: bad base64
        return StandardCheck(webhook_id, timestamp, count, False, str(exc))
    return StandardCheck(webhook_id, timestamp, count, True)


def handle(request: Incoming, fake: FakePlatform) -> Reply:
    if fake.faults.auth_broken(KIND):
        return unauthorized_reply()
    if request.method != "POST":
        return error_reply(405, "Only POST is accepted.")
    problem = signature_problem(request.headers.get("x-shoprelay-signature"), request.body,
                                fake.webhook_secret, fake.webhook_tolerance)
    if problem:
        return error_reply(401, problem)
    check = standard_check(request.headers, request.body, fake.webhook_secret)
    with fake.lock:
        _checks(fake).append(check)
    if check.ok is False:
        return error_reply(401, f"Standard Webhooks: {check.error}.")
    if not request.headers.get("x-shoprelay-id"):
        return error_reply(400, "Missing X-Shoprelay-Id.")
    delivery_id = check.webhook_id or request.headers["x-shoprelay-id"]
    body: Any = request.json()
    if body is NOT_JSON:
        return error_reply(400, "The body must be JSON.")
    with fake.lock:
        if delivery_id in fake.webhook_deliveries:
            fake.webhook_duplicates += 1
        else:
            fake.webhook_deliveries[delivery_id] = body
    return Reply.json(200, {"received": delivery_id})
