"""Erasure: no trace of the person left in any table or instance file, the platforms asked to delete, the
numbers unchanged, a later order a new contact. Real worker, fake platforms validating with the SDK models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import both_databases
from tests.factories import make_order
from webapp.extensions import db as _db
from webapp.models import Base, Contact, Destination, Erasure, Event, Order
from webapp.schemas.erasures import ErasureOut
from webapp.services.contacts import erasure as erasures
from webapp.services.overview.stats import revenue
from webapp.services.platform.time_buckets import make_window

CANARY_EMAIL = "canary.quagmire@example.org"
CANARY_PHONE = "+16502530000"
CANARY_STREET = "42 Zebedee Row"
CANARIES = (CANARY_EMAIL, CANARY_PHONE, "6502530000", "Quagmire", CANARY_STREET, "cust-canary-9")


def _canary_order(order_id: str, **overrides) -> dict:  # noqa: ANN003
    order = make_order(id=order_id, **overrides)
    order["customer"] = {"id": "cust-canary-9", "email": CANARY_EMAIL, "phone": "(650) 253-0000",
                         "first_name": "Zebedee", "last_name": "Quagmire", "accepts_marketing": True,
                         "accepts_sms_marketing": True}
    for address in (order["billing_address"], order["shipping_address"]):
        address.update(first_name="Zebedee", last_name="Quagmire", address1=CANARY_STREET, phone=None)
    return order


def _traces(db) -> list[str]:  # noqa: ANN001
    """Every table, every column as text: where a canary value still shows."""
    found = []
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)).mappings():
                text = " ".join(str(value) for value in row.values()).lower()
                found += [f"{table.name}: {canary}" for canary in CANARIES if canary.lower() in text]
    return found


def _file_traces(folder: Path) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes().lower()
            found += [f"{path}: {canary}" for canary in CANARIES if canary.lower().encode() in data]
    return found


def _revenue() -> dict:
    return {currency: sum(values) for currency, values in revenue(make_window("1y")).items()}


@both_databases
def test_erasure_leaves_no_trace_keeps_the_numbers_and_asks_every_platform(app, api, db, fake, make_destination,
                                                                         worker, redis) -> None:
    make_destination("klaviyo")
    make_destination("webhook")
    make_destination("sendlane")
    api.post("/api/v1/orders", json=_canary_order("e-1"))
    api.post("/api/v1/orders", json=_canary_order("e-2", status="fulfilled", total=40, subtotal=40,
                                                  fulfilled_at="2026-11-21T10:00:00Z"))
    api.post("/api/v1/orders", json=make_order(id="other-1"))
    worker(["delivery"])
    uploads = Path(app.config["UPLOADS_DIR"]) / "imports"
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / "kept.csv").write_text(f"id,email,total\ne-1,{CANARY_EMAIL},29.98\nother-1,john@example.com,1\n")
    hooks = next(d for d in db.session.scalars(sa.select(Destination)) if d.kind == "webhook")
    db.session.add(Event(destination_id=hooks.id, name="viewed_product", unique_id="anon-1:viewed", state="delivered",
                         payload={"activity": {"url": "https://shop.example/p/1"}, "contact": {"email": CANARY_EMAIL}}))
    db.session.commit()  # onsite activity of a visitor no contact matched: tied to no contact, names the person
    onsite = {"shoprelay:onsite:anon:b1": {"email": CANARY_EMAIL, "customer_id": ""},
              "shoprelay:onsite:anon:b2": {"email": "", "customer_id": "cust-canary-9"},
              "shoprelay:onsite:anon:b3": {"email": "john.smith@example.com", "customer_id": ""}}
    for key, fields in onsite.items():
        redis.hset(key, mapping=fields)
    assert _traces(db) and fake.klaviyo_subscriptions
    before = _revenue()
    other = api.get("/api/v1/contacts/john.smith@example.com").get_json()

    response = api.delete(f"/api/v1/contacts/{CANARY_EMAIL.upper()}")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "queued" and {d["kind"] for d in body["destinations"]} == {"klaviyo", "webhook",
                                                                                        "sendlane"}
    assert api.delete(f"/api/v1/contacts/{CANARY_EMAIL}").get_json()["id"] == body["id"]  # a repeat: the same
    worker(["default"])
    worker(["delivery"])
    with app.app_context():
        erasures.finish_ready()
    done = api.get(f"/api/v1/erasures/{body['id']}").get_json()
    ErasureOut.model_validate(body)
    ErasureOut.model_validate(done)
    assert done["status"] == "succeeded", done
    assert done["done"] == done["total"] and done["counts"]["orders"] == 2
    states = {d["kind"]: d["status"] for d in done["destinations"]}
    assert states == {"klaviyo": "succeeded", "webhook": "succeeded", "sendlane": "not_supported"}

    assert fake.klaviyo_deletions == [{"email": CANARY_EMAIL}]
    erased = [doc for doc in fake.webhook_deliveries.values() if doc.get("event") == "contact.erased"]
    assert len(erased) == 1 and erased[0]["data"]["erasure"]["id"] == body["id"]
    assert _traces(db) == []
    assert sorted(key.decode() for key in redis.scan_iter(match="shoprelay:onsite:anon:*")) == [
        "shoprelay:onsite:anon:b3"]  # the person's browsers are forgotten, others' kept
    assert _file_traces(Path(app.instance_path)) == []
    if db.engine.dialect.name == "sqlite":  # the database file and its WAL too: nothing left in free pages
        assert _file_traces(Path(db.engine.url.database).parent) == []
    assert _revenue() == before
    assert api.get("/api/v1/contacts/john.smith@example.com").get_json() == other
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 3
    assert api.get(f"/api/v1/contacts/{CANARY_EMAIL}").status_code == 404
    order = api.get("/api/v1/orders/e-2").get_json()  # the order is still whole, without the person
    assert order["status"] == "fulfilled" and CANARY_EMAIL not in str(order)

    api.post("/api/v1/orders", json=_canary_order("e-3"))
    contacts = db.session.scalars(sa.select(Contact).order_by(Contact.id)).all()
    fresh = next(c for c in contacts if c.email == CANARY_EMAIL)
    assert fresh.id not in db.session.get(Erasure, body["id"]).contact_ids
    assert fresh.orders_count == 1


def test_cli_erases_in_process_and_an_unknown_email_still_asks_the_platforms(app, runner, db, fake,
                                                                             make_destination, worker) -> None:
    make_destination("klaviyo")
    result = runner.invoke(args=["contacts", "erase", "nobody@example.org", "--yes"])
    assert result.exit_code == 0, result.output
    assert "0 contact(s)" in result.output
    worker(["delivery"])
    assert fake.klaviyo_deletions == [{"email": "nobody@example.org"}]
    record = _db.session.scalars(sa.select(Erasure)).one()
    assert "nobody" not in str(record.__dict__)


def test_erasure_needs_an_admin_key(app, client) -> None:
    from webapp.security import create_api_key

    with app.app_context():
        _, key = create_api_key("reader", scope="read")
        _db.session.commit()
    response = client.delete("/api/v1/contacts/a@example.org", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/erasures/nope"])
def test_unknown_erasure_is_404(api, path) -> None:
    assert api.get(path).status_code == 404


def test_the_erasure_routes_are_documented(api) -> None:
    doc = api.get("/api/v1/openapi.json").get_json()
    assert set(doc["paths"]["/api/v1/contacts/{email}"]) >= {"get", "delete"}
    assert "get" in doc["paths"]["/api/v1/erasures/{id}"]
    assert {"ErasureOut", "ErasureDestinationOut"} <= set(doc["components"]["schemas"])
