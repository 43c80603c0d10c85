"""Browser: the overview empty and with data (cards, charts, window toggle), and an API key shown once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.e2e.conftest import screenshot
from webapp.models import Event, Order
from webapp.schemas.destinations import DestinationCreate
from webapp.services.delivery.destinations import create_destination, pause_destination


def _seed(db) -> None:  # noqa: ANN001
    """A day of orders in two currencies and events to two destinations, one of them paused."""
    now = datetime.now(UTC)
    main = create_destination(DestinationCreate(
        name="Klaviyo main", kind="webhook", credentials={"url": "http://127.0.0.1:9/a", "secret": "secret-one"}))
    backup = create_destination(DestinationCreate(
        name="Sendlane", kind="webhook", credentials={"url": "http://127.0.0.1:9/b", "secret": "secret-two"}))
    pause_destination(backup, reason="401 Unauthorized: check the API key")
    for n in range(40):
        placed = now - timedelta(hours=n * 17 % 700)
        db.session.add(Order(external_id=f"o-{n}", status="placed", currency="USD" if n % 4 else "EUR",
                             total=Decimal(20 + n * 3), placed_at=placed, data={}, created_at=now))
    for n in range(60):
        created = now - timedelta(minutes=n * 23)
        state = "dead" if n % 29 == 3 else "retrying" if n % 11 == 5 else "delivered"
        destination = main if n % 3 else backup
        db.session.add(Event(destination_id=destination.id, name="placed_order", unique_id=f"e-{n}", payload={},
                             state=state, created_at=created, occurred_at=created, next_attempt_at=created,
                             delivered_at=created + timedelta(seconds=1 + n % 7) if state == "delivered" else None))
    db.session.commit()


def test_empty_overview_welcomes(logged_in_page):
    page = logged_in_page
    assert page.locator("h2", has_text="Welcome to shoprelay").is_visible()
    assert page.locator(".steps li").count() == 4
    assert page.locator(".attention-list li", has_text="No worker is running").is_visible()
    screenshot(page, "overview-empty")


def test_overview_with_data_shows_cards_charts_and_toggles_window(logged_in_page, db):
    _seed(db)
    page = logged_in_page
    page.goto("/")
    assert page.locator(".kpis .kpi").count() == 6
    assert page.locator(".kpi svg").count() == 6
    assert page.locator(".chart svg").count() == 2  # delivery by destination, revenue by day
    attention = page.locator(".attention-list")
    assert attention.locator("li", has_text="Sendlane is paused").is_visible()
    assert "check the API key" in attention.inner_text()
    page.locator("details summary", has_text="Numbers").click()
    assert page.locator(".numbers table tbody tr").count() == 30
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "overview-data")

    page.click(".segmented a:has-text('Last 7 days')")
    page.wait_for_url("**/?window=7d")
    assert page.locator(".segmented a[aria-current=true]").inner_text() == "Last 7 days"
    assert page.locator("h1").inner_text() == "Overview"  # only the fragment was swapped
    assert page.locator(".kpi svg").count() == 6


def test_create_an_api_key_and_see_it_once(logged_in_page):
    page = logged_in_page
    page.goto("/settings/")
    page.fill("#key-name", "Store backend")
    page.click("button:has-text('Create API key')")
    key = page.locator("#new-api-key")
    key.wait_for()
    value = key.input_value()
    assert value.startswith("sr_")
    assert page.locator("button[data-copy=new-api-key]").is_visible()
    assert page.locator("#api-keys tbody tr", has_text="Store backend").is_visible()
    screenshot(page, "settings-api-key-created")
    page.reload()
    assert page.locator("#new-api-key").count() == 0
    assert value not in page.content()
    screenshot(page, "settings")
