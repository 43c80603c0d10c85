"""Signed webhook: body, headers, HMAC signature, verification and secret rotation."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from tests.factories import make_order_event
from workers.destinations import get_adapter_class
from workers.destinations.base import ALL_EVENTS, OutboundEvent
from workers.destinations.webhook import WEBHOOK_NAMES, WebhookAdapter, sign, verify_signature


@pytest.fixture
def adapter() -> WebhookAdapter:
    return WebhookAdapter({"url": "https://hooks.example/shoprelay", "secret": "whsec_new"})


def test_registered_for_every_event() -> None:
    assert get_adapter_class("webhook") is WebhookAdapter
    assert WebhookAdapter.supported_events == frozenset(ALL_EVENTS)


def test_event_document_and_headers(adapter) -> None:
    event = make_order_event("placed_order", event_id=9, historical=True)
    result = adapter.build_requests([event])
    assert result.skipped == {}
    (request,) = result.requests
    assert (request.method, request.url, request.event_ids, request.json) == (
        "POST", "https://hooks.example/shoprelay", [9], None)
    document = json.loads(request.content)
    assert document == {"id": "1234", "event": "placed_order", "occurred_at": "2026-11-20T10:15:00+00:00",
                        "historical": True, "data": event.payload}
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert (headers["X-Shoprelay-Event"], headers["X-Shoprelay-Id"]) == ("placed_order", "1234")
    timestamp = int(headers["X-Shoprelay-Timestamp"])
    assert abs(timestamp - time.time()) < 5
    expected = sign("whsec_new", timestamp, request.content)
    assert headers["X-Shoprelay-Signature"] == f"t={timestamp},v1={expected}"


def test_every_event_name_is_delivered(adapter) -> None:
    events = [OutboundEvent(n, name, f"u{n}", {"x": n}, datetime(2026, 1, 1, tzinfo=UTC))
              for n, name in enumerate(ALL_EVENTS)]
    result = adapter.build_requests(events)
    expected = [WEBHOOK_NAMES.get(name, name) for name in ALL_EVENTS]
    assert [r.headers["X-Shoprelay-Event"] for r in result.requests] == expected
    assert [orjson.loads(r.content)["event"] for r in result.requests] == expected
    assert "contact.erased" in expected  # what receivers subscribe to for an erasure


def test_an_erasure_reaches_the_webhook_as_contact_erased(adapter) -> None:
    payload = {"erasure": {"id": "abc123", "email": "gone@example.org", "phones": [], "customer_ids": [],
                           "order_ids": ["1"]}}
    event = OutboundEvent(7, "contact_erased", "erasure:abc123", payload, datetime(2026, 1, 1, tzinfo=UTC))
    (request,) = adapter.build_requests([event]).requests
    document = orjson.loads(request.content)
    assert document["event"] == "contact.erased" and document["data"] == payload
    assert request.headers["webhook-id"] == "contact_erased:erasure:abc123"


def test_verify_right_and_wrong_secret(adapter) -> None:
    (request,) = adapter.build_requests([make_order_event("placed_order")]).requests
    header = request.headers["X-Shoprelay-Signature"]
    assert verify_signature("whsec_new", header, request.content)
    assert not verify_signature("whsec_other", header, request.content)
    assert not verify_signature("whsec_new", header, request.content + b" ")
    assert not verify_signature("whsec_new", "v1=abc", request.content)


def test_verify_refuses_a_stale_timestamp() -> None:
    body = b'{"event":"ping"}'
    old = int(time.time()) - 301
    header = f"t={old},v1={sign('s', old, body)}"
    assert not verify_signature("s", header, body)
    assert verify_signature("s", header, body, tolerance=600)
    assert verify_signature("s", header, body, now=old + 10)


def test_rotation_signs_with_both_secrets() -> None:
    adapter = WebhookAdapter({"url": "https://hooks.example/x", "secret": "new", "previous_secret": "old"})
    request = adapter.test_request()
    header = request.headers["X-Shoprelay-Signature"]
    assert header.count("v1=") == 2
    assert verify_signature("new", header, request.content)
    assert verify_signature("old", header, request.content)
    assert not verify_signature("other", header, request.content)
    assert "old" in adapter.secrets() and "new" in adapter.secrets()


def test_ping_reaches_a_receiver_that_verifies_it(recording_server) -> None:
    adapter = WebhookAdapter({"url": f"{recording_server.url}/hook", "secret": "s3cret"})
    request = adapter.test_request()
    response = httpx.request(request.method, request.url, headers=request.headers, content=request.content,
                             timeout=5)
    (received,) = recording_server.received
    assert response.status_code == 200 and received.path == "/hook"
    assert json.loads(received.body) == {"event": "ping"}
    assert verify_signature("s3cret", received.headers["X-Shoprelay-Signature"], received.body)
