"""Generic signed webhook: every canonical event, as JSON, to the user's URL.

Two signature schemes ride on every request, both over the exact body bytes:

- shoprelay's own (Stripe's shape): `X-Shoprelay-Signature: t=<unix>,v1=<hex>` where hex is HMAC-SHA256 of
  "<t>.<body>", keyed with the secret string as given (whsec_ prefix and all), as it always was;
- Standard Webhooks (standardwebhooks.com, what Svix sends and every language has a verifier for):
  `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<t>.<body>">`.

The Standard Webhooks key is what `standardwebhooks.Webhook(secret)` derives on the receiver: for a
`whsec_<base64>` secret the base64-decoded part; for any other (plain) secret its own UTF-8 bytes, so a
receiver verifies with `Webhook(secret.encode())` or, equivalently, `Webhook("whsec_" + base64(secret))`.
While a secret is being rotated (`previous_secret` in the credentials) both secrets sign, in both schemes,
so receivers can switch at leisure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
import uuid
from decimal import Decimal
from typing import Any

import orjson

from workers.destinations import register
from workers.destinations.base import (
    ALL_EVENTS,
    BuildResult,
    DestinationAdapter,
    OutboundEvent,
    PreparedRequest,
)

SIGNATURE_HEADER = "X-Shoprelay-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
STANDARD_PREFIX = "whsec_"
SECRET_FIELDS = ("secret", "previous_secret")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={sign(secret, timestamp, body)}" for secret in secrets)])


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = DEFAULT_TOLERANCE_SECONDS,
                     *, now: float | None = None) -> bool:
    """True when one `v1=` in `header` is `secret`'s signature of `body` and `t` is within `tolerance`."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# --- Standard Webhooks -----------------------------------------------------------------------------

def standard_secret_problem(secret: str) -> str | None:
    """Why a `whsec_` secret cannot key Standard Webhooks signatures (None when it can, or is a plain secret).

    Strict on purpose: the `standardwebhooks` package decodes leniently (it drops characters outside the
    base64 alphabet), so a URL-safe or mistyped secret would verify there but nowhere else.
    """
    if not secret.startswith(STANDARD_PREFIX):
        return None
    encoded = secret[len(STANDARD_PREFIX):]
    if not _BASE64.fullmatch(encoded):
        return ("a whsec_ secret is whsec_ followed by standard base64 (A-Z, a-z, 0-9, +, /, = padding); "
                "give a plain secret without the whsec_ prefix otherwise")
    unpadded = encoded.rstrip("=")
    try:
        key = base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "the part after whsec_ is not valid base64 (its length cannot be decoded)"
    if not key:
        return "the part after whsec_ decodes to an empty key"
    return None


def standard_key(secret: str) -> bytes:
    """The HMAC key of `webhook-signature`, byte for byte what `standardwebhooks.Webhook(...)` uses.

    `whsec_<base64>`: the decoded part (padding added as the package does). Anything else, and a legacy
    stored `whsec_` secret that does not decode: the secret's UTF-8 bytes (`Webhook(secret.encode())`).
    """
    if secret.startswith(STANDARD_PREFIX) and standard_secret_problem(secret) is None:
        return base64.b64decode(secret[len(STANDARD_PREFIX):] + "==")
    return secret.encode()


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_headers(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` (one `v1,` entry per secret, space-separated)."""
    signatures = " ".join(standard_signature(standard_key(secret), message_id, timestamp, body)
                          for secret in secrets)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


def message_id(event: OutboundEvent) -> str:
    """The receiver's idempotency key: unique per event, the same on every retry of it.

    Not the unique id alone: an order's placed, fulfilled and refunded events share the order id as their
    unique id, and a receiver de-duplicating on `webhook-id` would drop all but the first.
    """
    return f"{event.name}:{event.unique_id}"


def _plain(value: Any) -> Any:
    """orjson's fallback: money that arrives as Decimal leaves as a JSON number."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


# Webhook event names that differ from the canonical name (receivers subscribe to `contact.erased`).
WEBHOOK_NAMES = {"contact_erased": "contact.erased"}


def event_document(event: OutboundEvent) -> dict[str, Any]:
    return {"id": event.unique_id, "event": WEBHOOK_NAMES.get(event.name, event.name),
            "occurred_at": event.occurred_at.isoformat(), "historical": event.historical, "data": event.payload}


@register
class WebhookAdapter(DestinationAdapter):
    kind = "webhook"
    label = "Signed webhook"
    default_base_url = ""
    supported_events = frozenset(ALL_EVENTS)
    credential_fields = ("url", "secret")
    default_rate_limits = {"burst_per_second": 20, "per_minute": 1200}
    max_events_per_request = 1

    def __init__(self, credentials: dict[str, str], base_url: str | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        super().__init__(credentials, base_url, settings)
        self.url = base_url or credentials["url"]  # a base_url override (tests, proxies) wins

    @classmethod
    def credential_problems(cls, credentials: dict[str, str]) -> dict[str, str]:
        """Credential field -> why it cannot be used (checked when a destination is saved)."""
        problems = {}
        for name in SECRET_FIELDS:
            problem = standard_secret_problem(credentials.get(name) or "")
            if problem:
                problems[name] = problem
        return problems

    def signing_secrets(self) -> list[str]:
        """The current secret, then the previous one while it is being rotated."""
        secrets = [self.credentials["secret"]]
        previous = self.credentials.get("previous_secret")
        if previous and previous != secrets[0]:
            secrets.append(previous)
        return secrets

    def _signed_post(self, document: dict[str, Any], event_ids: list[int], message: str,
                     headers: dict[str, str]) -> PreparedRequest:
        body = orjson.dumps(document, default=_plain)
        timestamp = int(time.time())
        secrets = self.signing_secrets()
        headers = {"Content-Type": "application/json", "User-Agent": "shoprelay-webhook/1",
                   "X-Shoprelay-Timestamp": str(timestamp),
                   SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
                   **standard_headers(secrets, message, timestamp, body), **headers}
        return PreparedRequest("POST", self.url, event_ids, headers=headers, content=body)

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        requests = [self._signed_post(event_document(event), [event.id], message_id(event),
                                      {"X-Shoprelay-Event": WEBHOOK_NAMES.get(event.name, event.name),
                                       "X-Shoprelay-Id": event.unique_id})
                    for event in events]
        return BuildResult(requests=requests)

    def test_request(self) -> PreparedRequest:
        return self._signed_post({"event": "ping"}, [], f"ping:{uuid.uuid4().hex}", {"X-Shoprelay-Event": "ping"})
