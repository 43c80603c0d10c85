"""In a real browser: erase a contact from its page behind the typed confirmation, and watch the erasure's
progress fragment poll itself until the contact is gone."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.factories import make_order
from webapp.models import Contact

EMAIL = "erase.me@example.org"


def test_erase_a_contact_from_its_page(logged_in_page, api, db, worker):
    page = logged_in_page
    order = make_order(id="e2e-1")
    order["customer"].update(email=EMAIL, phone="+16502530000", accepts_sms_marketing=True)
    assert api.post("/api/v1/orders", json=order).status_code == 202
    contact = db.session.scalars(sa.select(Contact)).one()

    page.goto(f"/contacts/{contact.id}")
    expect(page.locator("#consent-h")).to_be_visible()
    expect(page.locator(".consent-table tbody tr")).to_have_count(2)
    page.fill("#confirm-email", "someone.else@example.org")
    page.click("button:text('Erase everywhere')")
    expect(page.locator(".flash-error")).to_contain_text("Type the contact")

    page.fill("#confirm-email", EMAIL)
    page.click("button:text('Erase everywhere')")
    page.wait_for_url(f"**/contacts/{contact.id}?erasure=*")
    progress = page.locator(".erasure-progress")
    expect(progress).to_be_visible()
    screenshot(page, "contact-erasure-queued")
    worker(["default"])
    expect(progress).to_contain_text("succeeded", timeout=10_000)  # the fragment polled until done
    expect(progress).to_contain_text("Personal data removed here")
    page.reload()
    expect(page.locator("h1")).to_have_text(f"Erased contact #{contact.id}")
    expect(page.locator("body")).not_to_contain_text(EMAIL)
    expect(page.locator("button:text('Erase everywhere')")).to_have_count(0)
    screenshot(page, "contact-erased")
