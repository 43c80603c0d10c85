"""In a real browser: an erasure that failed half-way (its personal data still held, encrypted, to finish it)
shows on the erased contact's page with a "Retry erasure" button for admins; the click swaps the fragment (htmx)
for the re-queued erasure, which polls itself until the rest of the data is gone. Members see no button."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS, screenshot
from tests.factories import make_order
from webapp.models import Contact, Erasure, Event
from webapp.services.contacts.erasure import EVENT

EMAIL = "john.smith@example.com"
REASON = "stopped after 3 attempts at orders 1–1 of the orders phase (its first chunk): the worker died each time"
REFUSAL = "HTTP 403: the platform refused the deletion"


def _failed_erasure(api, db) -> tuple[Contact, str]:  # noqa: ANN001
    """An order, a webhook destination that refused the deletion request, and an erasure failed in its orders
    phase with its values pending (as tests/webapp/contacts/test_erasure_retry_page.py makes one)."""
    hook = api.post("/api/v1/destinations", json={"name": "Store webhook", "kind": "webhook", "credentials": {
        "url": "http://127.0.0.1:9/hook", "secret": "abcdefgh"}})
    assert hook.status_code == 201, hook.get_json()
    assert api.post("/api/v1/orders", json=make_order()).status_code == 202
    erasure_id = api.delete(f"/api/v1/contacts/{EMAIL}").get_json()["id"]
    db.session.execute(sa.update(Erasure).values(status="failed", error=REASON))
    db.session.execute(sa.update(Event).where(Event.name == EVENT).values(state="dead", last_error=REFUSAL))
    db.session.commit()
    assert db.session.get(Erasure, erasure_id).pending_values is not None
    return db.session.scalars(sa.select(Contact)).one(), erasure_id


def _card_shot(page, erasure_id: str, name: str) -> None:  # noqa: ANN001
    """The erasure card alone, beside the full-page screenshot (the card is what the click changes)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(f"#erasure-{erasure_id}").screenshot(path=str(ARTIFACTS / f"{name}-card.png"), caret="initial")


def test_a_member_sees_the_failed_erasure_without_the_retry_button(logged_in_page, api, db, user) -> None:  # noqa: ANN001
    page = logged_in_page
    contact, erasure_id = _failed_erasure(api, db)
    user.role = "member"
    db.session.commit()

    page.goto(f"/contacts/{contact.id}")
    card = page.locator(f"#erasure-{erasure_id}")
    expect(card).to_contain_text(REASON)
    expect(card).to_contain_text("failed")
    expect(card.get_by_role("button", name="Retry erasure")).to_have_count(0)
    expect(card).to_contain_text("An admin can retry it from this page.")
    screenshot(page, "erasure-retry-member")
    _card_shot(page, erasure_id, "erasure-retry-member")


def test_an_admin_retries_a_failed_erasure_in_the_browser(logged_in_page, api, db, worker) -> None:  # noqa: ANN001
    page = logged_in_page
    contact, erasure_id = _failed_erasure(api, db)

    page.goto(f"/contacts/{contact.id}")
    card = page.locator(f"#erasure-{erasure_id}")
    expect(card).to_contain_text(REASON)
    expect(card.locator(".badge").first).to_have_text("failed")
    expect(card).to_contain_text(REFUSAL)
    expect(card).to_contain_text("Stopped in the orders phase after 0 of 6 rows: the rest of the personal data is "
                                 "still stored here.")
    expect(page.locator("#contact-body")).not_to_contain_text("its personal data is gone here")  # not yet
    button = card.get_by_role("button", name="Retry erasure")
    expect(button).to_be_visible()
    expect(card).to_contain_text("goes on from the orders phase where it stopped and asks the refusing "
                                 "destinations again")
    screenshot(page, "erasure-retry-before")
    _card_shot(page, erasure_id, "erasure-retry-before")

    with page.expect_response(f"**/contacts/erasures/{erasure_id}/retry") as answer:
        button.click()
    assert answer.value.status == 200 and answer.value.request.headers.get("hx-request") == "true"
    card = page.locator(f"#erasure-{erasure_id}")  # swapped in place (outerHTML): no page load
    expect(card).to_contain_text(f"Erasure {erasure_id} retried: it goes on from the orders phase where it stopped.")
    expect(card.locator(".badge").first).to_have_text("queued")
    expect(card).not_to_contain_text(REASON)
    expect(card).to_contain_text(f"last attempt: {REFUSAL}")  # asked again: pending, its last answer kept
    expect(card.get_by_role("button", name="Retry erasure")).to_have_count(0)
    assert card.get_attribute("hx-trigger") == "load delay:1s"  # it polls itself while the erasure runs
    assert page.url.endswith(f"/contacts/{contact.id}")
    db.session.expire_all()
    assert db.session.get(Erasure, erasure_id).status == "queued"
    screenshot(page, "erasure-retry-after")
    _card_shot(page, erasure_id, "erasure-retry-after")

    worker(["default"])  # the re-queued job finishes the local part; the fragment's poll shows it
    expect(card).to_contain_text("Personal data removed here", timeout=10_000)
    screenshot(page, "erasure-retry-finished")
    _card_shot(page, erasure_id, "erasure-retry-finished")
