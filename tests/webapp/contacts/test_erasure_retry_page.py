"""A failed erasure shows on its erased contact's page with a Retry erasure button (admins only) that finishes it
(webapp/templates/contacts/_erasure.html)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases, csrf_token
from tests.factories import make_order
from webapp.models import Contact, Erasure

pytestmark = both_databases
EMAIL = "john.smith@example.com"
REASON = "stopped after 3 attempts at orders 1–1 of the orders phase (its first chunk): the worker died each time"


def _failed_erasure(api, db) -> tuple[Contact, str]:  # noqa: ANN001
    assert api.post("/api/v1/orders", json=make_order()).status_code == 202
    erasure_id = api.delete(f"/api/v1/contacts/{EMAIL}").get_json()["id"]
    db.session.execute(sa.update(Erasure).values(status="failed", error=REASON))
    db.session.commit()
    return db.session.scalars(sa.select(Contact)).one(), erasure_id


def test_an_admin_retries_a_failed_erasure_from_the_contact_page(api, logged_in, db, worker) -> None:  # noqa: ANN001
    contact, erasure_id = _failed_erasure(api, db)
    path = f"/contacts/{contact.id}"
    page = logged_in.get(path).get_data(as_text=True)  # the failed erasure shows without ?erasure=
    assert REASON in page and "Retry erasure" in page
    assert f'hx-post="/contacts/erasures/{erasure_id}/retry"' in page
    token = csrf_token(logged_in, path)
    fragment = logged_in.post(f"/contacts/erasures/{erasure_id}/retry", data={"csrf_token": token},
                              headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "goes on from the orders phase" in fragment and 'hx-trigger="load delay:1s"' in fragment
    assert "Retry erasure" not in fragment
    again = logged_in.post(f"/contacts/erasures/{erasure_id}/retry", data={"csrf_token": token})
    assert again.status_code == 302 and again.headers["Location"].endswith(f"{path}?erasure={erasure_id}")
    assert "only a failed erasure can be retried" in logged_in.get(again.headers["Location"]).get_data(as_text=True)
    worker(["default"])
    page = logged_in.get(f"{path}?erasure={erasure_id}").get_data(as_text=True)
    assert "Personal data removed here" in page and "Retry erasure" not in page


def test_viewers_do_not_see_the_retry_button(api, logged_in, db, user) -> None:  # noqa: ANN001
    contact, erasure_id = _failed_erasure(api, db)
    user.role = "member"
    db.session.commit()
    page = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert REASON in page and "Retry erasure" not in page
    assert logged_in.post(f"/contacts/erasures/{erasure_id}/retry").status_code in (400, 403)
