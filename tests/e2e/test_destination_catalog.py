"""Browser: connect Klaviyo with the Catalog API on through the form, watch the first reconcile land on the
destination page (items, variants, categories confirmed), and queue another from its button."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import screenshot
from tests.fakeplatform import FakePlatform
from webapp.models import CatalogReconcile, Product


@pytest.fixture()
def fake() -> Iterator[FakePlatform]:
    from workers.delivery.http_client import close_all

    with FakePlatform() as platform:
        yield platform
        close_all()


def test_klaviyo_catalog_through_the_form(logged_in_page, api, db, worker, redis, fake) -> None:  # noqa: ANN001
    upserts = [{"external_id": f"P{n}", "item_group_id": f"G{n // 2}", "title": f"Tee {n}", "price": 10 + n,
                "link": f"https://shop.test/p/{n}", "categories": ["Clothing > Tshirts"],
                "inventory_quantity": n % 2} for n in range(6)]
    upserts.append({"external_id": "NOLINK", "title": "No page", "price": 3})
    assert api.post("/api/v1/products", json={"upserts": upserts}).status_code == 202
    page = logged_in_page
    page.goto("/destinations/new?kind=klaviyo")
    page.fill("#name", "Klaviyo store")
    page.fill("#cred-api_key", fake.klaviyo_key)
    page.fill("#base_url", fake.base_url("klaviyo"))
    page.check("input[name=catalog][value=api]")
    screenshot(page, "destination-form-catalog")
    page.get_by_role("button", name="Connect Klaviyo").click()
    page.wait_for_url("**/destinations/1")
    panel = page.locator("#catalog-panel")
    assert panel.is_visible() and "Reconcile #1" in panel.inner_text()
    worker(["sync"])
    page.reload()
    text = " ".join(page.locator("#catalog-panel").inner_text().split())
    assert "Catalog in step" in text and "3 items 6 variants 1 categories 0 jobs in flight" in text, text
    assert "Created: 10 (1 category, 3 items, 6 variants)" in text, text
    assert "1 product left out: no product URL (e.g. 1:NOLINK)" in text, text
    shot = screenshot(page, "destination-catalog")
    assert shot.stat().st_size > 10_000
    page.get_by_role("button", name="Full reconcile").click()
    page.get_by_text("Reconcile queued").wait_for()
    runs = db.session.scalars(sa.select(CatalogReconcile).order_by(CatalogReconcile.id)).all()
    assert [(run.trigger, run.full) for run in runs] == [("enabled", True), ("manual", True)]
    assert len(fake.klaviyo_variants) == 6 and len(fake.klaviyo_catalog) == 3

    page.goto("/")
    row = page.locator("table.klaviyo-catalogs tbody tr").first
    assert " ".join(row.inner_text().split()).startswith("Klaviyo store Catalog API"), row.inner_text()
    screenshot(page, "overview-klaviyo-catalogs")

    # A shopper waits for a sold-out tee: the product's page lists them.
    response = api.post("/api/v1/back-in-stock", json={"email": "ann@example.com", "product_id": "P1"})
    assert response.status_code == 202, response.get_json()
    product = db.session.scalars(sa.select(Product).where(Product.external_id == "P1")).one()
    page.goto(f"/sources/products/{product.id}")
    page.get_by_text("1 shopper subscribed to back in stock").wait_for()
    assert page.get_by_role("cell", name="ann@example.com").is_visible()
    screenshot(page, "product-back-in-stock")
