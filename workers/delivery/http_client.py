"""One long-lived pooled httpx client per worker process (a new client per request costs ~45 ms)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import orjson

from workers.destinations.base import PreparedRequest

_clients: dict[float, httpx.Client] = {}
USER_AGENT = "shoprelay/0.1 (+server-side events)"


def get_client(timeout: float) -> httpx.Client:
    client = _clients.get(timeout)
    if client is None or client.is_closed:
        client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            follow_redirects=False, headers={"User-Agent": USER_AGENT})
        _clients[timeout] = client
    return client


@dataclass
class SendResult:
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    duration_ms: int = 0
    error: str | None = None


def body_of(request: PreparedRequest) -> tuple[bytes | None, dict[str, str]]:
    """The bytes to send: pre-serialised content as given, else the JSON body through orjson.

    The same compact UTF-8 JSON httpx's `json=` writes, ~10x faster on a 1,000-event bulk body.
    """
    if request.content is not None or request.json is None:
        return request.content, request.headers
    headers = request.headers
    if not any(name.lower() == "content-type" for name in headers):
        headers = headers | {"Content-Type": "application/json"}
    return orjson.dumps(request.json), headers


def send(client: httpx.Client, request: PreparedRequest) -> SendResult:
    """Send one prepared request; a network error or timeout is an answer too (status None)."""
    started = time.perf_counter()
    try:
        content, headers = body_of(request)
        response = client.request(request.method, request.url, headers=headers, auth=request.auth,
                                  content=content)
        body = response.content
        return SendResult(response.status_code, body, dict(response.headers),
                          int((time.perf_counter() - started) * 1000))
    except httpx.TimeoutException as exc:
        return SendResult(None, duration_ms=int((time.perf_counter() - started) * 1000),
                          error=f"timed out ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return SendResult(None, duration_ms=int((time.perf_counter() - started) * 1000),
                          error=f"network error: {type(exc).__name__}: {exc}")


def close_all() -> None:
    """Close the pooled clients (tests, and a worker that is shutting down)."""
    for client in list(_clients.values()):
        client.close()
    _clients.clear()
