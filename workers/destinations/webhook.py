"""Generic signed webhook: every canonical event, as JSON, to the user's URL.

The signature scheme is Stripe's: `X-Shoprelay-Signature: t=<unix>,v1=<hex>` where hex is
HMAC-SHA256 of "<t>.<body>". Signing the timestamp lets receivers refuse replays; while a secret
is being rotated both the new and the previous secret sign, so receivers can switch at leisure.
"""

from __future__ import annotations

import hashlib
import hmac
import time
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


def _plain(value: Any) -> Any:
    """orjson's fallback: money that arrives as Decimal leaves as a JSON number."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def event_document(event: OutboundEvent) -> dict[str, Any]:
    return {"id": event.unique_id, "event": event.name, "occurred_at": event.occurred_at.isoformat(),
            "historical": event.historical, "data": event.payload}


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

    def _signed_post(self, document: dict[str, Any], event_ids: list[int],
                     headers: dict[str, str]) -> PreparedRequest:
        body = orjson.dumps(document, default=_plain)
        timestamp = int(time.time())
        secrets = [self.credentials["secret"]]
        if self.credentials.get("previous_secret"):
            secrets.append(self.credentials["previous_secret"])
        headers = {"Content-Type": "application/json", "User-Agent": "shoprelay-webhook/1",
                   "X-Shoprelay-Timestamp": str(timestamp),
                   SIGNATURE_HEADER: signature_header(secrets, timestamp, body), **headers}
        return PreparedRequest("POST", self.url, event_ids, headers=headers, content=body)

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        requests = [self._signed_post(event_document(event), [event.id],
                                      {"X-Shoprelay-Event": event.name, "X-Shoprelay-Id": event.unique_id})
                    for event in events]
        return BuildResult(requests=requests)

    def test_request(self) -> PreparedRequest:
        return self._signed_post({"event": "ping"}, [], {"X-Shoprelay-Event": "ping"})
