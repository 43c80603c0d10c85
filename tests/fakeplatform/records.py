"""Plain data types shared by the fake platforms: what came in, what goes out, what was kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

NOT_JSON = object()  # marker for a body that is not valid JSON


def dumps(value: Any) -> bytes:
    """Serialise an answer body; orjson because the benchmark pushes 100k events through here."""
    return orjson.dumps(value)


def parse_json(body: bytes) -> Any:
    """Parse a request body, returning NOT_JSON instead of raising so handlers can answer 400."""
    if not body:
        return NOT_JSON
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return NOT_JSON


@dataclass(slots=True)
class Incoming:
    """One request as a platform handler sees it: path without the platform prefix."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    _parsed: Any = field(default=None, repr=False)

    def json(self) -> Any:
        """The parsed body (or NOT_JSON), parsed once per request."""
        if self._parsed is None:
            self._parsed = parse_json(self.body)
        return self._parsed


@dataclass(slots=True)
class Reply:
    """An answer a handler wants sent."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, dumps(value), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class Recorded:
    """Every request the fake received, with the status it answered and when it arrived."""

    platform: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0
    fault: str | None = None
    answered_at: float = 0.0           # when the answer was ready to go out (time.time() clock)
    retry_after: float | None = None   # the Retry-After it carried, in seconds

    @property
    def account(self) -> tuple[str, str]:
        """Which platform account sent it: the platform and its credential header (webhooks: the path)."""
        headers = self.headers
        key = headers.get("authorization") or headers.get("api-key") or headers.get("x-api-key") or ""
        return self.platform, key if self.platform != "webhook" else self.path

    @property
    def json(self) -> Any:
        """The parsed body, or None when it was empty or not JSON (parsed on demand to save memory)."""
        value = parse_json(self.body)
        return None if value is NOT_JSON else value


@dataclass(frozen=True, slots=True)
class KlaviyoEvent:
    """An event Klaviyo kept (the first one for its profile + metric + unique_id)."""

    metric: str
    identity: tuple[str, str]
    unique_id: str
    profile: dict[str, Any]
    properties: dict[str, Any]
    value: float | None
    value_currency: str | None
    time: str | None
    backfill: bool = False


@dataclass
class UpsertedOrder:
    """An order a platform keeps by id: its latest state and every state it was sent."""

    latest: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def statuses(self) -> list[Any]:
        return [state.get("status") for state in self.history]


@dataclass(slots=True)
class PendingJob:
    """A catalog bulk job Klaviyo accepted but has not run yet: its entries apply when it completes."""

    job: dict[str, Any]          # the job resource answered to GETs, completed in place
    kind: str                    # "item", "variant" or "category"
    action: str                  # "create", "update" or "delete"
    entries: list[dict[str, Any]]
    polls_left: int              # GETs still to answer "processing"
