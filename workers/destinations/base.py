"""The adapter contract: canonical events in, platform HTTP requests out, platform answers classified.

Adapters are pure: they build requests and read answers but never send anything themselves;
the delivery engine owns the HTTP client, the database and the retry policy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

# Canonical event names (DESIGN.md "Canonical events and where each goes").
ORDER_EVENTS = ("placed_order", "ordered_product", "fulfilled_order", "cancelled_order",
                "refunded_order", "pending_order")
ALL_EVENTS = ORDER_EVENTS + (
    "abandoned_checkout", "profile_upsert", "consent_change", "product_upsert", "product_delete",
    "active_on_site", "viewed_product", "added_to_cart", "started_checkout",
    "back_in_stock_subscription", "back_in_stock", "contact_erased",
)


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"            # network error, timeout, 5xx, 429: try again later
    REJECTED = "rejected"      # 4xx with the platform's message: retrying will not help
    SETUP_ERROR = "setup_error"  # 401/403: credentials or permissions; pause the destination


@dataclass(slots=True)
class OutboundEvent:
    """An outbox row as the adapter sees it.

    payload shapes (all money as JSON numbers in the order currency):
      order events:   {"order": <canonical order>, "contact": <contact>, "line": <item + "line_key">}
                      ("line" only for ordered_product)
      profile_upsert: {"contact": <contact>}
      consent_change: {"contact": <contact>}  (contact["accepts_marketing"] is the new value)
      product_upsert: {"product": <product dict>};  product_delete: {"product": {"external_id": ...}}
      checkout/onsite events: {"checkout": {...}} / {"activity": {...}, "contact": <contact>}
      back_in_stock_subscription: {"subscription": {"id", "email", "phone", "channels", "sku", "product_id"}};
      back_in_stock: the same + "product": <product dict> (its inventory came back)
      contact_erased: {"erasure": {"id", "email", "phones", "customer_ids", "order_ids", "requested_at"}}
                      (a person asked to be forgotten: delete them; scrubbed to {"erasure": {"id"}} once answered)
      consent_change may carry "consent": {"channel": "email"|"sms", "subscribed", "at", "source"}
    contact = {"customer_id", "email", "phone", "first_name", "last_name", "accepts_marketing", "address"}
    """

    id: int
    name: str
    unique_id: str
    payload: dict[str, Any]
    occurred_at: datetime
    historical: bool = False


@dataclass(slots=True)
class PreparedRequest:
    """One HTTP request carrying one or more events."""

    method: str
    url: str
    event_ids: list[int]
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None  # HTTP basic auth (eSputnik)
    content: bytes | None = None         # pre-serialised body (signed webhooks sign these bytes)
    logged: bytes | None = None          # a shorter JSON form of a large body, for the request log


@dataclass(slots=True)
class Classification:
    """What a platform's answer means for every event the request carried."""

    outcome: Outcome
    message: str = ""
    retry_after: float | None = None     # seconds, from Retry-After / RateLimit-Reset
    per_event: dict[int, tuple[Outcome, str]] = field(default_factory=dict)  # overrides by event id


@dataclass(slots=True)
class BuildResult:
    requests: list[PreparedRequest]
    # Events this platform does not take (or cannot take as given): event id -> why. Marked "skipped".
    skipped: dict[int, str] = field(default_factory=dict)


class DestinationAdapter:
    """Base class of one platform's adapter; subclasses register themselves by `kind`."""

    kind: ClassVar[str]
    label: ClassVar[str]
    default_base_url: ClassVar[str]
    supported_events: ClassVar[frozenset[str]]
    credential_fields: ClassVar[tuple[str, ...]]
    # Documented platform limits; editable per destination. {"burst_per_second", "per_minute"}
    default_rate_limits: ClassVar[dict[str, float]]
    max_events_per_request: ClassVar[int] = 1

    def __init__(self, credentials: dict[str, str], base_url: str | None = None,
                 settings: dict[str, Any] | None = None) -> None:
        missing = [name for name in self.credential_fields if not credentials.get(name)]
        if missing:
            raise ValueError(f"{self.kind} credentials need: {', '.join(missing)}")
        self.credentials = credentials
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.settings = settings or {}

    def build_requests(self, events: list[OutboundEvent], *, bulk: bool = False) -> BuildResult:
        """Turn due events into requests. `bulk` asks for the platform's batch endpoint where it has one."""
        raise NotImplementedError

    def classify(self, status: int | None, headers: dict[str, str], body: bytes,
                 error: str | None = None) -> Classification:
        """Read the platform's answer (status None = no answer: network error or timeout)."""
        return classify_http(status, headers, body, error)

    def test_request(self) -> PreparedRequest:
        """A harmless authenticated call that proves the credentials work."""
        raise NotImplementedError

    def account(self) -> str:
        """The platform account its requests count against: destinations that share one key share its rate
        limits and its "wait" (a digest of the kind, base URL and first credential; never the secret itself)."""
        first = self.credentials.get(self.credential_fields[0], "") if self.credential_fields else ""
        return hashlib.sha256(f"{self.kind}\n{self.base_url}\n{first}".encode()).hexdigest()[:24]

    def secrets(self) -> list[str]:
        """Strings that must never appear in logs or stored request bodies."""
        return [value for value in self.credentials.values() if value]


