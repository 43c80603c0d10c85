"""The onsite tracker: script, CORS, validation, identified visitors become events, rate limit."""

import json

import sqlalchemy as sa

from webapp.models import Event

ANON = "anon-1234567890"


def _collect(client, **body):
    return client.post("/t/collect", data=json.dumps({"anonymous_id": ANON} | body),
                       content_type="text/plain", headers={"Origin": "https://shop.example"})


def test_script_is_served_with_cors(client):
    response = client.get("/t.js")
    assert response.status_code == 200 and response.mimetype == "application/javascript"
    assert b"/t/collect" in response.data
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    response.close()


def test_identified_browser_events_reach_the_outbox(api, client, db):
    api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}})
    assert _collect(client, event="active_on_site").get_json() == {"result": "ignored: visitor not identified"}
    assert _collect(client, event="identify", email="Ann@Example.com").get_json() == {"result": "identified"}
    response = _collect(client, event="viewed_product", url="https://shop.example/p/1",
                        properties={"product": {"product_id": "1", "name": "Mug", "price": 9.5}})
    assert response.status_code == 202 and response.get_json() == {"result": "recorded"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    event = db.session.scalars(sa.select(Event)).one()
    assert event.name == "viewed_product"
    assert event.payload["contact"]["email"] == "ann@example.com"
    assert event.payload["activity"]["product"]["name"] == "Mug"


def test_bad_input_is_rejected_clearly(client):
    assert _collect(client, event="hack").status_code == 422
    response = client.post("/t/collect", data="{nope", content_type="text/plain")
    assert response.status_code == 400
    big = _collect(client, event="viewed_product", properties={"x": "y" * 20000})
    assert big.status_code == 413
    assert client.options("/t/collect").status_code == 204


def test_rate_limit_per_address(client, monkeypatch):
    from webapp.services.orders import onsite

    monkeypatch.setattr(onsite, "PER_IP_PER_MINUTE", 3)
    codes = [_collect(client, event="active_on_site").status_code for _ in range(5)]
    assert codes == [202, 202, 202, 429, 429]
