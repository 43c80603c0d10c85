"""Product pages show stored links as links only when they are http(s) (issue 19): sources read before links
were checked, or read from a file, may hold anything."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import both_databases
from webapp.models import Product

pytestmark = both_databases


def test_stored_non_web_product_links_are_not_links(logged_in, api, db):
    pushed = api.post("/api/v1/products", json={"upserts": [
        {"external_id": "A", "title": "Mug", "link": "https://shop.example/a", "image_link": "https://shop.example/a.png"}]})
    assert pushed.status_code == 202, pushed.get_json()
    db.session.execute(sa.update(Product).values(link="javascript:alert(5)", image_link="data:image/svg+xml,<svg/>"))
    db.session.commit()
    product = db.session.scalars(sa.select(Product)).one()
    pages = [logged_in.get("/sources/products").get_data(as_text=True),
             logged_in.get(f"/sources/products/{product.id}").get_data(as_text=True)]
    for html in pages:
        assert "Mug" in html
        assert 'href="javascript:' not in html and 'src="data:' not in html
