"""Standard Webhooks on webhook destinations: real deliveries through the delivery engine to the fake receiver,
verified with the `standardwebhooks` package exactly as a receiver would (and refused when tampered with)."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.factories import make_order
from tests.fakeplatform import FakePlatform
from tests.fakeplatform.webhook import standard_checks
from webapp.models import Event
from workers.destinations.webhook import (
    WebhookAdapter,
    standard_key,
    standard_secret_problem,
    verify_signature,
)

NEW_SECRET = "whsec_" + base64.b64encode(b"the new key, 32 bytes long......").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the old key that is retiring....").decode()


def _webhook_requests(fake: FakePlatform) -> list:
    return [r for r in fake.requests_for("webhook") if r.status == 200]


def _deliver(api, worker, order: dict | None = None) -> None:  # noqa: ANN001
    response = api.post("/api/v1/orders", json=order or make_order())
    assert response.status_code == 202, response.get_json()
    worker(["delivery"])


def test_real_deliveries_verify_with_the_standardwebhooks_package(api, fake, make_destination, worker) -> None:  # noqa: ANN001
    make_destination("webhook", events=["placed_order", "ordered_product"])
    _deliver(api, worker)
    requests = _webhook_requests(fake)
    assert len(requests) == 3  # Placed Order + one Ordered Product per line
    receiver = Webhook(fake.webhook_secret)  # whsec_test: a whsec_ secret is given to the package as it is
    for request in requests:
        document = receiver.verify(request.body, request.headers)
        assert request.headers["webhook-id"] == f"{document['event']}:{document['id']}"
        assert request.headers["webhook-signature"].startswith("v1,")
        assert request.headers["x-shoprelay-id"] == document["id"]  # unchanged beside the new headers
        assert verify_signature(fake.webhook_secret, request.headers["x-shoprelay-signature"], request.body)
    checks = standard_checks(fake)
    assert [check.ok for check in checks] == [True] * 3, checks
    assert sorted(fake.webhook_deliveries) == sorted(r.headers["webhook-id"] for r in requests)


def test_tampered_body_timestamp_or_wrong_secret_fail(api, fake, make_destination, worker) -> None:  # noqa: ANN001
    make_destination("webhook", events=["placed_order"])
    _deliver(api, worker)
    (request,) = _webhook_requests(fake)
    headers, body = dict(request.headers), request.body
    receiver = Webhook(fake.webhook_secret)
    receiver.verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        receiver.verify(body.replace(b"29.98", b"0.01"), headers)
    with pytest.raises(WebhookVerificationError):
        receiver.verify(body, headers | {"webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)})
    with pytest.raises(WebhookVerificationError):
        receiver.verify(body, headers | {"webhook-id": "placed_order:9999"})
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"some other secret").decode()).verify(body, headers)


def test_the_fake_refuses_a_tampered_standard_signature(api, fake, make_destination, worker) -> None:  # noqa: ANN001
    """The receiver records the failure and answers 401, so a sender that signs wrongly cannot pass tests."""
    import httpx

    make_destination("webhook", events=["placed_order"])
    _deliver(api, worker)
    (request,) = _webhook_requests(fake)
    headers = {k: v for k, v in request.headers.items() if k not in ("content-length", "host")}
    forged = headers | {"webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    answer = httpx.post(fake.base_url("webhook"), content=request.body, headers=forged, timeout=5)
    assert answer.status_code == 401 and "Standard Webhooks" in answer.text
    assert standard_checks(fake)[-1].ok is False


def test_rotation_sends_two_signatures_that_both_verify(api, fake, make_destination, worker) -> None:  # noqa: ANN001
    fake.webhook_secret = NEW_SECRET
    destination = make_destination("webhook", events=["placed_order"],
                                    credentials={"url": fake.base_url("webhook"), "secret": NEW_SECRET,
                                                 "previous_secret": OLD_SECRET})
    assert "previous_secret" in destination["credentials_set"]
    _deliver(api, worker)
    (request,) = _webhook_requests(fake)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    Webhook(NEW_SECRET).verify(request.body, request.headers)
    Webhook(OLD_SECRET).verify(request.body, request.headers)
    for secret in (NEW_SECRET, OLD_SECRET):
        assert verify_signature(secret, request.headers["x-shoprelay-signature"], request.body)
    assert request.headers["x-shoprelay-signature"].count("v1=") == 2
    assert standard_checks(fake)[-1].signatures == 2


def test_webhook_id_differs_between_an_orders_events_and_holds_across_retries(
        api, db, fake, make_destination, worker) -> None:  # noqa: ANN001
    make_destination("webhook", events=["placed_order", "fulfilled_order"])
    _deliver(api, worker)
    fake.fail_next(1, status=500, platform="webhook")
    _deliver(api, worker, make_order(status="fulfilled", fulfilled_at="2026-11-21T09:00:00Z"))
    failed = db.session.scalars(sa.select(Event).where(Event.name == "fulfilled_order")).one()
    assert failed.state == "retrying"
    assert api.post(f"/api/v1/events/{failed.id}/retry").status_code == 200  # due now, signalled
    worker(["delivery"])
    requests = fake.requests_for("webhook")
    by_event: dict[str, list] = {}
    for request in requests:
        by_event.setdefault(request.headers["x-shoprelay-event"], []).append(request)
    (placed,), fulfilled = by_event["placed_order"], by_event["fulfilled_order"]
    assert [r.status for r in fulfilled] == [500, 200]  # one event, sent twice
    assert placed.headers["x-shoprelay-id"] == fulfilled[0].headers["x-shoprelay-id"] == "1234"
    assert placed.headers["webhook-id"] == "placed_order:1234"
    assert {r.headers["webhook-id"] for r in fulfilled} == {"fulfilled_order:1234"}
    # A receiver de-duplicating on webhook-id keeps both events of the order.
    assert set(fake.webhook_deliveries) == {"placed_order:1234", "fulfilled_order:1234"}
    assert fake.webhook_duplicates == 0
    for request in (placed, fulfilled[1]):
        Webhook(fake.webhook_secret).verify(request.body, request.headers)


def test_a_plain_secret_verifies_as_its_own_bytes(api, worker) -> None:  # noqa: ANN001
    """A plain (non-whsec_) secret keys the Standard signature with its UTF-8 bytes: the receiver gives the
    package those bytes, or the same secret written as whsec_ + base64 of it."""
    from workers.delivery.http_client import close_all

    plain = "my-old-plain-secret-4711"
    with FakePlatform(webhook_secret=plain) as fake:
        response = api.post("/api/v1/destinations", json={
            "name": "plain", "kind": "webhook", "events": ["placed_order"],
            "credentials": {"url": fake.base_url("webhook"), "secret": plain}})
        assert response.status_code == 201, response.get_json()
        _deliver(api, worker)
        close_all()
        (request,) = _webhook_requests(fake)
        assert [check.ok for check in standard_checks(fake)] == [True]
        Webhook(plain.encode()).verify(request.body, request.headers)
        Webhook("whsec_" + base64.b64encode(plain.encode()).decode()).verify(request.body, request.headers)
        with pytest.raises((WebhookVerificationError, ValueError)):  # the str itself is read as base64
            Webhook(plain).verify(request.body, request.headers)
        assert verify_signature(plain, request.headers["x-shoprelay-signature"], request.body)
        assert not fake.internal_errors


def test_the_key_is_the_one_the_package_derives() -> None:
    for secret in (NEW_SECRET, "whsec_dGVzdA", "whsec_dGVzdA==", "whsec_test"):
        assert standard_key(secret) == Webhook(secret)._whsecret
    assert standard_key("plain secret") == b"plain secret"
    adapter = WebhookAdapter({"url": "https://hooks.example/x", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    request = adapter.test_request()
    assert request.headers["webhook-id"].startswith("ping:")
    Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").verify(request.content, request.headers)


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_abcde", "whsec_", "whsec_a-b_c"])
def test_a_whsec_secret_that_is_not_base64_is_a_422_naming_the_field(api, secret) -> None:  # noqa: ANN001
    assert standard_secret_problem(secret)
    response = api.post("/api/v1/destinations", json={
        "name": "hook", "kind": "webhook", "credentials": {"url": "http://127.0.0.1:9/h", "secret": secret}})
    assert response.status_code == 422
    assert [e["path"] for e in response.get_json()["errors"]] == ["credentials.secret"]


def test_rotation_secret_is_checked_too_and_plain_secrets_pass(api) -> None:  # noqa: ANN001
    created = api.post("/api/v1/destinations", json={
        "name": "hook", "kind": "webhook", "credentials": {"url": "http://127.0.0.1:9/h", "secret": "plain-1"}})
    assert created.status_code == 201, created.get_json()
    changed = api.patch(f"/api/v1/destinations/{created.get_json()['id']}",
                        json={"credentials": {"secret": NEW_SECRET, "previous_secret": "whsec_%%%"}})
    # Malformed for every kind (the PATCH document's pattern refuses it): a validation error, not a conflict.
    assert changed.status_code == 422
    assert [e["path"] for e in changed.get_json()["errors"]] == ["credentials.previous_secret"]
    ok = api.patch(f"/api/v1/destinations/{created.get_json()['id']}",
                   json={"credentials": {"secret": NEW_SECRET, "previous_secret": "plain-1"}})
    assert ok.status_code == 200, ok.get_json()