def classify_http(status: int | None, headers: dict[str, str], body: bytes,
                  error: str | None = None) -> Classification:
    """The common reading of an HTTP answer; adapters refine the message from the platform's body."""
    text = body[:2000].decode("utf-8", "replace") if body else ""
    if status is None:
        return Classification(Outcome.RETRY, error or "no answer from the platform")
    if 200 <= status < 300:
        return Classification(Outcome.DELIVERED, text[:500])
    retry_after = parse_retry_after(headers)
    if status == 429 or status == 408 or status >= 500:
        return Classification(Outcome.RETRY, f"HTTP {status}: {text[:500]}", retry_after)
    if status in (401, 403):
        return Classification(Outcome.SETUP_ERROR, f"HTTP {status}: {text[:500]}")
    return Classification(Outcome.REJECTED, f"HTTP {status}: {text[:500]}")


def classify_with_platform_message(status: int | None, headers: dict[str, str], body: bytes,
                                   error: str | None = None) -> Classification:
    """`classify_http`, with the platform's own JSON error text as the message of a refusal."""
    result = classify_http(status, headers, body, error)
    if result.outcome in (Outcome.REJECTED, Outcome.SETUP_ERROR):
        message = json_error_message(body)
        if message:
            result.message = f"HTTP {status}: {message}"
    return result


def parse_retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date) or `RateLimit-Reset`."""
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in ("retry-after", "ratelimit-reset"):
        value = lowered.get(name)
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


# --- helpers shared by the adapters -------------------------------------------------------------

def as_number(value: Any) -> float | int | None:
    """Money/quantity as a JSON number; platforms with strict schemas refuse strings and Decimals."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """Drop absent (None) values: several platforms read an explicit null as "clear this field"."""
    return {key: value for key, value in mapping.items() if value is not None}


def text_or_none(value: Any) -> str | None:
    """Identifiers and names as strings; empty means absent."""
    return None if value is None or value == "" else str(value)


def parse_time(value: Any, fallback: datetime) -> datetime:
    """An aware datetime from an ISO string or datetime; `fallback` when absent or unreadable."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        value = fallback
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def event_contact(payload: dict[str, Any]) -> dict[str, Any]:
    """The person an event is about: payload["contact"], else read from the order's or checkout's customer."""
    if payload.get("contact"):
        return payload["contact"]
    source = payload.get("order") or payload.get("checkout") or {}
    customer = source.get("customer") or {}
    return {
        "customer_id": customer.get("id"), "email": customer.get("email") or source.get("email"),
        "phone": customer.get("phone"), "first_name": customer.get("first_name"),
        "last_name": customer.get("last_name"), "accepts_marketing": customer.get("accepts_marketing"),
        "address": source.get("billing_address"),
    }


def collapse_latest(events: list[OutboundEvent], key: Any) -> list[tuple[OutboundEvent, list[int]]]:
    """Keep one event per `key(event)` (the last one given), with the ids of all it supersedes.

    Platforms that upsert by id (eSputnik orders, Klaviyo catalog items and consent) refuse or
    mis-order two versions of one record in a request; the superseded events ride along in
    `event_ids`, so they are marked delivered exactly when the request carrying the latest state is.
    """
    groups: dict[Any, tuple[OutboundEvent, list[int]]] = {}
    for event in events:
        _, ids = groups.pop(key(event), (None, []))
        groups[key(event)] = (event, [*ids, event.id])
    return list(groups.values())


def chunked(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def json_error_message(body: bytes) -> str | None:
    """The human part of a platform's JSON error: JSON:API `errors[].detail`, `message`, `data.message`."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    errors = parsed.get("errors")
    if isinstance(errors, list) and errors:
        texts = [str(error.get("detail") or error.get("title") or error) if isinstance(error, dict)
                 else str(error) for error in errors]
        return "; ".join(texts)
    data = parsed.get("data")
    if isinstance(data, dict) and (data.get("message") or data.get("errors")):
        parsed = data
    message = parsed.get("message") or parsed.get("error")
    if isinstance(parsed.get("errors"), dict):  # Laravel-style {"field": ["problem", ...]} (Sendlane)
        fields = "; ".join(f"{name}: {_joined(problems)}" for name, problems in parsed["errors"].items())
        message = f"{message} ({fields})" if message else fields
    return str(message) if message else None


def _joined(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)
