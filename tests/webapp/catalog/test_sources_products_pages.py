"""The products browser (sources area): search, category/brand/stock filters, keyset pages, detail panel."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from webapp.models import Product

HTMX = {"HX-Request": "true"}


def _catalog(api, count: int = 120) -> None:  # noqa: ANN001
    """`count` pushed products: every third a Nike shoe, every fourth out of stock, one with extras."""
    upserts = [{"external_id": f"P{i:04d}", "title": f"{'Running shoe' if i % 3 == 0 else 'Wool sock'} {i}",
                "price": 10 + i, "currency": "EUR", "brand": "Nike" if i % 3 == 0 else "Falke",
                "categories": ["Shoes", "Running"] if i % 3 == 0 else ["Socks"], "sku": f"SKU-{i}",
                "inventory_quantity": 0 if i % 4 == 0 else 5, "extras": {"color": "blue"} if i == 7 else {}}
               for i in range(count)]
    response = api.post("/api/v1/products", json={"upserts": upserts})
    assert response.status_code == 202, response.get_json()


def _titles(html: str) -> list[str]:
    return re.findall(r'hx-target="#product-panel" hx-swap="innerHTML">([^<]+)</a>', html)


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_products_browser_filters_and_pages(logged_in, api, db) -> None:  # noqa: ANN001
    _catalog(api)
    page = logged_in.get("/sources/products").get_data(as_text=True)
    assert "120 products" in page and 'aria-current="page">Sources' in page and '<option value="Nike">' in page
    assert len(_titles(page)) == 50 and _titles(page)[0] == "Running shoe 0"

    def rows(**args: str) -> list[str]:
        response = logged_in.get("/sources/products", query_string=args, headers=HTMX)
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and "<html" not in html and 'id="product-rows"' in html
        return _titles(html)

    assert len(rows(q="running")) == 40 and all(t.startswith("Running shoe") for t in rows(q="SHOE running"))
    assert rows(q="SKU-7") == ["Wool sock 7"] and rows(q="P0008") == ["Wool sock 8"]
    assert len(rows(category="Running")) == 40 and rows(category="Run") == []
    assert len(rows(brand="Falke", stock="out")) == 20  # i % 4 == 0 and i % 3 != 0
    assert len(rows(stock="in")) == 50 and rows(brand="Nike", q="sock") == []
    assert rows(q="100%") == []  # LIKE wildcards are literal

    first = logged_in.get("/sources/products", headers=HTMX).get_data(as_text=True)
    last_id = db.session.scalars(sa.select(Product.id).order_by(Product.id).limit(50)).all()[-1]
    assert f"after={last_id}" in first and "before=" not in first
    second = rows(after=str(last_id))
    assert second[0] == "Wool sock 50" and len(second) == 50
    third = logged_in.get("/sources/products", query_string={"after": str(last_id + 50)}, headers=HTMX)
    assert len(_titles(third.get_data(as_text=True))) == 20 and "Next" not in third.get_data(as_text=True)
    back = rows(before=str(last_id + 1))
    assert back[0] == "Running shoe 0" and len(back) == 50
    assert "No products match" in logged_in.get("/sources/products?q=zzz").get_data(as_text=True)


def test_product_detail_panel_and_page(logged_in, api, db) -> None:  # noqa: ANN001
    _catalog(api, 10)
    product = db.session.scalars(sa.select(Product).where(Product.external_id == "P0007")).one()
    panel = logged_in.get(f"/sources/products/{product.id}", headers=HTMX).get_data(as_text=True)
    assert "<html" not in panel and "Wool sock 7" in panel and "17.00 EUR" in panel and "SKU-7" in panel
    assert "color" in panel and "blue" in panel and "Pushed products" in panel
    full = logged_in.get(f"/sources/products/{product.id}").get_data(as_text=True)
    assert "<html" in full and "Wool sock 7" in full
    assert logged_in.get("/sources/products/99999").status_code == 404


def test_products_browser_empty_state(logged_in) -> None:  # noqa: ANN001
    page = logged_in.get("/sources/products").get_data(as_text=True)
    assert "No products yet" in page and "Add a source" in page
