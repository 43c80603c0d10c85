"""Every adapter: its requests go over real HTTP to a local server, and its answers are classified."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.factories import make_order_event
from workers.destinations import adapter_classes
from workers.destinations.base import DestinationAdapter, Outcome, PreparedRequest

CREDENTIALS = {
    "klaviyo": {"api_key": "pk_1"},
    "sendlane": {"api_token": "st_1", "integration_token": "it_1"},
    "esputnik": {"api_key": "es_1"},
    "webhook": {"url": "https://unused.example/hook", "secret": "wh_1"},
}


def make_adapter(kind: str, base_url: str | None = None) -> DestinationAdapter:
    return adapter_classes()[kind](CREDENTIALS[kind], base_url=base_url)


def send(request: PreparedRequest) -> httpx.Response:
    return httpx.request(request.method, request.url, json=request.json, content=request.content,
                         headers=request.headers, auth=request.auth, timeout=5)


def test_all_four_adapters_are_registered() -> None:
    assert set(adapter_classes()) == set(CREDENTIALS)


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
@pytest.mark.parametrize(("status", "headers", "body", "outcome"), [
    (202, {}, b"", Outcome.DELIVERED),
    (200, {}, b'{"data":{"message":"ok"}}', Outcome.DELIVERED),
    (400, {}, b'{"errors":[{"detail":"bad field"}]}', Outcome.REJECTED),
    (401, {}, b'{"errors":[{"detail":"Missing or invalid private key."}]}', Outcome.SETUP_ERROR),
    (403, {}, b"forbidden", Outcome.SETUP_ERROR),
    (429, {"Retry-After": "17"}, b"slow down", Outcome.RETRY),
    (500, {}, b"oops", Outcome.RETRY),
    (None, {}, b"", Outcome.RETRY),
])
def test_classify(kind, status, headers, body, outcome) -> None:
    result = make_adapter(kind).classify(status, headers, body, "timed out" if status is None else None)
    assert result.outcome is outcome
    if status == 429:
        assert result.retry_after == 17
    if status is None:
        assert result.message == "timed out"
    if status == 400:
        assert "bad field" in result.message


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_placed_order_travels_over_http(recording_server, kind) -> None:
    adapter = make_adapter(kind, base_url=recording_server.url)
    recording_server.answer = (202, {}, b"")
    (request,) = adapter.build_requests([make_order_event("placed_order")]).requests
    response = send(request)
    assert adapter.classify(response.status_code, dict(response.headers), response.content).outcome \
        is Outcome.DELIVERED
    (received,) = recording_server.received
    payload = json.loads(received.body)
    assert "1234" in json.dumps(payload)
    if kind == "esputnik":
        expected = "Basic " + base64.b64encode(b"shoprelay:es_1").decode()
        assert received.headers["Authorization"] == expected
    elif kind == "klaviyo":
        assert received.headers["Authorization"] == "Klaviyo-API-Key pk_1"
        assert received.headers["Content-Type"] == "application/vnd.api+json"
    elif kind == "sendlane":
        assert received.headers["Authorization"] == "Bearer st_1" and payload["token"] == "it_1"


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_rate_limit_answer_over_http(recording_server, kind) -> None:
    adapter = make_adapter(kind, base_url=recording_server.url)
    recording_server.answer = (429, {"Retry-After": "3"}, b'{"errors":[{"detail":"Request was throttled."}]}')
    response = send(adapter.test_request())
    result = adapter.classify(response.status_code, dict(response.headers), response.content)
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 3)
