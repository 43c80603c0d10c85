"""The contact page: consent per channel with when and where, what each platform was sent, and the erase
button behind a typed confirmation with its self-polling progress."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases, csrf_token
from tests.factories import make_order
from webapp.models import Contact, Destination, Erasure

pytestmark = both_databases
EMAIL = "john.smith@example.com"


def _contact(api, db) -> Contact:  # noqa: ANN001
    order = make_order()
    order["customer"].update(phone="+16502530000", accepts_sms_marketing=True)
    api.post("/api/v1/destinations", json={"name": "Hooks", "kind": "webhook",
                                           "credentials": {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}})
    assert api.post("/api/v1/orders", json=order).status_code == 202
    return db.session.scalars(sa.select(Contact)).one()


def test_contact_page_shows_consent_per_channel_and_its_deliveries(api, logged_in, db) -> None:
    contact = _contact(api, db)
    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Marketing consent" in page and "SMS" in page and "+16502530000" in page
    assert page.count("✓ subscribed") == 2 and "Said through" in page and "<td>order</td>" in page
    assert "Sent to platforms" in page and "Hooks" in page and "unsubscribe" not in page
    assert 'name="confirm_email"' in page and "Erase everywhere" in page


def test_erase_needs_the_email_typed_then_runs_and_shows_progress(api, logged_in, db, worker) -> None:
    contact = _contact(api, db)
    path = f"/contacts/{contact.id}"
    token = csrf_token(logged_in, path)
    wrong = logged_in.post(f"{path}/erase", data={"csrf_token": token, "confirm_email": "john@example.com"},
                           follow_redirects=True)
    assert "Type the contact" in wrong.get_data(as_text=True)
    assert db.session.scalars(sa.select(Erasure)).all() == []
    response = logged_in.post(f"{path}/erase", data={"csrf_token": token, "confirm_email": f" {EMAIL.upper()} "})
    assert response.status_code == 302
    record = db.session.scalars(sa.select(Erasure)).one()
    assert response.headers["Location"].endswith(f"{path}?erasure={record.id}")
    fragment = logged_in.get(f"/contacts/erasures/{record.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'hx-trigger="load delay:1s"' in fragment and "Hooks" in fragment
    worker(["default"])
    page = logged_in.get(f"{path}?erasure={record.id}").get_data(as_text=True)
    assert f"Erased contact #{contact.id}" in page and EMAIL not in page
    assert "Personal data removed here" in page and "Erase everywhere" not in page
    order_page = logged_in.get("/orders/1234")  # the order stays, without the person
    assert order_page.status_code == 200 and EMAIL not in order_page.get_data(as_text=True)
    listing = logged_in.get("/contacts/").get_data(as_text=True)
    assert EMAIL not in listing
    db.session.execute(sa.update(Destination).values(enabled=False))  # nothing more to wait for
    db.session.commit()


def test_viewers_do_not_see_the_erase_button(api, logged_in, db, user) -> None:  # noqa: ANN001
    contact = _contact(api, db)
    user.role = "viewer"
    db.session.commit()
    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Erase everywhere" not in page
    assert logged_in.post(f"/contacts/{contact.id}/erase", data={"confirm_email": EMAIL}).status_code in (400, 403)
