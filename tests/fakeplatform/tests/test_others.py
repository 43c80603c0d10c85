"""The fake Sendlane, eSputnik and webhook receiver, and the server that carries them all."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import httpx
import orjson
import pytest

from tests.fakeplatform import sign_webhook
from tests.fakeplatform.tests.bodies import (
    INTEGRATION_TOKEN,
    KLAVIYO_HEADERS,
    esputnik_order,
    sendlane_order,
    signed_post,
)


def test_sendlane_order_placed_is_accepted_and_kept_with_status_history(fake, sendlane):
    assert sendlane.post("/tracking/order-placed", json=sendlane_order()).status_code == 200
    response = sendlane.post("/tracking/order-placed", json=sendlane_order(status="fulfilled"))

    assert response.status_code == 200 and "data" in response.json()
    assert fake.sendlane_orders["1234"].statuses == ["placed", "fulfilled"]
    assert fake.sendlane_orders["1234"].latest["status"] == "fulfilled"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/tracking/order-placed", sendlane_order(order_id=None), "order_id"),
    ("/tracking/order-placed", sendlane_order(total="29.98"), "total"),
    ("/tracking/order-placed", sendlane_order(time="yesterday"), "time"),
    ("/tracking/order-placed", sendlane_order(line_items=[{"quantity": 1}]), "line_items.0.product_id"),
    ("/tracking/customer-added", {"token": INTEGRATION_TOKEN, "email": "a@b.c"}, "customer_id"),
    ("/tracking/product-added", {"token": INTEGRATION_TOKEN, "product_id": "1", "product_url": "https://x"},
     "image_url"),
    ("/tracking/checkout-started", {"token": INTEGRATION_TOKEN}, "checkout_id"),
    ("/tracking/product-viewed", {"product_id": "1"}, "token"),
])
def test_sendlane_refuses_missing_or_mistyped_fields_with_422(fake, sendlane, path, body, field):
    response = sendlane.post(path, json=body)
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert fake.sendlane_tracked == {}


def test_sendlane_checks_bearer_and_integration_tokens(fake, sendlane):
    assert sendlane.post("/tracking/order-placed", json=sendlane_order(token="not-ours")).status_code == 401
    wrong_bearer = sendlane.post("/tracking/order-placed", json=sendlane_order(),
                                 headers={"Authorization": "Bearer nope"})
    assert wrong_bearer.status_code == 401 and wrong_bearer.json() == {"message": "Unauthenticated."}
    listed = sendlane.get("/integrations/custom")
    assert listed.json()["data"][0]["token"] == INTEGRATION_TOKEN
    assert fake.sendlane_orders == {}


# --- eSputnik ----------------------------------------------------------------------------------


def test_esputnik_upserts_orders_by_external_order_id(fake, esputnik):
    assert esputnik.post("/api/v1/orders", json={"orders": [esputnik_order()]}).status_code == 200
    assert esputnik.post("/api/v1/orders", json={"orders": [esputnik_order(status="DELIVERED")]}).status_code == 200
    order = fake.esputnik_orders["1234"]
    assert order.statuses == ["IN_PROGRESS", "DELIVERED"] and order.latest["status"] == "DELIVERED"
    assert esputnik.get("/api/v1/account/info").status_code == 200


@pytest.mark.parametrize("bad", [
    esputnik_order(externalCustomerId=None), esputnik_order(totalCost="29.98"), esputnik_order(status="REFUNDED"),
    esputnik_order(date="20/11/2026"), esputnik_order(currency="usd"),
    esputnik_order(items=[{"externalItemId": "1", "name": "x", "quantity": 1, "cost": 1, "url": "https://x"}]),
], ids=["no-customer", "cost-string", "unknown-status", "bad-date", "bad-currency", "item-without-image"])
def test_esputnik_refuses_invalid_orders_and_stores_none_of_the_request(fake, esputnik, bad):
    response = esputnik.post("/api/v1/orders", json={"orders": [esputnik_order(externalOrderId="ok"), bad]})
    assert response.status_code == 400
    assert response.json()["message"].startswith("orders[1]")
    assert fake.esputnik_orders == {}


def test_esputnik_caps_requests_at_1000_orders_and_checks_the_api_key(fake, esputnik):
    orders = [esputnik_order(externalOrderId=str(i)) for i in range(1001)]
    assert esputnik.post("/api/v1/orders", json={"orders": orders}).status_code == 400
    assert esputnik.post("/api/v1/orders", json={"orders": orders[:1]}, auth=("any", "wrong")).status_code == 401
    token = base64.b64encode(b"any:es_test").decode()
    raw = httpx.post(f"{fake.base_url('esputnik')}/api/v1/orders", json={"orders": orders[:1]},
                     headers={"Authorization": f"Basic {token}"})
    assert raw.status_code == 200


# --- webhook -----------------------------------------------------------------------------------


def test_webhook_accepts_a_signed_delivery_and_counts_redeliveries(fake):
    body = {"event": "placed_order", "order": {"id": "1234"}}
    assert signed_post(fake, body, "evt-1").status_code == 200
    assert signed_post(fake, body, "evt-1").status_code == 200
    assert fake.webhook_deliveries == {"evt-1": body}
    assert fake.webhook_duplicates == 1


@pytest.mark.parametrize(("secret", "age"), [("wrong-secret", 0), ("whsec_test", 3600)], ids=["bad-key", "stale"])
def test_webhook_refuses_a_bad_signature(fake, secret, age):
    response = signed_post(fake, {"event": "placed_order"}, "evt-1", secret, int(time.time()) - age)
    assert response.status_code == 401
    assert fake.webhook_deliveries == {}


def test_webhook_refuses_a_body_changed_after_signing(fake):
    raw = orjson.dumps({"total": 10})
    headers = {"X-Shoprelay-Id": "evt-9", "X-Shoprelay-Signature": sign_webhook("whsec_test", raw)}
    response = httpx.post(fake.base_url("webhook"), content=orjson.dumps({"total": 1000}), headers=headers)
    assert response.status_code == 401


# --- server ------------------------------------------------------------------------------------


def test_unknown_prefix_is_404_and_base_urls_share_one_server(fake):
    assert httpx.get(f"{fake.url}/nowhere").status_code == 404
    assert fake.base_url("sendlane") == f"{fake.url}/sendlane"
    with pytest.raises(ValueError):
        fake.base_url("mailchimp")


@pytest.mark.slow
def test_runs_as_a_standalone_process():
    process = subprocess.Popen([sys.executable, "-m", "tests.fakeplatform", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/klaviyo/api/accounts", headers=KLAVIYO_HEADERS, timeout=5)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
