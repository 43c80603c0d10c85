"""Accepted but partly unusable input (issues 17 and 19): stored all the same, with a warning naming the field.

Links that are not http(s) are dropped from orders, checkouts and pushed products; phones are stored in E.164,
and a phone that is not a valid number is kept as given.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.models import Checkout, Contact, Event, Order, OrderLine, Product, SyncRun
from webapp.schemas import responses as out

pytestmark = both_databases

E164 = "+14155550123"


def _order(order_id: str, phone: str | None = E164, country: str | None = "US", **item: str) -> dict:
    address = {"first_name": "Ann", "country_code": country}
    line = {"sku": f"SKU-{order_id}", "name": "Mug", "quantity": 1, "price": 10,
            "url": "https://shop.example/p/mug", "image_url": "https://shop.example/i/mug.png"} | item
    return make_order(id=order_id, total=10, customer={"email": f"{order_id}@example.com", "phone": phone},
                      billing_address=address, shipping_address=address, items=[line])


def _paths(result: dict) -> list[str]:
    return [warning["path"] for warning in result.get("warnings", [])]


def test_bad_links_are_dropped_with_warnings_and_the_order_is_stored(api, db):
    assert api.post("/api/v1/destinations", json={"name": "hook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/h", "secret": "abcdefgh"}}).status_code == 201
    response = api.post("/api/v1/orders", json=_order("L1", url="javascript:alert(5)",
                                                      image_url="data:image/png;base64,AAAA"))
    assert response.status_code == 202, response.get_json()
    result = response.get_json()["results"][0]
    assert result["result"] == "created"
    assert _paths(result) == ["items.0.url", "items.0.image_url"]
    assert all("http" in warning["message"] for warning in result["warnings"])
    out.IngestResponse.model_validate(response.get_json())
    line = db.session.scalars(sa.select(OrderLine)).one()
    assert line.url is None and line.image_url is None
    stored = db.session.scalars(sa.select(Order)).one()
    assert stored.data["items"][0]["url"] is None and "javascript:" not in str(stored.data)
    events = db.session.scalars(sa.select(Event)).all()
    assert events and not any("javascript:" in str(event.payload) or "data:image" in str(event.payload)
                              for event in events)  # nothing of it goes to the platforms


def test_batch_warnings_carry_the_order_prefix_and_clean_orders_have_none(api, db):
    response = api.post("/api/v1/orders", json={"orders": [
        _order("B0"), _order("B1", url="/p/relative"), _order("B2", image_url="ftp://shop.example/i.png")]})
    assert response.status_code == 202, response.get_json()
    results = response.get_json()["results"]
    assert "warnings" not in results[0]
    assert _paths(results[1]) == ["orders.1.items.0.url"] and _paths(results[2]) == ["orders.2.items.0.image_url"]
    lines = {line.sku: line for line in db.session.scalars(sa.select(OrderLine))}
    assert lines["SKU-B0"].url == "https://shop.example/p/mug" and lines["SKU-B1"].url is None
    assert lines["SKU-B2"].image_url is None and lines["SKU-B2"].url == "https://shop.example/p/mug"


def test_one_us_number_typed_three_ways_is_one_e164_contact(api, app, db):
    first = api.post("/api/v1/orders", json=_order("P1", phone="(415) 555-0123", country="US"))
    second = api.post("/api/v1/orders", json=_order("P2", phone="+1 415-555-0123", country=None))
    app.config["DEFAULT_PHONE_REGION"] = "US"
    third = api.post("/api/v1/orders", json=_order("P3", phone="415.555.0123", country=None))
    for response in (first, second, third):
        assert response.status_code == 202 and "warnings" not in response.get_json()["results"][0]
    phones = {contact.phone for contact in db.session.scalars(sa.select(Contact))}
    assert phones == {E164}


def test_address_phones_are_stored_in_e164(api, db):
    order = _order("A1")
    order["billing_address"] |= {"phone": "(415) 555-0123"}
    response = api.post("/api/v1/orders", json=order)
    assert "warnings" not in response.get_json()["results"][0]
    stored = db.session.scalars(sa.select(Order)).one()
    assert stored.data["billing_address"]["phone"] == E164 and stored.data["customer"]["phone"] == E164


def test_an_invalid_phone_keeps_the_order_with_the_phone_as_given_and_a_warning(api, db):
    response = api.post("/api/v1/orders", json=_order("X1", phone="415.555.0123", country=None))
    assert response.status_code == 202
    result = response.get_json()["results"][0]
    assert result["result"] == "created" and _paths(result) == ["customer.phone"]
    assert "not used for SMS" in result["warnings"][0]["message"]
    assert db.session.scalars(sa.select(Contact)).one().phone == "415.555.0123"
    assert db.session.scalars(sa.select(Order)).one().external_id == "X1"


def test_checkout_drops_bad_links_and_warns(api, db):
    response = api.post("/api/v1/checkouts", json={
        "id": "co-1", "started_at": "2026-11-20T10:00:00Z", "currency": "USD", "total": 10,
        "checkout_url": "javascript:alert(1)", "customer": {"email": "a@example.com", "phone": "12"},
        "items": [{"name": "Mug", "quantity": 1, "price": 10, "url": "https://shop.example/p/mug"}]})
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    out.CheckoutResult.model_validate(body)
    assert body["result"] == "created" and _paths(body) == ["checkout_url", "customer.phone"]
    checkout = db.session.scalars(sa.select(Checkout)).one()
    assert checkout.data["checkout_url"] is None and checkout.data["items"][0]["url"] == "https://shop.example/p/mug"


def test_a_clean_checkout_answers_without_warnings(api):
    response = api.post("/api/v1/checkouts", json={
        "id": "co-2", "started_at": "2026-11-20T10:00:00Z", "currency": "USD", "total": 10,
        "checkout_url": "https://shop.example/checkout/2", "customer": {"email": "a@example.com"},
        "items": [{"name": "Mug", "quantity": 1, "price": 10}]})
    assert response.status_code == 202 and "warnings" not in response.get_json()


def test_products_push_drops_bad_links_and_keeps_the_product(api, db):
    response = api.post("/api/v1/products", json={"upserts": [
        {"external_id": "A", "title": "Mug", "link": "https://shop.example/a", "image_link": "javascript:x"},
        {"external_id": "B", "title": "Cup", "link": "data:text/html,hi",
         "extras": {"additional_image_links": ["https://shop.example/b.png", "vbscript:x"]}}]})
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["added"] == 2
    products = {p.external_id: p for p in db.session.scalars(sa.select(Product))}
    assert products["A"].link == "https://shop.example/a" and products["A"].image_link is None
    assert products["B"].link is None
    assert products["B"].extras["additional_image_links"] == ["https://shop.example/b.png"]
    run = db.session.get(SyncRun, response.get_json()["run_id"])
    assert [(p["external_id"], p["field"]) for p in run.problems] == [
        ("A", "image_link"), ("B", "link"), ("B", "extras.additional_image_links.1")]
    assert [w["path"] for w in response.get_json()["warnings"]] == [
        "upserts.0.image_link", "upserts.1.link", "upserts.1.extras.additional_image_links.1"]
