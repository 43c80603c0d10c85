"""In a real browser: an order whose delivery failed, retried from its page until delivered; a contact's chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot as save_screenshot
from tests.factories import make_order
from tests.webapp.orders.test_orders_pages import FlakyHook, post_orders, webhook_destination
from webapp.models import Event


def screenshot(page, name: str) -> None:  # noqa: ANN001
    """From the top, so the sticky header does not land mid-page in a full-page capture."""
    page.evaluate("window.scrollTo(0, 0)")
    assert save_screenshot(page, name).stat().st_size > 10_000


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _orders() -> list[dict]:
    """The order under test (1234) plus a few more customers so the lists and charts have something in them."""
    orders = [make_order(status="fulfilled", placed_at=_days_ago(9), fulfilled_at=_days_ago(8))]
    for n in range(6):
        orders.append(make_order(
            id=f"10{n}", total=20 + 35 * n, status="fulfilled", fulfilled_at=_days_ago(10),
            placed_at=_days_ago(200 - 30 * n),
            customer={"id": f"c-{n}", "email": f"customer{n}@example.com", "first_name": f"Cus{n}",
                      "accepts_marketing": n % 2 == 0}))
    orders.append(make_order(id="1300", total=45, placed_at=_days_ago(1)))  # John's second order
    return orders


def test_retry_a_failed_delivery_then_see_the_contact(logged_in_page, api, db, worker):
    page = logged_in_page
    with FlakyHook(failures=1) as hook:
        webhook_destination(api, hook.url)
        post_orders(api, _orders())
        worker()
        failed = db.session.scalars(sa.select(Event).where(Event.state == "retrying")).all()
        assert len(failed) == 1, [(e.name, e.state) for e in db.session.scalars(sa.select(Event)).all()]
        external_id = failed[0].payload["order"]["id"]

        page.goto("/orders/")
        expect(page.locator("#order-rows table")).to_be_visible()
        expect(page.locator("#order-rows tbody tr")).to_have_count(8)
        expect(page.locator("#order-rows .badge-failing")).to_have_count(1)
        screenshot(page, "orders-list")
        page.select_option("select#delivery", "failing")  # htmx swaps the rows and pushes the URL
        expect(page.locator("#order-rows tbody tr")).to_have_count(1)
        page.wait_for_url("**/orders/?*delivery=failing*")

        page.click(f"a:text-is('#{external_id}')")
        page.wait_for_url(f"**/orders/{external_id}")
        event = page.locator(f"#event-{failed[0].id}")
        expect(event.locator(".event-head .badge")).to_have_text("retrying")
        expect(page.locator("#order-delivery-state .badge")).to_have_text("failing")
        expect(event).to_contain_text("HTTP 500")
        event.locator("summary", has_text="Platform's answer").click()
        expect(event.locator("pre").first).to_contain_text('"error": "receiver exploded"')
        screenshot(page, "order-before-retry")

        event.get_by_role("button", name="Retry now").click()
        expect(page.locator(f"#event-{failed[0].id}")).to_contain_text("due now")
        worker()  # runs the deliver job only the retry enqueued; the receiver now answers 200
        expect(page.locator(f"#event-{failed[0].id} .event-head .badge")).to_have_text("delivered", timeout=10_000)
        expect(page.locator("#deliveries")).to_have_attribute("data-active", "no", timeout=10_000)
        expect(page.locator("#deliveries h3 .badge")).to_have_text("delivered")
        expect(page.locator("#order-delivery-state .badge")).to_have_text("delivered")  # the header follows
        # the answer opened before the retry stayed open through the polling swaps (hx-preserve)
        expect(event.locator("details").first).to_have_attribute("open", "")
        screenshot(page, "order-after-retry")
        assert len(hook.bodies) == len(_orders()) * 3 + 1  # every event once, the failed one twice

    page.goto("/contacts/")
    page.get_by_role("button", name="Refresh RFM").click()
    expect(page.locator(".flash-success")).to_contain_text("RFM scores refreshed for 7 contacts")
    expect(page.locator(".rfm-grid")).to_be_visible()
    expect(page.locator(".chart svg").first).to_be_visible()
    screenshot(page, "contacts-list")

    page.click("#contact-rows th a:text-is('Email')")
    expect(page.locator("#contact-rows th[aria-sort=ascending]")).to_contain_text("Email")
    expect(page.locator("#contact-rows tbody tr").first).to_contain_text("customer0@example.com")
    page.fill("#q", "john")
    page.press("#q", "Enter")
    expect(page.locator("#contact-rows tbody tr")).to_have_count(1)
    page.wait_for_url("**/contacts/?*sort=email*")  # the sort chosen above travelled with the search
    page.click("a:text-is('john.smith@example.com')")
    page.wait_for_url(re.compile(r".*/contacts/\d+$"))
    chart = page.locator(".ltv-over-time svg")
    expect(chart).to_be_visible()
    expect(chart.locator("polyline")).to_have_count(1)
    expect(chart.locator("circle")).to_have_count(2)  # two order days for John
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    expect(page.locator("text=Events sent to each platform")).to_be_visible()
    screenshot(page, "contact-page")
