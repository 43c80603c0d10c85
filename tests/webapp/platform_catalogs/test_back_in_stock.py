"""Back in stock: validated subscriptions (422 naming the field), Klaviyo's server subscription on the variant
once its catalog holds it (validated by the fake with the SDK's model), and one `back_in_stock` webhook event
per subscriber when a sync brings the inventory back — on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import Product
from webapp.schemas import responses as out

pytestmark = both_databases
VARIANT = "$custom:::$default:::"


def _push(api, *products: dict) -> None:  # noqa: ANN001
    upserts = [{"title": f"Tee {p['external_id']}", "price": 20, "link": f"https://shop.test/{p['external_id']}",
                **p} for p in products]
    response = api.post("/api/v1/products", json={"upserts": upserts})
    assert response.status_code == 202, response.get_json()


def _subscribe(api, **body):  # noqa: ANN001, ANN003, ANN202
    return api.post("/api/v1/back-in-stock", json=body)


@pytest.mark.parametrize(("body", "path", "status"), [
    ({"sku": "RED-S"}, "email", 422),
    ({"email": "ann@example.com"}, "sku", 422),
    # Well-formed, but the catalog has no such variant: a conflict with what the server holds.
    ({"email": "ann@example.com", "sku": "NOPE"}, "sku", 409),
    ({"email": "ann@example.com", "product_id": "NOPE"}, "product_id", 409),
    ({"email": "ann@example.com", "sku": "RED-S", "channels": ["sms"]}, "phone", 422),
    ({"phone": "555 123 4567", "sku": "RED-S", "channels": ["sms"]}, "phone", 422),
    ({"email": "ann@example.com", "sku": "RED-S", "channels": ["push"]}, "channels.0", 422),
    ({"email": "not-an-email", "sku": "RED-S"}, "email", 422),
])
def test_bad_subscriptions_name_the_field(api, body, path, status) -> None:  # noqa: ANN001
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 0})
    response = _subscribe(api, **body)
    assert response.status_code == status, response.get_json()
    assert path in [error["path"] for error in response.get_json()["errors"]], response.get_json()


def test_klaviyo_gets_the_subscription_on_the_variant(api, db, fake, worker) -> None:  # noqa: ANN001
    _push(api, {"external_id": "P1", "item_group_id": "TEE", "sku": "RED-S", "inventory_quantity": 0})
    api.post("/api/v1/destinations", json={"name": "Klaviyo", "kind": "klaviyo", "catalog": "api",
                                           "credentials": {"api_key": fake.klaviyo_key},
                                           "base_url": fake.base_url("klaviyo")})
    worker(["sync"])  # the first reconcile puts the variant in Klaviyo's catalog
    response = _subscribe(api, email="Ann@Example.com", phone="+15551234567", sku="RED-S", channels=["email", "sms"])
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    out.BackInStockOut.model_validate(body)
    assert body["email"] == "ann@example.com" and "warnings" not in body
    assert _subscribe(api, email="ann@example.com", sku="RED-S").get_json()["id"] == body["id"]  # the same one
    worker(["delivery"])
    assert fake.klaviyo_bis == [{"profile": {"email": "ann@example.com", "phone_number": "+15551234567"},
                                 "channels": ["EMAIL", "SMS"], "variant": VARIANT + "P1"}]


def test_a_subscription_waits_for_its_variant_to_reach_klaviyo(api, db, fake, worker) -> None:  # noqa: ANN001
    api.post("/api/v1/destinations", json={"name": "Klaviyo", "kind": "klaviyo", "catalog": "api",
                                           "credentials": {"api_key": fake.klaviyo_key},
                                           "base_url": fake.base_url("klaviyo")})
    worker(["sync"])
    _push(api, {"external_id": "NEW", "sku": "NEW-1", "inventory_quantity": 0})  # queues a reconcile
    response = _subscribe(api, email="bob@example.com", product_id="NEW")
    assert response.status_code == 202
    assert any("not in Klaviyo's catalog yet" in w["message"] for w in response.get_json()["warnings"])
    worker(["delivery"])
    assert fake.klaviyo_bis == []  # nothing sent for a variant Klaviyo does not have
    worker(["sync"])   # the reconcile creates the variant, then releases the subscription
    worker(["delivery"])
    assert [entry["variant"] for entry in fake.klaviyo_bis] == [VARIANT + "NEW"]


def test_a_restock_tells_webhooks_once_per_subscriber(api, db, fake, worker, logged_in) -> None:  # noqa: ANN001
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 0})
    api.post("/api/v1/destinations", json={"name": "Hook", "kind": "webhook",
                                           "credentials": {"url": fake.base_url("webhook"),
                                                           "secret": fake.webhook_secret}})
    assert _subscribe(api, email="ann@example.com", sku="RED-S").status_code == 202
    assert _subscribe(api, phone="+15551234567", sku="RED-S", channels=["sms"]).status_code == 202
    product = db.session.scalars(sa.select(Product).where(Product.external_id == "P1")).one()
    page = logged_in.get(f"/sources/products/{product.id}").get_data(as_text=True)
    assert "2 shoppers subscribed" in page and "ann@example.com" in page and "+15551234567" in page
    in_stock = _subscribe(api, email="cy@example.com", sku="RED-S")
    assert in_stock.status_code == 202
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 5})  # back in stock
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 7})
    worker(["delivery"])
    restocks = [body for body in fake.webhook_deliveries.values() if body["event"] == "back_in_stock"]
    assert sorted((b["data"]["subscription"]["email"] or b["data"]["subscription"]["phone"]) for b in restocks) == [
        "+15551234567", "ann@example.com", "cy@example.com"]
    assert all(b["data"]["product"]["inventory_quantity"] == 5 for b in restocks)
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 0})
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 3})
    worker(["delivery"])
    assert len([b for b in fake.webhook_deliveries.values() if b["event"] == "back_in_stock"]) == 3
    assert fake.webhook_duplicates == 0
    page = logged_in.get(f"/sources/products/{product.id}").get_data(as_text=True)
    assert "No one is waiting for it" in page
    warned = _subscribe(api, email="dee@example.com", sku="RED-S").get_json()
    assert any("in stock now (3)" in w["message"] for w in warned["warnings"])


def test_the_onsite_script_subscribes_too(api, client, db) -> None:  # noqa: ANN001
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 0})
    body = {"event": "back_in_stock", "anonymous_id": "anon-12345678", "email": "ann@example.com",
            "properties": {"sku": "RED-S"}}
    response = client.post("/t/collect", json=body)
    assert response.status_code == 202 and response.get_json()["result"] == "subscribed", response.get_json()
    unknown = client.post("/t/collect", json=body | {"properties": {"sku": "NOPE"}})
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["path"] == "sku"
    assert unknown.headers["Access-Control-Allow-Origin"] == "*"


def test_subscriptions_do_not_linger(app, api, db) -> None:  # noqa: ANN001
    """A restocked subscription goes RETENTION_BODY_DAYS after its restock, a waiting one RETENTION_ROW_DAYS
    after it was made; a fresh waiting one stays."""
    from datetime import timedelta

    from webapp.models import BackInStockSubscription, utcnow
    from webapp.services.delivery.retention import prune

    app.config.update(RETENTION_BODY_DAYS=2, RETENTION_ROW_DAYS=5)
    _push(api, {"external_id": "P1", "sku": "RED-S", "inventory_quantity": 0})
    for email in ("old@example.com", "restocked@example.com", "fresh@example.com"):
        assert _subscribe(api, email=email, sku="RED-S").status_code == 202
    rows = {row.email: row for row in db.session.scalars(sa.select(BackInStockSubscription)).all()}
    rows["old@example.com"].created_at = utcnow() - timedelta(days=6)
    rows["restocked@example.com"].restocked_at = utcnow() - timedelta(days=3)
    db.session.commit()
    assert prune()["back_in_stock_deleted"] == 2
    db.session.expire_all()
    assert db.session.scalars(sa.select(BackInStockSubscription.email)).all() == ["fresh@example.com"]
